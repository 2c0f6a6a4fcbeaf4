"""Study profiles: what each notebook does, from a CI smoke run to the paper recipes.

The five study notebooks (``notebooks/01_landmarks.ipynb`` … ``05_gradcam.ipynb``) read their knobs
(models, seeds, ablation grids, CAM methods, how many faces to evaluate or explain) from one
:class:`StudyProfile`. Every training size and budget (epochs, batch, data sizes, learning-rate
cap, SynthFER preset) belongs to an *engine* profile in ``ferlib/recipes/profiles.yaml``, which a
study profile names: ``train_profile`` for notebook 03, ``ablation_profile`` for notebook 04.

============  =====================  ======================  =========================================
study         notebook 03 trains     notebook 04 trains      for
============  =====================  ======================  =========================================
``smoke``     ``study-smoke``        ``ablation-smoke``      CI: five notebooks in about 5 minutes on
                                                             2 CPU cores; numbers only prove it runs
``default``   ``study-default``      ``ablation-default``    ``make study``: within 15 minutes on 2 CPU
                                                             cores; a quick version of ``lecture``
``lecture``   ``study-lecture``      ``ablation-lecture``    the committed outputs: five networks and
                                                             ResNet-18 over three seeds (MAN one),
                                                             3-row grids; about 90 minutes on 2 cores
``full``      ``study-full``         ``study-full``          the paper recipes; a GPU and a real
                                                             dataset such as RAF-DB
============  =====================  ======================  =========================================

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
    """Notebook knobs, and the engine profiles the notebooks train with (saved with a run)."""

    name: str
    description: str
    #: Engine profile (``ferlib/recipes/profiles.yaml``) notebook 03 trains with; it also sets the
    #: SynthFER preset every notebook generates faces from.
    train_profile: str
    #: Engine profile of notebook 04's ablation runs.
    ablation_profile: str
    # -- 01 landmarks
    #: SynthFER faces on which MTCNN's error against the exact landmarks (NME) is measured.
    n_landmark_eval: int = 16
    # -- 02 sub-regions
    #: SynthFER faces LAN's guidance-map centres are fitted on in the demonstration.
    n_guidance_faces: int = 48
    # -- 03 training
    #: Models trained by notebook 03 (and explained by 05) unless the ``models`` parameter says otherwise.
    models: tuple[str, ...] = ("resnet18", "ma-net")
    seeds: tuple[int, ...] = (0,)
    #: Models trained with the first seed only (MAN's VGG16 under the ``lecture`` budget); the
    #: notebook says so beside their numbers.
    single_seed_models: tuple[str, ...] = ()
    # -- 04 ablations
    #: Ablation grids notebook 04 runs (names from ``ferlib.models.ablation_grids()``, the paper cards).
    ablations: tuple[str, ...] = ()
    #: Points per grid: the first ``ablation_points`` rows of each grid (None = all rows).
    ablation_points: int | None = 2
    #: Seeds every ablation row is trained with (empty = the notebook's ``seed`` only); one seed
    #: gives each row the Wilson interval of its test accuracy, several a t-interval over seeds.
    ablation_seeds: tuple[int, ...] = ()
    #: SynthFER keywords per ablation grid (``ferlib.data.synthfer`` config fields), e.g. sunglasses on
    #: every face for FFRA-Net's fusion grid, whose paper numbers are on sunglasses-occluded faces.
    ablation_data: tuple[tuple[str, dict], ...] = ()
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

    def replace(self, **changes: Any) -> StudyProfile:
        """A copy with ``changes`` (unknown names raise ``TypeError`` naming the field)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"unknown profile field(s) {unknown}; StudyProfile fields are {sorted(names)}")
        return dataclasses.replace(self, **changes)

    def seeds_for(self, model: str) -> tuple[int, ...]:
        """The seeds notebook 03 trains ``model`` with (the first only for ``single_seed_models``)."""
        return self.seeds[:1] if model in self.single_seed_models else self.seeds

    def ablation_dataset_kwargs(self, grid: str) -> dict:
        """``TrainConfig.dataset_kwargs`` of grid ``grid``'s runs (empty: the profile's preset)."""
        return dict(dict(self.ablation_data).get(grid, {}))

    @property
    def tqdm_disable(self) -> bool:
        """Value for ``tqdm(..., disable=...)`` inside notebooks."""
        return not self.progress


#: SynthFER keywords that put sunglasses on every face, on the near-frontal preset: FFRA-Net's fusion
#: rows are compared with the paper's SG_RAF-DB (sunglasses-occluded RAF-DB) numbers only on such faces.
SUNGLASSES: dict = {"config": {"preset": "frontal", "occlusion_probs": {"sunglasses": 1.0}}}

PROFILES: dict[str, StudyProfile] = {
    "smoke": StudyProfile(
        name="smoke",
        description="CI check: all five notebooks in about 5 minutes on 2 CPU cores; "
        "numbers only prove the pipeline runs",
        train_profile="study-smoke",
        ablation_profile="ablation-smoke",
        n_landmark_eval=8,
        n_guidance_faces=16,
        models=("resnet18", "ma-net"),
        seeds=(0,),
        ablations=("ffra-net-fusion",),
        ablation_points=2,
        # the sunglasses path runs in CI too
        ablation_data=(
            ("ffra-net-fusion", {"config": {"preset": "standard", "occlusion_probs": {"sunglasses": 1.0}}}),
        ),
        cam_methods=("GradCAM",),
        cam_per_class=1,
        cam_images=2,
        progress=False,
    ),
    "default": StudyProfile(
        name="default",
        description="make study: all five notebooks within 15 minutes on 2 CPU cores; a quick version of "
        "the committed 'lecture' outputs on synthetic SynthFER data (near-frontal 'frontal' preset), "
        "not paper reproductions",
        train_profile="study-default",
        ablation_profile="ablation-default",
        n_landmark_eval=32,
        # ResNet-18 and four of the five networks; MAN (VGG16, 141 M parameters) is trained by the
        # `lecture` and `full` profiles or `-p models=[...]`.
        models=("resnet18", "ma-net", "amp-net-r18", "lan", "ffra-net"),
        seeds=(0,),
        # one 3-row grid of the cheapest network; `lecture` runs three
        ablations=("lan-alpha",),
        ablation_points=3,
        ablation_data=(("ffra-net-fusion", SUNGLASSES),),
        cam_methods=("GradCAM", "HiResCAM"),
        cam_per_class=2,
        cam_images=4,
        progress=False,
    ),
    "lecture": StudyProfile(
        name="lecture",
        description="the committed notebook outputs: ResNet-18 and all five networks on synthetic "
        "SynthFER faces (near-frontal 'frontal' preset) over three seeds (MAN one: its VGG16 costs "
        "about 5 s per step on 2 cores), three 3-row ablation grids; about 90 minutes on 2 CPU cores "
        "(estimate in docs/study.md), or a GPU",
        train_profile="study-lecture",
        ablation_profile="ablation-lecture",
        n_landmark_eval=64,
        models=("resnet18", "ma-net", "amp-net-r18", "lan", "ffra-net", "man"),
        seeds=(0, 1, 2),
        single_seed_models=("man",),
        ablations=("lan-alpha", "ffra-net-fusion", "amp-net-region-size"),
        ablation_points=3,
        ablation_data=(("ffra-net-fusion", SUNGLASSES),),
        cam_methods=("GradCAM", "HiResCAM"),
        cam_per_class=2,
        cam_images=4,
        progress=False,
    ),
    "full": StudyProfile(
        name="full",
        description="the paper recipes (epochs, batch sizes, schedules); for a GPU and a real dataset",
        train_profile="study-full",
        ablation_profile="study-full",
        n_landmark_eval=500,
        models=("resnet18", "ma-net", "amp-net", "lan", "ffra-net", "man"),
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
        ablation_data=(
            ("ffra-net-fusion", {"config": {"preset": "standard", "occlusion_probs": {"sunglasses": 1.0}}}),
        ),
        ablation_points=None,
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
        raise ValueError(f"unknown study profile {name!r} (from the {source}); choose one of {', '.join(PROFILES)}")
    return name


def get_profile(profile: str | None = None, **overrides: Any) -> StudyProfile:
    """The :class:`StudyProfile` named by ``profile`` (see :func:`profile_name`), with overrides.

    ``overrides`` whose value is None are ignored, so a notebook can pass its parameters straight
    through (``get_profile(profile, ablation_points=points)`` with ``points=None`` keeps the profile's
    value).
    """
    base = PROFILES[profile_name(profile)]
    changes = {k: v for k, v in overrides.items() if v is not None}
    for key in ("models", "seeds", "single_seed_models", "ablations", "ablation_seeds", "cam_methods"):
        if key in changes:
            value = changes[key]
            changes[key] = (value,) if isinstance(value, (str, int)) else tuple(value)
    return base.replace(**changes) if changes else base
