"""Inside a notebook: the :class:`NotebookContext` a study notebook builds from its parameters.

:func:`prepare_notebook` turns the notebook's ``parameters`` cell into a context: the
:class:`~ferlib.profiles.StudyProfile` (notebook knobs and the engine profile it trains with), the
run folder that all five notebooks share, the device, seeding, and helpers to save PNG figures and
record metrics (``metrics.json`` keyed by notebook, read back by later notebooks). Also the study's
constants (notebook names, standard parameters) and the run-folder metrics helpers the other study
modules build on.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferlib.fileio import atomic_write_json
from ferlib.profiles import StudyProfile, get_profile
from ferlib.runs import RunFolder

if TYPE_CHECKING:  # the training engine imports torch; notebooks load it when they train
    from ferlib.train import TrainConfig
    from ferlib.train.recipes import Profile

#: The study notebooks, in the order they run (later ones read earlier ones' outputs).
NOTEBOOKS: tuple[str, ...] = (
    "01_landmarks.ipynb",
    "02_subregions.ipynb",
    "03_training.ipynb",
    "04_ablations.ipynb",
    "05_gradcam.ipynb",
    "06_robustness.ipynb",
)
#: Parameters every study notebook declares in its ``parameters`` cell.
STANDARD_PARAMETERS: tuple[str, ...] = (
    "profile",
    "dataset",
    "data_root",
    "models",
    "device",
    "seed",
    "run_dir",
)
#: Key inside a notebook's metrics section listing its headline numbers (not a metric itself).
HEADLINE_KEY = "headline"
KERNEL_NAME = "python3"
#: Set to "1" in the kernels of a resumed study (``ferlib study --resume``): :meth:`NotebookContext.train_config`
#: then asks for ``resume=True``, so a finished training run is read back (re-evaluated, not retrained) and an
#: interrupted one continues from ``checkpoints/last.pt``; ``1`` by hand does the same for a notebook rerun.
RESUME_ENV = "FERLIB_STUDY_RESUME"


def repo_root() -> Path:
    """The checkout that holds ``ferlib/`` (the study needs the source tree's ``notebooks/``)."""
    return Path(__file__).resolve().parents[2]


def default_notebook_dir() -> Path:
    return repo_root() / "notebooks"


def notebook_key(notebook: str) -> str:
    """``"03_training.ipynb"`` → ``"03_training"`` (the notebook's section in ``metrics.json``)."""
    return Path(notebook).name.removesuffix(".ipynb")


def flatten_section(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Nested metrics → flat dotted names, non-scalar values (lists) kept."""
    from ferlib.train.metrics import flatten_metrics

    return flatten_metrics(metrics, scalars_only=False)


def flatten_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Nested ``metrics.json`` → ``{"03_training.ma-net.test_accuracy": 0.61, ...}``.

    Headline lists are dropped; they say which numbers to show, they are not numbers.
    """
    cleaned = {
        nb: {k: v for k, v in section.items() if k != HEADLINE_KEY} if isinstance(section, Mapping) else section
        for nb, section in metrics.items()
    }
    return flatten_section(cleaned)


def read_run_metrics(run_dir: str | Path) -> dict[str, Any]:
    """The run folder's ``metrics.json`` (empty dict when no notebook has written it yet)."""
    path = Path(run_dir) / "metrics.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); delete it or rerun the study into a new folder") from None


@dataclass
class NotebookContext:
    """What one study notebook needs: its profile, the shared run folder, device and seed."""

    notebook: str
    profile: StudyProfile
    run: RunFolder
    dataset: str = "synthfer"
    data_root: str | None = None
    models: tuple[str, ...] = ()
    device: Any = "cpu"
    seed: int = 0

    @property
    def run_dir(self) -> Path:
        return self.run.path

    @property
    def key(self) -> str:
        return notebook_key(self.notebook)

    @property
    def prefix(self) -> str:
        """Figure-name prefix: ``"03"`` for ``03_training``."""
        return self.key.split("_", 1)[0]

    @property
    def tqdm_disable(self) -> bool:
        """Pass as ``disable=`` to tqdm: ``tqdm.auto`` ignores ``TQDM_DISABLE`` in a kernel."""
        return self.profile.tqdm_disable or bool(os.environ.get("TQDM_DISABLE"))

    @property
    def synthetic(self) -> bool:
        return self.dataset.lower() == "synthfer"

    @property
    def train_profile(self) -> Profile:
        """The engine profile (``ferlib.train.recipes.Profile``) notebook 03 trains with."""
        from ferlib.train import load_profile

        return load_profile(self.profile.train_profile)

    @property
    def synthfer_preset(self) -> str:
        """The SynthFER preset the study generates faces from (the training engine profile's;
        ``standard`` when it names none)."""
        return self.train_profile.synthfer_preset or "standard"

    @property
    def dataset_label(self) -> str:
        """How results are labelled everywhere: dataset, profile and seeds (SynthFER says synthetic)."""
        name = f"SynthFER (synthetic, {self.synthfer_preset} preset)" if self.synthetic else self.dataset
        seeds = ",".join(str(s) for s in self.profile.seeds)
        return f"{name}, profile {self.profile.name}, seed(s) {seeds}"

    def train_config(self, model: str, seed: int | None = None, **overrides: Any) -> TrainConfig:
        """The ``ferlib.train.TrainConfig`` notebook 03 trains ``model`` with, ``seed`` (None = the
        notebook's) into ``<run>/train/<model>/seed-<seed>``.

        Sizes and budgets (epochs, batch, data sizes, learning-rate cap, SynthFER preset) are left to
        the engine profile the study profile names (``train_profile``); ``overrides`` replace any
        ``TrainConfig`` field, e.g. ``profile=ctx.profile.ablation_profile, model_kwargs={...}``
        for notebook 04's ablation runs, or ``epochs=3``. In a resumed study (:data:`RESUME_ENV`) the
        config resumes: a run already finished in its folder is read back instead of retrained.
        """
        from ferlib.train import TrainConfig

        seed = self.seed if seed is None else int(seed)
        fields: dict[str, Any] = dict(
            model=model,
            dataset=self.dataset,
            root=self.data_root,
            profile=self.profile.train_profile,
            seed=seed,
            device=str(self.device),
            num_workers=self.profile.num_workers,
            progress=self.profile.progress,
            tensorboard=False,
            run_dir=str(self.path(f"train/{model}/seed-{seed}")),
            resume=os.environ.get(RESUME_ENV) == "1",
        )
        fields.update(overrides)
        return TrainConfig(**fields)

    def describe(self) -> str:
        """A short, path-free summary to print in the notebook's setup cell."""
        return f"notebook {self.key} | {self.dataset_label} | device {self.device} | run folder {self.run_dir.name}"

    def path(self, name: str) -> Path:
        """A file inside the run folder (for artefacts such as checkpoints or caches)."""
        return self.run_dir / name

    def save_figure(self, fig: Any, name: str, dpi: int = 100) -> Path:
        """Save ``fig`` as ``<run>/<NN>_<name>.png`` (PNG, atomic) and return the path."""
        stem = name if name.startswith(self.prefix + "_") else f"{self.prefix}_{name}"
        return self.run.save_figure(fig, stem, dpi=dpi)

    def show(self, fig: Any, name: str, dpi: int = 100) -> None:
        """Save ``fig`` like :meth:`save_figure`, display that PNG in the notebook and close ``fig``.

        Displaying the saved file (not the live figure) works whatever matplotlib backend a library
        switched to, and shows exactly what the run folder holds.
        """
        import matplotlib.pyplot as plt
        from IPython.display import Image, display

        path = self.save_figure(fig, name, dpi=dpi)
        plt.close(fig)
        display(Image(data=path.read_bytes(), format="png"))

    def record(self, headline: Sequence[str] | None = None, **metrics: Any) -> None:
        """Merge ``metrics`` into this notebook's section of the run's ``metrics.json``.

        ``headline`` names the numbers the study report shows for this notebook (dotted paths
        into nested metrics, e.g. ``"ma-net.accuracy"``).
        """
        data = read_run_metrics(self.run_dir)
        section = dict(data.get(self.key) or {})
        section.update(jsonable(metrics))
        if headline is not None:
            missing = [k for k in headline if k not in flatten_section(section)]
            if missing:
                raise KeyError(
                    f"headline metric(s) {missing} not recorded for {self.key}; "
                    f"recorded: {sorted(flatten_section(section))}"
                )
            section[HEADLINE_KEY] = list(headline)
        data[self.key] = section
        atomic_write_json(self.run_dir / "metrics.json", data)

    def metrics_of(self, notebook: str) -> dict[str, Any] | None:
        """Another notebook's recorded metrics from the same run folder, or None."""
        return read_run_metrics(self.run_dir).get(notebook_key(notebook))


def jsonable(value: Any) -> Any:
    """Convert numpy/torch scalars and arrays, tuples and paths to JSON values."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return jsonable(value.tolist())
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def default_run_dir(profile: str) -> Path:
    """Where a notebook run by hand (``run_dir=None``) writes: ``$FERLIB_RUNS|runs/notebooks-<profile>``.

    Relative to the kernel's working directory (``notebooks/`` in JupyterLab and nbval), and the
    same for all five notebooks so that they read each other's outputs.
    """
    return Path(os.environ.get("FERLIB_RUNS", "runs")) / f"notebooks-{profile}"


def prepare_notebook(
    notebook: str,
    *,
    profile: str | None = None,
    dataset: str = "synthfer",
    data_root: str | None = None,
    models: Sequence[str] | str | None = None,
    device: str = "auto",
    seed: int = 0,
    run_dir: str | os.PathLike | None = None,
    **profile_overrides: Any,
) -> NotebookContext:
    """Build the :class:`NotebookContext` from a notebook's parameters (call it in the 2nd cell).

    ``profile=None`` reads ``$FERLIB_PROFILE`` (else ``default``); ``models=None`` takes the
    profile's models; keyword ``profile_overrides`` that are not None replace study-profile fields
    (``ablation_points=3``; training sizes are the engine profile's, see
    :meth:`NotebookContext.train_config`). Seeds Python/NumPy/torch with ``seed``.
    """
    from ferlib.runs import resolve_device, seed_everything

    prof = get_profile(profile, **profile_overrides)
    if models is not None:
        prof = prof.replace(models=(models,) if isinstance(models, str) else tuple(models))
    folder = RunFolder.at(run_dir if run_dir is not None else default_run_dir(prof.name))
    seed_everything(int(seed))
    return NotebookContext(
        notebook=notebook,
        profile=prof,
        run=folder,
        dataset=dataset,
        data_root=None if data_root is None else str(data_root),
        models=prof.models,
        device=resolve_device(device),
        seed=int(seed),
    )
