"""Study profiles: how big each notebook's work is, from a CI smoke run to the paper recipes.

The five study notebooks (``notebooks/01_landmarks.ipynb`` … ``05_gradcam.ipynb``) read every
size they depend on from one :class:`StudyProfile`, so that the same notebook is a 1-minute CI
check, a 15-minute laptop study on SynthFER or a GPU reproduction on a real dataset:

``smoke``    CI. All five notebooks together within about 5 minutes on 2 CPU cores; the numbers it
             produces only prove that the pipeline runs (tiny data, a handful of optimiser steps).
``default``  ``make study``. All five notebooks within about 15 minutes on 2 CPU cores; results on
             SynthFER (a *synthetic* dataset) are meaningful as comparisons between models, not as
             reproductions of any paper.
``full``     The paper recipes (epochs, batch sizes, learning-rate schedules from ``ferlib.train``'s
             recipes); for a GPU and a real dataset such as RAF-DB.

The profile is chosen by a notebook's ``profile`` parameter, else the ``FERLIB_PROFILE``
environment variable (how nbval and the browser test pick ``smoke``), else ``default``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

#: Environment variable that sets the profile when a notebook's ``profile`` parameter is None.
PROFILE_ENV = "FERLIB_PROFILE"
#: Profile used when neither the parameter nor the environment names one.
FALLBACK_PROFILE = "default"


@dataclass(frozen=True)
class StudyProfile:
    """Sizes and switches the notebooks read. Every field is a plain value (saved with a run)."""

    name: str
    description: str
    #: Training-engine profile passed to ``ferlib.train`` (``smoke`` | ``default`` | ``full``).
    train_profile: str
    # -- data (SynthFER sizes; a real dataset uses its own split sizes unless ``max_*`` caps them)
    n_train: int
    n_test: int
    image_size: int = 224
    #: SynthFER preset (``ferlib.data.synthfer.SYNTHFER_PRESETS``) used when the dataset is SynthFER.
    synthfer_config: str = "standard"
    #: Caps applied to a real dataset's splits (None = use the whole split).
    max_train: int | None = None
    max_test: int | None = None
    # -- 01 landmarks
    #: SynthFER faces on which MTCNN's error against the exact landmarks (NME) is measured.
    n_landmark_eval: int = 16
    # -- 03 training
    #: Models trained by notebook 03 (and explained by 05) unless the ``models`` parameter says otherwise.
    models: tuple[str, ...] = ("resnet18", "ma-net")
    #: Epochs per model (None = the recipe's own number, the ``full`` profile).
    epochs: int | None = 1
    batch_size: int | None = 16
    #: Upper bound on a recipe's learning rate (None = the paper's). The papers' rates of 0.1
    #: assume batches of 64-350; with CPU batches of 8-16 from scratch they diverge (LAN: NaN loss).
    max_lr: float | None = 0.01
    seeds: tuple[int, ...] = (0,)
    # -- 04 ablations
    #: Ablation grids notebook 04 runs (names from ``ferlib.study.ABLATION_GRIDS``).
    ablations: tuple[str, ...] = ()
    #: Points per grid: the first ``ablation_points`` rows of each grid (None = all rows).
    ablation_points: int | None = 2
    ablation_epochs: int | None = 1
    #: SynthFER sizes of each ablation run (None = ``n_train``/``n_test``).
    ablation_n_train: int | None = None
    ablation_n_test: int | None = None
    # -- 05 Grad-CAM
    #: pytorch-grad-cam methods (class names); the slow ones (ScoreCAM, AblationCAM) only in ``full``.
    cam_methods: tuple[str, ...] = ("GradCAM",)
    #: Images per class in the per-class CAM grids.
    cam_per_class: int = 1
    #: Images in the per-branch, misclassified and occluder CAM figures.
    cam_images: int = 3
    # -- execution
    #: Show tqdm progress bars (``tqdm.auto`` ignores ``TQDM_DISABLE`` inside a kernel).
    progress: bool = False
    num_workers: int = 0

    def replace(self, **changes: Any) -> "StudyProfile":
        """A copy with ``changes`` (unknown names raise ``TypeError`` naming the field)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(
                f"unknown profile field(s) {unknown}; StudyProfile fields are {sorted(names)}"
            )
        return dataclasses.replace(self, **changes)

    @property
    def tqdm_disable(self) -> bool:
        """Value for ``tqdm(..., disable=...)`` inside notebooks."""
        return not self.progress


PROFILES: dict[str, StudyProfile] = {
    "smoke": StudyProfile(
        name="smoke",
        description="CI check: all five notebooks in about 5 minutes on 2 CPU cores; "
        "numbers only prove the pipeline runs",
        train_profile="smoke",
        n_train=32,
        n_test=14,
        max_train=32,
        max_test=14,
        n_landmark_eval=8,
        models=("resnet18", "ma-net"),
        epochs=1,
        batch_size=8,
        seeds=(0,),
        ablations=("ffra-net-fusion",),
        ablation_points=2,
        ablation_epochs=1,
        ablation_n_train=24,
        ablation_n_test=14,
        cam_methods=("GradCAM",),
        cam_per_class=1,
        cam_images=2,
        progress=False,
    ),
    "default": StudyProfile(
        name="default",
        description="make study: all five notebooks in about 15 minutes on 2 CPU cores; "
        "comparisons on synthetic SynthFER data (near-frontal 'frontal' preset), not paper "
        "reproductions",
        train_profile="default",
        # About 55 SGD steps of batch 32 per model: on the 'frontal' preset this already lifts a
        # ResNet-18 from chance (14 %) to roughly 35-45 % test accuracy on 2 CPU cores, whereas the
        # 'standard' preset (poses, occluders, degradations) stays near chance at this budget.
        n_train=960,
        n_test=210,
        synthfer_config="frontal",
        max_train=2000,
        max_test=700,
        n_landmark_eval=32,
        # The four models that fit the 15-minute budget; LAN (guidance warm-up) and MAN (VGG16,
        # 141 M parameters) are trained by `-p models=[...]` or the `full` profile.
        models=("resnet18", "ma-net", "amp-net-r18", "ffra-net"),
        epochs=2,
        batch_size=32,
        seeds=(0,),
        ablations=("ma-net-regions", "ffra-net-fusion", "amp-net-region-size"),
        ablation_points=2,
        ablation_epochs=1,
        ablation_n_train=320,
        ablation_n_test=140,
        cam_methods=("GradCAM", "HiResCAM"),
        cam_per_class=2,
        cam_images=4,
        progress=False,
    ),
    "full": StudyProfile(
        name="full",
        description="the paper recipes (epochs, batch sizes, schedules); for a GPU and a real dataset",
        train_profile="full",
        n_train=12_271,
        n_test=3_068,
        max_train=None,
        max_test=None,
        n_landmark_eval=500,
        models=("resnet18", "ma-net", "amp-net", "lan", "ffra-net", "man"),
        epochs=None,
        batch_size=None,
        seeds=(0, 1, 2),
        ablations=(
            "amp-net-modules",
            "amp-net-lp-scheme",
            "amp-net-region-size",
            "amp-net-lambda",
            "ma-net-multiscale",
            "ma-net-regions",
            "ma-net-fusion",
            "ma-net-lambda",
            "lan-alpha",
            "lan-fusion",
            "ffra-net-fusion",
            "ffra-net-modules",
            "ffra-net-lambda",
            "man-baselines",
        ),
        ablation_points=None,
        ablation_epochs=None,
        max_lr=None,
        cam_methods=("GradCAM", "HiResCAM", "GradCAMPlusPlus", "ScoreCAM", "AblationCAM"),
        cam_per_class=6,
        cam_images=8,
        progress=True,
        num_workers=4,
    ),
}


def profile_name(profile: str | None = None) -> str:
    """``profile`` if given, else ``$FERLIB_PROFILE``, else ``default``; validated."""
    name = profile or os.environ.get(PROFILE_ENV) or FALLBACK_PROFILE
    name = str(name).strip().lower()
    if name not in PROFILES:
        source = "argument" if profile else f"${PROFILE_ENV}"
        raise ValueError(
            f"unknown study profile {name!r} (from the {source}); choose one of "
            f"{', '.join(PROFILES)}"
        )
    return name


def get_profile(profile: str | None = None, **overrides: Any) -> StudyProfile:
    """The :class:`StudyProfile` named by ``profile`` (see :func:`profile_name`), with overrides.

    ``overrides`` whose value is None are ignored, so a notebook can pass its parameters straight
    through (``get_profile(profile, epochs=epochs)`` with ``epochs=None`` keeps the profile's value).
    """
    base = PROFILES[profile_name(profile)]
    changes = {k: v for k, v in overrides.items() if v is not None}
    for key in ("models", "seeds", "ablations", "cam_methods"):
        if key in changes:
            value = changes[key]
            changes[key] = (value,) if isinstance(value, (str, int)) else tuple(value)
    return base.replace(**changes) if changes else base
