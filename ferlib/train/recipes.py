"""Paper training recipes as named, editable configs, and profiles that shrink them for CPU work.

A :class:`Recipe` is the optimiser, learning-rate schedule, budget, batch size, loss weights,
augmentation, sampler and stage schedule one paper used. The five papers' recipes live in
``ferlib/recipes/<name>.yaml`` (one file per paper, numbers quoted from the paper with the
section they come from); edit a copy or pass ``--recipe path/to/file.yaml``.

A recipe may carry ``datasets:`` overrides — e.g. MA-Net trains CAER-S from scratch with a
different schedule, AMP-Net's RAF-DB run used lr 0.01 and batch 128 — which :func:`load_recipe`
applies when the dataset name matches. Numbers that do not come from the paper's text name where
they come from in ``public_source`` (e.g. the public training log), which lands in the run's
``recipe.json`` with the rest.

Augmentation presets: ``augment:`` is the recipe's default block; ``augment_presets:`` holds named
alternatives — by convention ``paper`` (what the text says) and ``public`` (what the public training
code does) — and ``augment_preset: NAME`` (in the YAML, ``load_recipe(..., augment_preset=NAME)``
or ``ferlib train --augment-preset NAME``) selects one, before the dataset overrides are applied.

A :class:`Profile` (``smoke``, ``default``, ``full``; in ``ferlib/recipes/profiles.yaml``) shrinks
any recipe for CPU work *without changing its structure*: the optimiser, the number of stages,
the loss weights, the augmentation and the *shape* of the schedule stay; the budget (epochs or
iterations) is cut and every schedule milestone is scaled by the same factor, so a recipe that
divides the learning rate by 10 at 20 % and 40 % of training still does so under ``smoke``.
Images stay 224×224 because the models' region geometry assumes it; the data set size shrinks
instead (``n_train``/``n_test`` for SynthFER, ``max_train``/``max_test`` caps for real data).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ferlib.config import from_dict, to_dict


@dataclass(frozen=True)
class Schedule:
    """Step learning-rate schedule: ``lr = base_lr * gamma ** (t // step_size)``.

    ``unit`` is ``"epochs"`` or ``"iterations"``; ``kind`` is ``"step"`` or ``"constant"``.
    The schedule restarts at the beginning of each stage (MAN trains each sub-network with it).
    """

    kind: str = "step"
    step_size: float = 0
    gamma: float = 0.1
    unit: str = "epochs"


@dataclass(frozen=True)
class Stage:
    """One phase of training. ``name`` is passed to ``model.set_stage`` when the model has it."""

    name: str
    epochs: int | None = None
    iterations: int | None = None


@dataclass(frozen=True)
class Augment:
    """Batch augmentation applied on the device (see :class:`ferlib.data.transforms.LandmarkAugment`).

    Order per sample: random-resized crop, flip, affine (translation, rotation, zoom), colour
    jitter, grayscale; landmarks move with the pixels. The defaults are "flip only".
    """

    hflip: bool = True
    translate: float = 0.0  # max shift as a fraction of the image side
    scale_min: float = 1.0  # random zoom range (a random crop is a zoom plus a shift)
    scale_max: float = 1.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    rotate: float = 0.0  # max rotation in degrees (angle ~ U(-rotate, rotate))
    affine_p: float = 1.0  # probability that a sample gets the affine part (translate/rotate/zoom)
    jitter_p: float = 1.0  # probability that a sample gets the colour jitter
    grayscale_p: float = 0.0  # probability that a sample is turned grey (RandomGrayscale)
    #: Random-resized crop: (min, max) share of the frame's area (RandomResizedCrop's ``scale``), None = off.
    crop_area: tuple[float, float] | None = None
    crop_ratio: tuple[float, float] = (0.75, 4.0 / 3.0)  # (min, max) aspect ratio w/h of the crop

    def __post_init__(self) -> None:
        for name in ("affine_p", "jitter_p", "grayscale_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augment.{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if self.crop_area is not None:
            object.__setattr__(self, "crop_area", tuple(float(v) for v in self.crop_area))
            if len(self.crop_area) != 2 or not 0 < self.crop_area[0] <= self.crop_area[1] <= 1:
                raise ValueError(f"augment.crop_area must be [min, max] with 0 < min <= max <= 1, got {self.crop_area}")
        object.__setattr__(self, "crop_ratio", tuple(float(v) for v in self.crop_ratio))
        if len(self.crop_ratio) != 2 or not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError(f"augment.crop_ratio must be [min, max] with 0 < min <= max, got {self.crop_ratio}")


@dataclass(frozen=True)
class Recipe:
    """One paper's training recipe. ``source`` cites the paper's section the numbers come from."""

    name: str
    model: str
    source: str = ""
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int | None = None
    iterations: int | None = None
    schedule: Schedule = field(default_factory=Schedule)
    stages: tuple[Stage, ...] = ()
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    augment: Augment = field(default_factory=Augment)
    sampler: str = "random"  # random | class_balanced
    #: LAN: epochs trained before the guidance map centres are fitted (0 = before training,
    #: on the initial/pre-trained backbone; None = the model needs no guidance maps).
    guidance_warmup_epochs: int | None = None
    notes: str = ""
    #: The named augmentation preset ``augment`` was taken from ("" = the recipe's own ``augment``).
    augment_preset: str = ""
    #: Where numbers that are not the paper's text come from (a public training log, a maintainer's
    #: answer) — the recipe's own or those of the applied per-dataset override; "" = the paper's text.
    public_source: str = ""

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"recipe {self.name!r}: optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.schedule.kind not in ("step", "constant"):
            raise ValueError(f"recipe {self.name!r}: schedule.kind must be 'step' or 'constant'")
        if self.schedule.unit not in ("epochs", "iterations"):
            raise ValueError(f"recipe {self.name!r}: schedule.unit must be 'epochs' or 'iterations'")
        if self.sampler not in ("random", "class_balanced"):
            raise ValueError(f"recipe {self.name!r}: sampler must be 'random' or 'class_balanced'")
        if not self.stages and (self.epochs is None) == (self.iterations is None):
            raise ValueError(f"recipe {self.name!r}: give exactly one of epochs or iterations")
        for st in self.stages:
            if (st.epochs is None) == (st.iterations is None):
                raise ValueError(f"recipe {self.name!r}, stage {st.name!r}: give exactly one of epochs or iterations")

    def stage_plan(self) -> tuple[Stage, ...]:
        """The stages to run; a recipe without stages is one unnamed stage with its budget."""
        if self.stages:
            return self.stages
        return (Stage(name="", epochs=self.epochs, iterations=self.iterations),)


@dataclass(frozen=True)
class Profile:
    """How much to shrink a recipe. ``None`` keeps the recipe's value."""

    name: str
    epochs: int | None = None  # epoch budget per stage
    iterations: int | None = None  # iteration budget per stage (iteration recipes)
    batch_size: int | None = None  # upper bound on the batch size
    n_train: int | None = None  # SynthFER training images
    n_test: int | None = None  # SynthFER test images
    max_train: int | None = None  # cap on real training images (seeded stratified subset)
    max_test: int | None = None
    val_fraction: float = 0.1
    #: Upper bound on the recipe's learning rate (None = the paper's). The papers' rates of 0.1
    #: assume batches of 64-350 (and, for AMP-Net/LAN, pre-trained starts); from scratch with the
    #: profiles' batches of 8-32 they diverge (LAN reaches a NaN loss), so the CPU profiles cap them.
    max_lr: float | None = None
    #: SynthFER preset (``ferlib.data.synthfer.SYNTHFER_PRESETS``) when the dataset is SynthFER and
    #: ``dataset_kwargs`` names none (None = the generator's ``standard`` preset).
    synthfer_preset: str | None = None
    #: At most this many learning-rate decays in a shrunk step schedule (None = as many as the
    #: recipe's). Four epochs cannot hold MA-Net's six ×0.1 steps without dropping the rate every
    #: epoch; with ``max_decays: 1`` the shrunk schedule decays once, half-way.
    max_decays: int | None = None
    description: str = ""


def _recipes_dir() -> Path:
    return Path(str(resources.files("ferlib") / "recipes"))


def list_recipes() -> list[str]:
    return sorted(p.stem for p in _recipes_dir().glob("*.yaml") if p.stem != "profiles")


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"recipe file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"recipe file {path} must hold a mapping, got {type(data).__name__}")
    return data


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "model_kwargs":
            out[k] = _merge(out[k], v)
        elif isinstance(v, dict) and k == "model_kwargs":
            out[k] = {**out.get(k, {}), **v}
        else:
            out[k] = v
    return out


def select_augment_preset(data: dict, preset: str | None, where: str = "<dict>") -> dict:
    """``data`` with ``augment`` replaced by its ``augment_presets[preset]`` block (``preset`` None:
    the YAML's own ``augment_preset``, if any); ``augment_preset`` records the choice."""
    name = preset if preset is not None else data.get("augment_preset")
    if not name:
        return data
    presets = data.get("augment_presets") or {}
    if name not in presets:
        raise ValueError(
            f"recipe {where} has no augmentation preset {name!r}; it defines: "
            f"{', '.join(presets) or 'none'} (add it under augment_presets: in a copy of the recipe)"
        )
    return {**data, "augment": dict(presets[name]), "augment_preset": name}


def recipe_from_dict(data: dict, where: str = "<dict>") -> Recipe:
    data = dict(data)
    data.pop("datasets", None)
    data.pop("augment_presets", None)
    try:
        if "schedule" in data and isinstance(data["schedule"], dict):
            data["schedule"] = from_dict(Schedule, data["schedule"])
        if "augment" in data and isinstance(data["augment"], dict):
            data["augment"] = from_dict(Augment, data["augment"])
        if "stages" in data:
            data["stages"] = tuple(from_dict(Stage, s) if isinstance(s, dict) else s for s in data["stages"] or ())
        return from_dict(Recipe, data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"recipe {where}: {exc}") from None


def _dataset_key(name: str) -> str:
    """Canonical dataset name, so that ``datasets: {caer-s: ...}`` applies to ``caers`` and vice versa."""
    from ferlib.data.datasets import resolve_name  # the dataset formats load only when a run needs them

    return resolve_name(name)


def load_recipe(name_or_path: str, dataset: str | None = None, augment_preset: str | None = None) -> Recipe:
    """Load a shipped recipe by name (``"ma-net"``) or a YAML file path.

    ``augment_preset`` (or the YAML's ``augment_preset:``) replaces ``augment`` by that block of
    ``augment_presets:`` first; then, with ``dataset``, the recipe's ``datasets: {<dataset>: {...}}``
    overrides are merged in.
    """
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        path = _recipes_dir() / f"{name_or_path}.yaml"
        if not path.exists():
            raise FileNotFoundError(
                f"no recipe named {name_or_path!r} (looked for {path}); available: "
                f"{', '.join(list_recipes())}, or pass a path to a .yaml recipe file"
            )
    data = select_augment_preset(_read_yaml(path), augment_preset, str(path))
    overrides = data.get("datasets") or {}
    if dataset is not None:
        key = _dataset_key(dataset)
        for ds_name, over in overrides.items():
            if _dataset_key(ds_name) == key:
                data = _merge(data, over)
    return recipe_from_dict(data, str(path))


def load_profile(name: str) -> Profile:
    data = _read_yaml(_recipes_dir() / "profiles.yaml")
    if name not in data:
        raise ValueError(f"unknown profile {name!r}; profiles.yaml defines: {', '.join(data)}")
    return from_dict(Profile, {"name": name, **data[name]})


def _scaled(value: float, factor: float) -> int:
    return max(1, int(round(value * factor)))


def apply_profile(recipe: Recipe, profile: Profile) -> Recipe:
    """Shrink ``recipe`` to ``profile``'s budget, scaling every milestone by the same factor.

    Epoch budgets become ``profile.epochs`` (when smaller), iteration budgets
    ``profile.iterations``; a step schedule's ``step_size`` is multiplied by the ratio of the new
    to the old budget of its unit (at least 1), so the number of learning-rate decays is kept —
    unless the profile's ``max_decays`` is smaller, when the decays are spread evenly instead
    (``step_size = ceil(budget / (max_decays + 1))``).
    The batch size and the base learning rate are capped by ``profile.batch_size`` and
    ``profile.max_lr``; everything else (optimiser, momentum, weight decay, stages, loss weights,
    augmentation, sampler) is the recipe's.
    """

    def new_budget(epochs: int | None, iterations: int | None) -> tuple[int | None, int | None, float]:
        if epochs is not None:
            target = min(epochs, profile.epochs) if profile.epochs is not None else epochs
            return target, None, target / epochs
        target = min(iterations, profile.iterations) if profile.iterations is not None else iterations
        return None, target, target / iterations  # type: ignore[operator]

    changes: dict[str, Any] = {}
    factor_for_unit: dict[str, float] = {}
    budget_for_unit: dict[str, int] = {}
    if recipe.stages:
        stages = []
        for st in recipe.stages:
            e, i, f = new_budget(st.epochs, st.iterations)
            unit = "epochs" if e is not None else "iterations"
            factor_for_unit[unit] = f
            budget_for_unit[unit] = max(budget_for_unit.get(unit, 0), e if e is not None else i)  # type: ignore[arg-type]
            stages.append(Stage(name=st.name, epochs=e, iterations=i))
        changes["stages"] = tuple(stages)
    if recipe.epochs is not None or recipe.iterations is not None:
        e, i, f = new_budget(recipe.epochs, recipe.iterations)
        changes["epochs"], changes["iterations"] = e, i
        unit = "epochs" if e is not None else "iterations"
        factor_for_unit[unit] = f
        budget_for_unit[unit] = e if e is not None else i  # type: ignore[assignment]
    sched = recipe.schedule
    if sched.kind == "step" and sched.unit in factor_for_unit:
        step = _scaled(sched.step_size, factor_for_unit[sched.unit])
        budget = budget_for_unit[sched.unit]
        if profile.max_decays is not None and (budget - 1) // step > profile.max_decays:
            step = max(1, math.ceil(budget / (profile.max_decays + 1)))
        changes["schedule"] = dataclasses.replace(sched, step_size=step)
    if profile.batch_size is not None and recipe.batch_size > profile.batch_size:
        changes["batch_size"] = profile.batch_size
    if profile.max_lr is not None and recipe.lr > profile.max_lr:
        changes["lr"] = profile.max_lr
    if (
        recipe.guidance_warmup_epochs
        and profile.epochs is not None
        and recipe.epochs is not None
        and recipe.epochs > profile.epochs
    ):
        changes["guidance_warmup_epochs"] = scaled_warmup(recipe.guidance_warmup_epochs, recipe.epochs, profile.epochs)
    return dataclasses.replace(recipe, **changes)


def scaled_warmup(warmup: int, epochs: int, new_epochs: int) -> int:
    """LAN's guidance warm-up for a budget of ``new_epochs`` instead of ``epochs``.

    Scaled with the budget but keeping the recipe's order of things (warm up, cluster, train with
    guidance): at least one warm-up epoch, and at least one guided epoch when there is room.
    """
    if warmup <= 0:
        return warmup
    scaled = int(math.floor(warmup * new_epochs / epochs))
    return min(max(1, scaled), max(0, new_epochs - 1))


def recipe_to_yaml(recipe: Recipe) -> str:
    return yaml.safe_dump(to_dict(recipe), sort_keys=False)


def rebudget(recipe: Recipe, *, epochs: int | None = None, iterations: int | None = None) -> Recipe:
    """Set every stage's epoch (or iteration) budget exactly, scaling milestones like a profile.

    Unlike :func:`apply_profile` this may also *lengthen* training (``--epochs 300``). LAN's
    guidance warm-up scales with the budget (:func:`scaled_warmup`).
    """

    def scale_factor(old: int | None, new: int | None) -> float | None:
        return None if old is None or new is None else new / old

    changes: dict[str, Any] = {}
    factors: dict[str, float] = {}
    if recipe.stages:
        stages = []
        for st in recipe.stages:
            e = epochs if (st.epochs is not None and epochs is not None) else st.epochs
            i = iterations if (st.iterations is not None and iterations is not None) else st.iterations
            f = scale_factor(st.epochs, e) if st.epochs is not None else scale_factor(st.iterations, i)
            factors["epochs" if st.epochs is not None else "iterations"] = f or 1.0
            stages.append(Stage(name=st.name, epochs=e, iterations=i))
        changes["stages"] = tuple(stages)
    if recipe.epochs is not None and epochs is not None:
        changes["epochs"] = epochs
        factors["epochs"] = epochs / recipe.epochs
        if recipe.guidance_warmup_epochs:
            changes["guidance_warmup_epochs"] = scaled_warmup(recipe.guidance_warmup_epochs, recipe.epochs, epochs)
    if recipe.iterations is not None and iterations is not None:
        changes["iterations"] = iterations
        factors["iterations"] = iterations / recipe.iterations
    sched = recipe.schedule
    if sched.kind == "step" and factors.get(sched.unit, 1.0) != 1.0:
        changes["schedule"] = dataclasses.replace(sched, step_size=_scaled(sched.step_size, factors[sched.unit]))
    return dataclasses.replace(recipe, **changes)
