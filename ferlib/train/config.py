"""What a training run depends on and what it returns: :class:`TrainConfig`, :class:`TrainResult`,
and :func:`resolve_recipe`, which turns a config into the recipe the run trains with."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferlib.config import from_dict
from ferlib.models import recipe_name
from ferlib.train.recipes import Profile, Recipe, apply_profile, load_profile, load_recipe, rebudget

#: Evaluation protocols of :attr:`TrainConfig.protocol`.
PROTOCOLS = ("validation", "paper")

#: How each protocol chose the weights behind ``test_selected`` (the ``selection`` of ``metrics.json``).
SELECTION = {
    "validation": "the epoch with the best validation accuracy (validation = stratified split of the "
    "training data); the test set was evaluated only after training",
    "paper": "paper protocol: no validation split (the full training split trained); the test set was evaluated "
    "after every epoch and test_best_epoch (= test_selected) is the epoch with the best TEST accuracy — "
    "optimistic, since the test set chose it, as in the papers' headlines; test_final is the final epoch's",
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; saved as ``config.json`` in the run folder.

    ``None`` means "take it from the recipe / profile". Budgets (``epochs``, ``iterations``) are
    per stage and rescale the schedule's milestones like a profile does.
    """

    model: str
    dataset: str = "synthfer"
    root: str | None = None
    recipe: str | None = None  # name in ferlib/recipes or a .yaml path; None = the model's own
    profile: str = "default"  # smoke | default | full
    seed: int = 0
    split_seed: int = 0  # seed of the train/validation split (fixed across training seeds)
    epochs: int | None = None
    iterations: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    num_classes: int = 7
    image_size: int = 224
    val_fraction: float | None = None
    n_train: int | None = None  # SynthFER sizes (None = profile's)
    n_test: int | None = None
    max_train: int | None = None  # caps on real data (None = profile's; 0 = no cap)
    max_test: int | None = None
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    landmarks_file: str | None = None
    cache_dir: str | None = None  # decoded uint8 cache (ferlib.data.cache)
    init: str | None = None  # outside weights to start from
    init_format: str = "ferlib"  # ferlib | torchvision | vgg-face | a card's format (manet-official...)
    init_partial: bool = False  # accept an --init that leaves part of the mapped backbone at its init
    augment: bool = True
    device: str = "auto"
    num_workers: int = 0
    amp: str = "auto"  # auto (bf16 on CUDA and on CPUs with native bf16, else fp16/fp32) | off | bf16 | fp16
    channels_last: bool | None = None  # None = on CUDA, and on CPU when autocast is bf16
    compile: bool = False
    data_on_device: str = "auto"  # auto (on for CUDA) | on | off: the training set on the device (device_data.py)
    data_device_budget_gb: float | None = None  # device memory it may take; None = half the free memory
    deterministic: bool = True
    cpu_threads: int | None = None
    progress: bool = True
    tensorboard: bool = True
    eval_batch_size: int | None = None
    save_every_epoch: bool = False  # keep checkpoints/epoch-NNN.pt (weights only) besides last/best
    run_dir: str | None = None
    runs_root: str | None = None
    resume: bool = False
    #: ``validation``: the epoch is chosen on a stratified validation split, the test set is touched
    #: only after training. ``paper``: the papers' protocol — the full training split, the test set
    #: evaluated after every epoch, and the best epoch's test accuracy reported as *optimistic*
    #: beside the final epoch's (ferlib.train.loop).
    protocol: str = "validation"
    augment_preset: str | None = None  # the recipe's named augmentation block (paper | public); None = its default

    def __post_init__(self) -> None:
        # One canonical dataset name from here on (``caer-s`` → ``caers``, ``CK+`` → ``ckplus``): the
        # recipe's per-dataset overrides, the run folder, config.json and metrics.json all use it.
        object.__setattr__(self, "dataset", canonical_dataset(self.dataset))


@dataclass
class TrainResult:
    """What :func:`ferlib.train.train` returns: where the run lives and what it measured."""

    run_dir: Path
    config: TrainConfig
    recipe: Recipe
    history: list[dict[str, Any]]
    metrics: dict[str, Any]

    @property
    def best_epoch(self) -> int | None:
        return self.metrics.get("best_epoch")

    def history_frame(self):
        import pandas as pd

        return pd.DataFrame(self.history)


def load_train_config(path: str | Path) -> TrainConfig:
    """A :class:`TrainConfig` from a run's ``config.json``."""
    import json

    return from_dict(TrainConfig, json.loads(Path(path).read_text()))


def check_train_config(cfg: TrainConfig) -> None:
    """Refuse values that cannot train (``ValueError`` naming the option), before any folder is made.

    Also refuses options the user gave that would have no effect: SynthFER's sizes with a real dataset, a
    landmarks file with generated SynthFER, ``--init-format`` without ``--init``.
    """
    positive = {
        "--epochs": cfg.epochs,
        "--iterations": cfg.iterations,
        "--batch-size": cfg.batch_size,
        "--n-train": cfg.n_train,
        "--n-test": cfg.n_test,
        "--cpu-threads": cfg.cpu_threads,
        "eval_batch_size": cfg.eval_batch_size,
    }
    for option, value in positive.items():
        if value is not None and value < 1:
            raise ValueError(f"{option} must be a positive integer, got {value}")
    if cfg.num_workers < 0:
        raise ValueError(f"--workers must be 0 or more, got {cfg.num_workers}")
    if cfg.lr is not None and not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ValueError(f"--lr must be a finite number above 0 (e.g. --lr 0.01), got {cfg.lr}")
    if cfg.val_fraction is not None and not (0 < cfg.val_fraction < 1):
        raise ValueError(
            f"--val-fraction must lie strictly between 0 and 1 (e.g. 0.1), got {cfg.val_fraction}; to train on "
            "the whole training split (the papers' protocol, best test epoch reported as optimistic) "
            "use --protocol paper"
        )
    synthetic = cfg.dataset.lower() == "synthfer" and cfg.root is None
    if synthetic and cfg.landmarks_file is not None:
        raise ValueError(
            f"--landmarks-file {cfg.landmarks_file} has no effect on generated SynthFER data (its landmarks come "
            "from the generator); leave it out, or train on a real dataset with --dataset/--root"
        )
    if cfg.init_format != "ferlib" and cfg.init is None:
        raise ValueError(
            f"--init-format {cfg.init_format} has no effect without --init PATH; add --init or leave it out"
        )
    if not synthetic:
        given = [o for o, v in (("--n-train", cfg.n_train), ("--n-test", cfg.n_test)) if v is not None]
        if given:
            raise ValueError(
                f"{' and '.join(given)} set the size of generated SynthFER data and have no effect on "
                f"{cfg.dataset}{' at ' + cfg.root if cfg.root else ''}; leave them out (the profile caps real data)"
            )


def _check_budget(cfg: TrainConfig, recipe: Recipe) -> None:
    """``--epochs`` alone on an iteration-based recipe (or ``--iterations`` alone on an epoch-based one) would
    be ignored: refused. Both given is fine (a library caller may give both to fit any recipe)."""
    units = {"epochs": recipe.epochs is not None, "iterations": recipe.iterations is not None}
    for st in recipe.stages or ():
        units["epochs"] |= st.epochs is not None
        units["iterations"] |= st.iterations is not None
    given = {"epochs": cfg.epochs is not None, "iterations": cfg.iterations is not None}
    if any(given[u] and units[u] for u in units):
        return  # a budget that applies was given (callers may give both to fit any recipe)
    for unit, value in (("epochs", cfg.epochs), ("iterations", cfg.iterations)):
        if value is not None and not units[unit]:
            other = "iterations" if unit == "epochs" else "epochs"
            raise ValueError(
                f"--{unit} has no effect: recipe {recipe.name!r} counts its budget in {other}; pass --{other} instead"
            )


def resolve_recipe(cfg: TrainConfig) -> tuple[Recipe, Profile]:
    """The recipe this config trains with: named/default recipe → explicit budget (``epochs``,
    ``iterations``, rescaling the paper's schedule) → profile (its budget where none was given,
    batch and learning-rate caps, ``max_decays``) → explicit ``batch_size``/``lr``."""
    profile = load_profile(cfg.profile)
    if cfg.protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {cfg.protocol!r}")
    recipe = load_recipe(cfg.recipe or recipe_name(cfg.model), dataset=cfg.dataset, augment_preset=cfg.augment_preset)
    budget_profile = profile
    _check_budget(cfg, recipe)
    if cfg.epochs is not None or cfg.iterations is not None:
        # An explicit budget replaces the profile's: rescale the paper's schedule to it directly,
        # then let the profile cap the batch and learning rate and thin out the decays.
        recipe = rebudget(recipe, epochs=cfg.epochs, iterations=cfg.iterations)
        budget_profile = dataclasses.replace(
            profile,
            epochs=None if cfg.epochs is not None else profile.epochs,
            iterations=None if cfg.iterations is not None else profile.iterations,
        )
    recipe = apply_profile(recipe, budget_profile)
    changes: dict[str, Any] = {}
    if cfg.batch_size is not None:
        changes["batch_size"] = cfg.batch_size
    if cfg.lr is not None:
        changes["lr"] = cfg.lr
    return (dataclasses.replace(recipe, **changes) if changes else recipe), profile


def canonical_dataset(name: str) -> str:
    """The manifest name of dataset ``name`` or one of its aliases (:func:`ferlib.data.datasets.resolve_name`)."""
    from ferlib.data.datasets import resolve_name  # the dataset formats load only when a run needs them

    return resolve_name(name)


def check_model_kwargs(model: str, kwargs: dict[str, Any], flag: str = "--model-kw") -> None:
    """Refuse variant keywords the factory of registered ``model`` does not take, naming those it does."""
    import inspect
    import typing

    from ferlib.models.registry import model_entry

    factory = model_entry(model).factory
    params = dict(inspect.signature(factory).parameters)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        # ``fn(num_classes, **variant)`` forwards to the class it returns: that class's keywords count
        try:
            returned = typing.get_type_hints(factory).get("return")
        except Exception:  # noqa: BLE001 - an unresolvable annotation: let the class refuse strangers itself
            returned = None
        if not isinstance(returned, type):
            return
        params = dict(inspect.signature(returned.__init__).parameters)
        params.pop("self", None)
    known = [n for n, p in params.items() if n != "num_classes" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    unknown = [k for k in kwargs if k not in known]
    if "num_classes" in kwargs:
        raise ValueError(f"{flag} num_classes: pass --num-classes instead")
    if unknown:
        raise ValueError(
            f"{flag} {', '.join(unknown)}: model {model!r} takes no such keyword; it takes "
            f"{', '.join(known) or 'no keywords'} (see `ferlib models {model}` / its factory's docstring)"
        )


def model_kwargs(cfg: TrainConfig, recipe: Recipe) -> dict[str, Any]:
    """The keywords the model is built with: the recipe's, then the config's."""
    # A recipe's model keywords (loss weights...) belong to its own model; a baseline trained
    # with another model's recipe keeps only the schedule.
    kw = dict(recipe.model_kwargs) if recipe.model == cfg.model else {}
    kw.update(cfg.model_kwargs)
    return kw


def protocol_val_fraction(cfg: TrainConfig, val_fraction: float) -> float:
    """The validation share the protocol trains with: ``0`` under ``paper`` (refusing an explicit
    share), the given one under ``validation`` (refusing ``0``, which leaves nothing to select on)."""
    if cfg.protocol == "paper":
        if cfg.val_fraction:
            raise ValueError(
                f"--protocol paper trains on the full training split (no validation split), but val_fraction is "
                f"{cfg.val_fraction}; drop --val-fraction, or use the default --protocol validation"
            )
        return 0.0
    if not val_fraction:
        raise ValueError(
            "val_fraction 0 leaves no validation split to choose the epoch on; use --protocol paper to train on "
            "the full training split and report the best-epoch test accuracy (marked optimistic) beside the final"
        )
    return val_fraction
