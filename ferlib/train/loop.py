"""The trainer: one loop for all five networks, resumable, honest about what it evaluates.

``train(TrainConfig(...)) -> TrainResult`` does, in order:

1. resolve the recipe (``ferlib/recipes/<name>.yaml``), shrink it with the profile and apply the
   config's overrides; save ``config.json``, ``recipe.json`` and ``versions.json`` in the run folder;
2. build the training and test sets, carve a **seeded, stratified validation split** from the
   training set (the test set is never used for any choice);
3. train stage by stage (MAN: RASnet, then ERSnet — ``model.set_stage``), with the recipe's
   optimiser and a step learning-rate schedule computed from the iteration counter (so a resumed
   run gets exactly the same rates); LAN's guidance-map centres are fitted after the recipe's
   warm-up and ``batch["guidance"]`` is filled from them;
4. after every epoch: validation metrics, ``history.csv``/``history.json``, curves, ``last.pt``,
   and ``best.pt`` when validation accuracy improved — all written atomically;
5. at the end, touch the test set once for the final-epoch weights and once for the
   validation-selected weights, and write ``metrics.json`` and the confusion-matrix figures.

Determinism and resume: every source of randomness in an epoch (sample order, augmentation,
dropout, loader workers) is drawn from generators seeded by ``(seed, epoch, purpose)``, and the
checkpoint written at the end of each epoch holds the model, optimiser, scaler, history and RNG
states. A run killed at any point (even with SIGKILL mid-epoch) and restarted with
``resume=True`` repeats the interrupted epoch bit for bit and ends with the metrics of an
uninterrupted run (on CPU; CUDA kernels are deterministic only with ``deterministic=True``).

Data parallel: launched by ``torchrun``, each process trains on its shard of every global batch
(the global batch is the recipe's; each rank gets ``batch_size / world_size``), gradients are
averaged by DDP, training loss/accuracy are all-reduced, evaluation predictions are gathered,
and only rank 0 writes the run folder (see :mod:`ferlib.train.distributed`).
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from ferlib.config import from_dict, to_dict
from ferlib.fileio import atomic_torch_save, atomic_write_json, atomic_write_text
from ferlib.runs import RunFolder, resolve_device, seed_everything, worker_init_fn
from ferlib.train import distributed as dist_utils
from ferlib.train.metrics import classification_metrics, summarize_seeds
from ferlib.train.recipes import (
    Profile,
    Recipe,
    apply_profile,
    default_recipe_for,
    load_profile,
    load_recipe,
    rebudget,
)

CHECKPOINT_FORMAT = "ferlib-train-checkpoint"
CHECKPOINT_VERSION = 1

#: Config fields that may differ between an interrupted run and its resumption.
RESUME_FREE_FIELDS = ("resume", "progress", "num_workers", "device", "tensorboard", "cpu_threads",
                      "save_every_epoch", "eval_batch_size")


# --------------------------------------------------------------------------------------------
# Configuration and result
# --------------------------------------------------------------------------------------------


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
    init_format: str = "ferlib"
    augment: bool = True
    device: str = "auto"
    num_workers: int = 0
    amp: str = "auto"  # auto (bf16/fp16 on CUDA, off on CPU) | off | bf16 | fp16
    channels_last: bool | None = None  # None = on CUDA
    compile: bool = False
    deterministic: bool = True
    cpu_threads: int | None = None
    progress: bool = True
    tensorboard: bool = True
    eval_batch_size: int | None = None
    save_every_epoch: bool = False  # keep checkpoints/epoch-NNN.pt (weights only) besides last/best
    run_dir: str | None = None
    runs_root: str | None = None
    resume: bool = False


@dataclass
class TrainResult:
    """What :func:`train` returns: where the run lives and what it measured."""

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


# --------------------------------------------------------------------------------------------
# Seeds, samplers, datasets
# --------------------------------------------------------------------------------------------

_PURPOSES = {"order": 1, "augment": 2, "torch": 3, "workers": 4, "guidance": 5}


def derive_seed(seed: int, epoch: int, purpose: str, rank: int = 0) -> int:
    """A 63-bit seed for ``purpose`` in ``epoch`` (NumPy ``SeedSequence`` mixing)."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), _PURPOSES[purpose], int(rank)])
    return int(ss.generate_state(1, dtype=np.uint64)[0]) & ((1 << 63) - 1)


class EpochSampler(Sampler[int]):
    """Seeded per-epoch sample order, optionally class-balanced and sharded over ranks.

    The order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run replays it exactly.
    With ``world_size > 1`` the permutation is padded to a multiple of the world size and rank
    ``r`` takes every ``world_size``-th index from ``r``: consecutive per-rank batches of
    ``B / world_size`` then make up exactly the single-process global batch of ``B``.

    ``balanced=True`` draws ``len(labels)`` indices with replacement, each with probability
    proportional to ``1 / count(class)`` (class-balanced oversampling, as MA-Net/AffectNet).
    """

    def __init__(self, labels: Sequence[int], seed: int, *, balanced: bool = False,
                 rank: int = 0, world_size: int = 1):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.seed, self.balanced, self.rank, self.world_size = seed, balanced, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.world_size)

    def indices(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, "order"))
        n = len(self.labels)
        if self.balanced:
            counts = np.bincount(self.labels)
            weights = torch.as_tensor(1.0 / counts[self.labels], dtype=torch.double)
            idx = torch.multinomial(weights, n, replacement=True, generator=g)
        else:
            idx = torch.randperm(n, generator=g)
        total = len(self) * self.world_size
        if total > n:
            idx = torch.cat([idx, idx[: total - n]])
        return idx[self.rank::self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())


class IndexedDataset(Dataset):
    """A view of ``base`` restricted to ``indices`` that keeps ``labels`` and ``class_names``."""

    def __init__(self, base: Dataset, indices: Sequence[int]):
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = np.asarray(dataset_labels(base))[self.indices]
        self.class_names = getattr(base, "class_names", None)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.base[int(self.indices[i])]


def dataset_labels(ds: Dataset) -> np.ndarray:
    labels = getattr(ds, "labels", None)
    if labels is None:
        raise TypeError(
            f"{type(ds).__name__} has no .labels array; ferlib datasets expose their labels "
            "(see ferlib/data/datasets.py) so that splits can be stratified without decoding images"
        )
    return np.asarray(labels, dtype=np.int64)


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified train/validation index split (``ferlib.data.protocols`` when available)."""
    try:
        from ferlib.data.protocols import stratified_val_split
    except ImportError:
        stratified_val_split = None
    if stratified_val_split is not None:
        tr, va = stratified_val_split(labels, val_fraction, seed)
        return np.sort(np.asarray(tr, dtype=np.int64)), np.sort(np.asarray(va, dtype=np.int64))
    from sklearn.model_selection import StratifiedShuffleSplit

    n_val = max(int(round(len(labels) * val_fraction)), len(np.unique(labels)))
    sss = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
    tr, va = next(sss.split(np.zeros(len(labels)), labels))
    return np.sort(tr), np.sort(va)


def stratified_cap(labels: np.ndarray, cap: int | None, seed: int) -> np.ndarray | None:
    """Indices of a seeded stratified subset of at most ``cap`` items (``None``: keep all)."""
    if not cap or len(labels) <= cap:
        return None
    from sklearn.model_selection import StratifiedShuffleSplit

    sss = StratifiedShuffleSplit(n_splits=1, train_size=cap, random_state=seed)
    keep, _ = next(sss.split(np.zeros(len(labels)), labels))
    return np.sort(keep)


def build_datasets(cfg: TrainConfig, profile: Profile) -> tuple[Dataset, Dataset]:
    """Training and test sets of ``cfg.dataset`` shrunk to the profile's sizes."""
    from ferlib.data.datasets import build_dataset

    kw = dict(cfg.dataset_kwargs)
    synthetic = cfg.dataset.lower() == "synthfer" and cfg.root is None
    if synthetic and profile.synthfer_preset is not None:
        kw.setdefault("config", profile.synthfer_preset)
    common = dict(num_classes=cfg.num_classes, image_size=cfg.image_size, landmarks_file=cfg.landmarks_file, **kw)
    if synthetic:  # SynthFER is generated: its size is the profile's (train and test differ by split)
        train_ds = build_dataset(cfg.dataset, "train", None, n=cfg.n_train or profile.n_train or 2000, **common)
        test_ds = build_dataset(cfg.dataset, "test", None, n=cfg.n_test or profile.n_test or 700, **common)
    else:
        train_ds = build_dataset(cfg.dataset, "train", cfg.root, **common)
        test_ds = build_dataset(cfg.dataset, "test", cfg.root, **common)
    if not synthetic:
        max_train = profile.max_train if cfg.max_train is None else cfg.max_train
        max_test = profile.max_test if cfg.max_test is None else cfg.max_test
        keep = stratified_cap(dataset_labels(train_ds), max_train, cfg.split_seed)
        if keep is not None:
            train_ds = IndexedDataset(train_ds, keep)
        keep = stratified_cap(dataset_labels(test_ds), max_test, cfg.split_seed)
        if keep is not None:
            test_ds = IndexedDataset(test_ds, keep)
    if cfg.cache_dir:
        from ferlib.data.cache import cached_dataset

        train_ds = cached_dataset(train_ds, Path(cfg.cache_dir) / "train")
        test_ds = cached_dataset(test_ds, Path(cfg.cache_dir) / "test")
    return train_ds, test_ds


def make_loader(ds: Dataset, batch_size: int, *, sampler: Sampler | None = None, num_workers: int = 0,
                pin_memory: bool = False, drop_last: bool = False) -> DataLoader:
    from ferlib.data.schema import collate_samples

    return DataLoader(
        ds, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=num_workers,
        collate_fn=collate_samples, pin_memory=pin_memory, drop_last=drop_last,
        worker_init_fn=worker_init_fn if num_workers > 0 else None,
        generator=torch.Generator(), persistent_workers=False,
    )


# --------------------------------------------------------------------------------------------
# Batches on the device
# --------------------------------------------------------------------------------------------

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 B×3×H×W → ImageNet-normalised float32 (``ferlib.data.transforms.normalize_images``)."""
    try:
        from ferlib.data.transforms import normalize_images
    except ImportError:  # the transforms module is optional for the engine's own tests
        mean = torch.tensor(_IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(_IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
        return (images.float() / 255.0 - mean) / std
    return normalize_images(images)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    non_blocking = device.type == "cuda"
    return {k: (v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v)
            for k, v in batch.items()}


def build_augment(recipe: Recipe, enabled: bool) -> Callable | None:
    """The recipe's batch augmentation (``ferlib.data.transforms.LandmarkAugment``) or ``None``.

    The trainer re-seeds ``augment.generator`` at the start of every epoch from ``(seed, epoch)``.
    """
    a = recipe.augment
    jitter = (a.brightness, a.contrast, a.saturation)
    zoom = (a.scale_min, a.scale_max) != (1.0, 1.0)
    if not enabled or not (a.hflip or a.translate or zoom or any(jitter)):
        return None
    from ferlib.data.transforms import LandmarkAugment

    return LandmarkAugment(flip=a.hflip, translate=a.translate, rotate=0.0,
                           scale=(a.scale_min, a.scale_max) if zoom else None,
                           color_jitter=jitter if any(jitter) else None, seed=0)


def model_inputs(batch: dict[str, Any], needs: Sequence[str]) -> dict[str, Any]:
    return {k: batch[k] for k in needs if k in batch}


def compute_loss(core: nn.Module, output, batch: dict[str, Any]) -> torch.Tensor:
    if hasattr(core, "loss"):
        return core.loss(output, batch)
    return F.cross_entropy(output.logits, batch["label"])


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler=None) -> None:
    """Backward and optimiser step (through the gradient scaler for fp16 autocast)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a ferlib training checkpoint with ``torch.load(weights_only=True)``.

    Raises ``FileNotFoundError`` / ``ValueError`` naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; pass a run's checkpoints/best.pt or last.pt")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise ValueError(
            f"checkpoint {path} could not be read with torch.load(weights_only=True): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. "
            "It is truncated, not a PyTorch file, or holds pickled objects other than tensors and plain types"
        ) from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        kind = type(data).__name__ if not isinstance(data, dict) else f"dict with keys {sorted(data)[:8]}"
        raise ValueError(
            f"checkpoint {path} is not a ferlib training checkpoint (expected a dict with "
            f"format={CHECKPOINT_FORMAT!r}, found a {kind}); outside weights go through "
            "--init PATH --init-format manet-official|ampnet-official|torchvision"
        )
    missing = [k for k in ("model_name", "num_classes", "model", "model_kwargs") if k not in data]
    if missing:
        raise ValueError(f"checkpoint {path} lacks the field(s) {missing}; it was not written by ferlib.train")
    return data


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """``load_state_dict`` that reports missing, unexpected and mis-shaped tensors by name."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} with other shapes (e.g. {shapes[:3]})")
        raise ValueError(f"weights in {where} do not match the model: " + "; ".join(parts)
                         + ". Check --model, --num-classes and the model variant the checkpoint was trained with")
    model.load_state_dict(state)


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.as_tensor(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def predict(core: nn.Module, loader: DataLoader, device: torch.device, needs: Sequence[str], *,
            guidance_fn: Callable | None = None, autocast: Callable = nullcontext,
            channels_last: bool = False, progress: bool = False, desc: str = "eval") -> dict[str, Any]:
    """Labels, predictions and mean loss of ``core`` over ``loader`` (no augmentation)."""
    from tqdm.auto import tqdm

    was_training = core.training
    core.eval()
    ys, ps, loss_sum, n = [], [], 0.0, 0
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
        batch = to_device(batch, device)
        images = normalize(batch["image"])
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        batch["image"] = images
        with autocast():
            if guidance_fn is not None:
                batch["guidance"] = guidance_fn(images)
            out = core(images, **model_inputs(batch, needs))
            loss = compute_loss(core, out, batch)
        loss_sum += float(loss) * len(batch["label"])
        n += len(batch["label"])
        ys.append(batch["label"].cpu())
        ps.append(out.logits.float().argmax(1).cpu())
    core.train(was_training)
    return {"y_true": torch.cat(ys).numpy() if ys else np.zeros(0, np.int64),
            "y_pred": torch.cat(ps).numpy() if ps else np.zeros(0, np.int64),
            "loss_sum": loss_sum, "n": n}


def _gather_predictions(pred: dict[str, Any], ctx: dist_utils.DistContext) -> dict[str, Any]:
    """All ranks' shards → one prediction set (rank order; the order does not matter to metrics)."""
    if ctx.world_size == 1:
        return pred
    parts = dist_utils.all_gather_object(pred)
    return {"y_true": np.concatenate([p["y_true"] for p in parts]),
            "y_pred": np.concatenate([p["y_pred"] for p in parts]),
            "loss_sum": sum(p["loss_sum"] for p in parts), "n": sum(p["n"] for p in parts)}


def evaluate_split(core, ds, batch_size, device, needs, ctx, class_names, **kw) -> dict[str, Any]:
    """Metrics of ``core`` on all of ``ds``; under DDP each rank predicts a shard."""
    idx = np.arange(len(ds))[ctx.rank::ctx.world_size]
    loader = make_loader(IndexedDataset(ds, idx) if ctx.world_size > 1 else ds, batch_size)
    pred = _gather_predictions(predict(core, loader, device, needs, **kw), ctx)
    metrics = classification_metrics(pred["y_true"], pred["y_pred"], class_names=class_names)
    metrics["loss"] = pred["loss_sum"] / max(pred["n"], 1)
    return metrics


# --------------------------------------------------------------------------------------------
# The training run
# --------------------------------------------------------------------------------------------


def resolve_recipe(cfg: TrainConfig) -> tuple[Recipe, Profile]:
    """The recipe this config trains with: named/default recipe → explicit budget (``epochs``,
    ``iterations``, rescaling the paper's schedule) → profile (its budget where none was given,
    batch and learning-rate caps, ``max_decays``) → explicit ``batch_size``/``lr``."""
    profile = load_profile(cfg.profile)
    recipe = load_recipe(cfg.recipe or default_recipe_for(cfg.model), dataset=cfg.dataset)
    budget_profile = profile
    if cfg.epochs is not None or cfg.iterations is not None:
        # An explicit budget replaces the profile's: rescale the paper's schedule to it directly,
        # then let the profile cap the batch and learning rate and thin out the decays.
        recipe = rebudget(recipe, epochs=cfg.epochs, iterations=cfg.iterations)
        budget_profile = dataclasses.replace(
            profile, epochs=None if cfg.epochs is not None else profile.epochs,
            iterations=None if cfg.iterations is not None else profile.iterations)
    recipe = apply_profile(recipe, budget_profile)
    changes: dict[str, Any] = {}
    if cfg.batch_size is not None:
        changes["batch_size"] = cfg.batch_size
    if cfg.lr is not None:
        changes["lr"] = cfg.lr
    return (dataclasses.replace(recipe, **changes) if changes else recipe), profile


def _model_kwargs(cfg: TrainConfig, recipe: Recipe) -> dict[str, Any]:
    # A recipe's model keywords (loss weights...) belong to its own model; a baseline trained
    # with another model's recipe keeps only the schedule.
    kw = dict(recipe.model_kwargs) if recipe.model == cfg.model else {}
    kw.update(cfg.model_kwargs)
    return kw


def _lr_at(recipe: Recipe, stage_step: int, steps_per_epoch: int) -> float:
    s = recipe.schedule
    if s.kind == "constant" or not s.step_size:
        return recipe.lr
    step_iters = s.step_size * (steps_per_epoch if s.unit == "epochs" else 1)
    return recipe.lr * s.gamma ** (stage_step // max(1, int(round(step_iters))))


def _make_optimizer(recipe: Recipe, params) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if not params:
        raise RuntimeError("no trainable parameters in this stage; check model.set_stage")
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)


def _epoch_plan(recipe: Recipe, steps_per_epoch: int) -> list[tuple[int, str, int]]:
    """``[(stage_index, stage_name, steps_this_epoch), ...]`` for every epoch of the run."""
    plan = []
    for si, st in enumerate(recipe.stage_plan()):
        if st.epochs is not None:
            plan += [(si, st.name, steps_per_epoch)] * st.epochs
        else:
            left = st.iterations
            while left > 0:
                plan.append((si, st.name, min(steps_per_epoch, left)))
                left -= steps_per_epoch
    return plan


def _autocast_factory(device: torch.device, amp: str) -> tuple[Callable, torch.dtype | None]:
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return nullcontext, None
    if amp == "auto":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return (lambda: torch.autocast(device_type=device.type, dtype=dtype)), dtype


class _Guidance:
    """LAN guidance maps (lan.txt §III-C) through :class:`ferlib.models.guidance.GuidanceAnnotator`.

    The centres are fitted once, after ``recipe.guidance_warmup_epochs`` epochs, on the
    training part (never the validation or test data); a frozen copy of the backbone at that
    moment then annotates every (augmented) batch. Its state goes into the checkpoints.
    """

    def __init__(self) -> None:
        self.annotator: nn.Module | None = None

    def fit(self, core: nn.Module, ds: Dataset, batch_size: int, device: torch.device, seed: int,
            progress: bool = True) -> None:
        from ferlib.models.guidance import GuidanceAnnotator, fit_guidance

        centres = fit_guidance(core, make_loader(ds, batch_size), device=device, seed=seed, progress=progress)
        self.annotator = GuidanceAnnotator(core, centres).to(device)

    def state(self) -> dict[str, Any] | None:
        return None if self.annotator is None else self.annotator.state_dict()

    def restore(self, core: nn.Module, state: dict[str, Any], device: torch.device) -> None:
        from ferlib.models.guidance import GuidanceAnnotator, GuidanceCentres

        att, gen = state["attentive"].numpy(), state["general"].numpy()
        counts = np.zeros(att.shape[:2] + (2,), np.int64)
        self.annotator = GuidanceAnnotator(core, GuidanceCentres(att, gen, counts)).to(device)
        self.annotator.load_state_dict(state)

    def maps(self, images: torch.Tensor) -> torch.Tensor:
        return self.annotator(images)

    @property
    def fn(self) -> Callable | None:
        return self.maps if self.annotator is not None else None


def train(cfg: TrainConfig, *, train_dataset: Dataset | None = None,
          test_dataset: Dataset | None = None) -> TrainResult:
    """Train ``cfg.model`` on ``cfg.dataset`` with its recipe; see the module docstring.

    ``train_dataset``/``test_dataset`` replace the datasets built from ``cfg`` (notebooks and tests
    pass in-memory sets this way; their sizes are then theirs, not the profile's).
    """
    from tqdm.auto import tqdm

    from ferlib.models import create_model, model_entry

    ctx = dist_utils.init_from_env(cfg.device)
    device = ctx.device if ctx.world_size > 1 else resolve_device(cfg.device)
    dist_utils.configure_cpu_threads(device, cfg.cpu_threads, ctx)
    recipe, profile = resolve_recipe(cfg)
    val_fraction = cfg.val_fraction if cfg.val_fraction is not None else profile.val_fraction

    # ---- run folder (rank 0 decides, everyone agrees) ---------------------------------------
    run_dir = _prepare_run_dir(cfg, ctx)
    folder = RunFolder(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    resume_state = None
    if cfg.resume and (ckpt_dir / "last.pt").exists():
        resume_state = read_checkpoint(ckpt_dir / "last.pt")
        _check_resume_config(run_dir, cfg, resume_state)
    if ctx.is_main:
        folder.write_config(cfg)
        atomic_write_json(run_dir / "recipe.json", to_dict(recipe))
        folder.write_versions()
        atomic_write_json(run_dir / "seed.json", {"seed": cfg.seed, "split_seed": cfg.split_seed,
                                                  "deterministic": cfg.deterministic})

    # ---- data -------------------------------------------------------------------------------
    seed_everything(cfg.seed, deterministic=cfg.deterministic)
    if train_dataset is None or test_dataset is None:
        built_train, built_test = build_datasets(cfg, profile)
        train_dataset = train_dataset if train_dataset is not None else built_train
        test_dataset = test_dataset if test_dataset is not None else built_test
    labels = dataset_labels(train_dataset)
    class_names = list(getattr(train_dataset, "class_names", None) or [str(i) for i in range(cfg.num_classes)])
    tr_idx, va_idx = stratified_split(labels, val_fraction, cfg.split_seed)
    train_part, val_part = IndexedDataset(train_dataset, tr_idx), IndexedDataset(train_dataset, va_idx)
    if ctx.is_main:
        atomic_write_json(run_dir / "split.json", {
            "val_fraction": val_fraction, "split_seed": cfg.split_seed,
            "n_train": len(tr_idx), "n_val": len(va_idx), "n_test": len(test_dataset),
            "val_indices": va_idx.tolist()})

    batch_size = recipe.batch_size
    if batch_size > len(train_part):
        batch_size = len(train_part)
    if batch_size % ctx.world_size:
        raise ValueError(f"batch size {batch_size} is not divisible by the {ctx.world_size} processes; "
                         "pass --batch-size a multiple of the world size")
    per_rank = batch_size // ctx.world_size
    sampler = EpochSampler(train_part.labels, cfg.seed, balanced=recipe.sampler == "class_balanced",
                           rank=ctx.rank, world_size=ctx.world_size)
    pin = device.type == "cuda"
    train_loader = make_loader(train_part, per_rank, sampler=sampler, num_workers=cfg.num_workers,
                               pin_memory=pin, drop_last=True)
    steps_per_epoch = len(train_loader)
    eval_bs = cfg.eval_batch_size or max(per_rank, 8)

    # ---- model ------------------------------------------------------------------------------
    entry = model_entry(cfg.model)
    needs = tuple(entry.inputs)
    torch.manual_seed(cfg.seed)  # same initial weights on every rank and for every resume
    core = create_model(cfg.model, num_classes=cfg.num_classes, **_model_kwargs(cfg, recipe))
    if cfg.init and resume_state is None:
        _load_init(core, cfg.init, cfg.init_format)
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    core.to(device)
    if channels_last:
        core.to(memory_format=torch.channels_last)
    autocast, amp_dtype = _autocast_factory(device, cfg.amp)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    augmenter = build_augment(recipe, cfg.augment)
    guidance = _Guidance()

    plan = _epoch_plan(recipe, steps_per_epoch)
    start_epoch, global_step = 0, 0
    history: list[dict[str, Any]] = []
    best = {"score": -1.0, "epoch": None}
    if resume_state is not None:
        load_model_state(core, resume_state["model"], str(ckpt_dir / "last.pt"))
        start_epoch = int(resume_state["epoch"])
        global_step = int(resume_state["global_step"])
        history = list(resume_state["history"])
        best = dict(resume_state["best"])
        if resume_state.get("guidance") is not None:
            guidance.restore(core, resume_state["guidance"], device)
        if resume_state.get("rng"):
            _set_rng_state(resume_state["rng"])

    writer = _tensorboard(run_dir) if (cfg.tensorboard and ctx.is_main) else None
    stage_index, model, optimizer = None, None, None
    epoch_bar = tqdm(range(start_epoch, len(plan)), desc=f"{cfg.model} epochs", initial=start_epoch,
                     total=len(plan), disable=not (cfg.progress and ctx.is_main))
    for epoch in epoch_bar:
        si, stage_name, n_steps = plan[epoch]
        if si != stage_index:  # entering a stage (or resuming inside one)
            stage_index = si
            if stage_name and hasattr(core, "set_stage"):
                core.set_stage(stage_name)
            elif stage_name:
                raise ValueError(f"recipe {recipe.name!r} has stage {stage_name!r} but model "
                                 f"{cfg.model!r} has no set_stage(); use this recipe with its own model")
            optimizer = _make_optimizer(recipe, core.parameters())
            model = dist_utils.wrap_ddp(core, ctx)
            if cfg.compile:
                model = torch.compile(model)
            if resume_state is not None and resume_state.get("stage_index") == si and epoch == start_epoch:
                optimizer.load_state_dict(resume_state["optimizer"])
                if scaler is not None and resume_state.get("scaler"):
                    scaler.load_state_dict(resume_state["scaler"])
        stage_start_epoch = next(e for e, p in enumerate(plan) if p[0] == si)
        stage_step = sum(p[2] for p in plan[stage_start_epoch:epoch])

        if (recipe.guidance_warmup_epochs is not None and guidance.annotator is None
                and epoch >= recipe.guidance_warmup_epochs):
            guidance.fit(core, train_part, eval_bs, device, cfg.seed, progress=cfg.progress and ctx.is_main)

        # Every random draw of this epoch comes from (seed, epoch): resumable bit for bit.
        torch.manual_seed(derive_seed(cfg.seed, epoch, "torch", ctx.rank))
        np.random.seed(derive_seed(cfg.seed, epoch, "torch", ctx.rank) % (2**32))
        random.seed(derive_seed(cfg.seed, epoch, "torch", ctx.rank))
        sampler.set_epoch(epoch)
        train_loader.generator.manual_seed(derive_seed(cfg.seed, epoch, "workers", ctx.rank))
        if augmenter is not None:
            augmenter.generator = torch.Generator().manual_seed(derive_seed(cfg.seed, epoch, "augment", ctx.rank))

        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.float64, device=device)
        seen = torch.zeros((), dtype=torch.float64, device=device)
        lr = recipe.lr
        batches = iter(train_loader)
        for step in tqdm(range(n_steps), desc=f"epoch {epoch + 1}", leave=False,
                         disable=not (cfg.progress and ctx.is_main)):
            batch = to_device(next(batches), device)
            if augmenter is not None:
                batch = augmenter(batch)
            images = normalize(batch["image"])
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            batch["image"] = images
            lr = _lr_at(recipe, stage_step + step, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast():
                if guidance.fn is not None:
                    batch["guidance"] = guidance.maps(images)
                out = model(images, **model_inputs(batch, needs))
                loss = compute_loss(core, out, batch)
            optimizer_step(loss, optimizer, scaler)
            bsz = len(batch["label"])
            loss_sum += loss.detach().double() * bsz
            correct += (out.logits.detach().argmax(1) == batch["label"]).sum().double()
            seen += bsz
            global_step += 1
        del batches
        totals = dist_utils.all_reduce_sum(torch.stack([loss_sum, correct, seen]), ctx)
        # Checked once per epoch, not per step: a per-step check would synchronise the GPU.
        if not torch.isfinite(totals[0]):
            raise FloatingPointError(f"training loss became {float(totals[0])} in epoch {epoch + 1}; "
                                     "lower the learning rate (--lr or a recipe copy) or check the data")
        train_time = time.perf_counter() - t0

        val = evaluate_split(core, val_part, eval_bs, device, needs, ctx, class_names,
                             guidance_fn=guidance.fn, autocast=autocast, channels_last=channels_last,
                             progress=cfg.progress and ctx.is_main, desc="validation")
        row = {
            "epoch": epoch + 1, "stage": stage_name, "lr": lr, "steps": n_steps,
            "train_loss": float(totals[0] / totals[2]), "train_accuracy": float(totals[1] / totals[2]),
            "val_loss": val["loss"], "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"],
            "epoch_seconds": round(train_time, 3),
            "train_images_per_second": round(float(totals[2]) / max(train_time, 1e-9), 2),
        }
        history.append(row)
        # Selection only among epochs of the last stage: earlier stages (MAN's RASnet stage) do not
        # train the classifier, so their accuracy says nothing about the final network.
        improved = si == plan[-1][0] and val["accuracy"] > best["score"]
        if improved:
            best = {"score": val["accuracy"], "epoch": epoch + 1}
        if ctx.is_main:
            state = {
                "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "model_name": cfg.model, "model_kwargs": _model_kwargs(cfg, recipe),
                "num_classes": cfg.num_classes, "class_names": class_names,
                "image_size": cfg.image_size, "config": to_dict(cfg),
                "epoch": epoch + 1, "global_step": global_step, "stage_index": si, "stage": stage_name,
                "model": core.state_dict(), "history": history, "best": best,
                "guidance": guidance.state(),
            }
            if improved:
                atomic_torch_save(state, ckpt_dir / "best.pt")
            if cfg.save_every_epoch:
                atomic_torch_save(state, ckpt_dir / f"epoch-{epoch + 1:03d}.pt")
            state.update(optimizer=optimizer.state_dict(), scaler=scaler.state_dict() if scaler else None,
                         rng=_rng_state())
            atomic_torch_save(state, ckpt_dir / "last.pt")
            _write_history(run_dir, history)
            if writer is not None:
                for k, v in row.items():
                    if isinstance(v, (int, float)) and k != "epoch":
                        writer.add_scalar(k, v, epoch + 1)
        epoch_bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{row['val_accuracy']:.3f}")
        dist_utils.barrier(ctx)
    epoch_bar.close()

    # ---- the test set, touched once per weight choice ----------------------------------------
    ev = dict(guidance_fn=guidance.fn, autocast=autocast, channels_last=channels_last,
              progress=cfg.progress and ctx.is_main)
    test_final = evaluate_split(core, test_dataset, eval_bs, device, needs, ctx, class_names, desc="test", **ev)
    if best["epoch"] == len(plan):
        test_selected = test_final  # the validation-selected epoch is the final one: same weights
    elif best["epoch"] is not None and (ckpt_dir / "best.pt").exists():
        best_state = read_checkpoint(ckpt_dir / "best.pt")
        load_model_state(core, best_state["model"], str(ckpt_dir / "best.pt"))
        test_selected = evaluate_split(core, test_dataset, eval_bs, device, needs, ctx, class_names,
                                       desc="test (selected)", **ev)
    else:
        test_selected = test_final
    metrics = {
        "model": cfg.model, "dataset": cfg.dataset, "recipe": recipe.name, "profile": cfg.profile,
        "seed": cfg.seed, "synthetic": cfg.dataset.lower() == "synthfer",
        "epochs": len(plan), "iterations": global_step, "best_epoch": best["epoch"],
        "best_val_accuracy": best["score"],
        "final_val_accuracy": history[-1]["val_accuracy"] if history else None,
        "test_final": test_final, "test_selected": test_selected,
        "selection": "the epoch with the best validation accuracy (validation = stratified split of the "
                     "training data); the test set was evaluated only after training",
    }
    if ctx.is_main:
        folder.write_metrics(metrics)
        if writer is not None:
            writer.close()
        try:
            from ferlib.train import plots

            plots.save_run_figures(folder, history, test_selected, test_final)
        except ImportError as exc:  # seaborn/matplotlib are the notebooks extra
            print(f"figures skipped ({exc}); install ferlib[notebooks] for curves and confusion matrices",
                  file=sys.stderr)
    dist_utils.barrier(ctx)
    return TrainResult(run_dir=run_dir, config=cfg, recipe=recipe, history=history, metrics=metrics)


def _prepare_run_dir(cfg: TrainConfig, ctx: dist_utils.DistContext) -> Path:
    if cfg.run_dir:
        path = Path(cfg.run_dir)
        problem = None
        if ctx.is_main:
            path.mkdir(parents=True, exist_ok=True)
            if not cfg.resume and (path / "checkpoints" / "last.pt").exists():
                problem = (f"run folder {path} already holds a training run (checkpoints/last.pt); "
                           "pass --resume to continue it or choose another --run-dir")
        problem = dist_utils.broadcast_object(problem, ctx)  # every rank stops, none waits forever
        if problem:
            raise FileExistsError(problem)
        return path
    if cfg.resume:
        raise ValueError("--resume needs --run-dir: the folder of the run to continue")
    name = f"{cfg.model}-{cfg.dataset}-{cfg.profile}-seed{cfg.seed}"
    path = RunFolder.create(name, cfg.runs_root).path if ctx.is_main else None
    return Path(dist_utils.broadcast_object(str(path) if path else None, ctx))


def _check_resume_config(run_dir: Path, cfg: TrainConfig, state: dict[str, Any]) -> None:
    saved = dict(state.get("config") or {})
    now = to_dict(cfg)
    diff = [k for k in now if k not in RESUME_FREE_FIELDS and saved.get(k) != now[k]]
    if diff:
        detail = ", ".join(f"{k}: run has {saved.get(k)!r}, now {now[k]!r}" for k in diff[:6])
        raise ValueError(f"cannot resume {run_dir}: the configuration differs ({detail}); "
                         "resume with the same options or start a new --run-dir")


def _load_init(core: nn.Module, path: str, fmt: str) -> None:
    if fmt == "ferlib":
        state = read_checkpoint(path)
        load_model_state(core, state["model"], path)
        return
    from ferlib.models import load_checkpoint

    load_checkpoint(core, path, source=fmt)


def _write_history(run_dir: Path, history: list[dict[str, Any]]) -> None:
    import csv
    import io

    atomic_write_json(run_dir / "history.json", history)
    buf = io.StringIO()
    fields = list(history[0]) if history else []
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(history)
    atomic_write_text(run_dir / "history.csv", buf.getvalue())


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


# --------------------------------------------------------------------------------------------
# Several seeds
# --------------------------------------------------------------------------------------------


@dataclass
class MultiSeedResult:
    run_dir: Path
    runs: list[TrainResult]
    summary: dict[str, dict[str, float]]


def train_seeds(cfg: TrainConfig, seeds: Sequence[int], **datasets: Dataset) -> MultiSeedResult:
    """Train once per seed in ``<run_dir>/seed-<s>/`` and write ``summary.json`` (mean ± std)."""
    if len(seeds) == 1:
        res = train(dataclasses.replace(cfg, seed=seeds[0]), **datasets)
        return MultiSeedResult(res.run_dir, [res], summarize_seeds([res.metrics]))
    if cfg.run_dir:
        parent = Path(cfg.run_dir)
        parent.mkdir(parents=True, exist_ok=True)
    elif cfg.resume:
        raise ValueError("--resume needs --run-dir: the folder of the multi-seed run to continue")
    else:
        parent = RunFolder.create(f"{cfg.model}-{cfg.dataset}-{cfg.profile}-seeds", cfg.runs_root).path
    runs = [train(dataclasses.replace(cfg, seed=s, run_dir=str(parent / f"seed-{s}")), **datasets)
            for s in seeds]
    summary = summarize_seeds([r.metrics for r in runs])
    if dist_utils.current_context().is_main:
        atomic_write_json(parent / "summary.json", {"seeds": list(seeds), "summary": summary,
                                                     "synthetic": cfg.dataset.lower() == "synthfer"})
    return MultiSeedResult(parent, runs, summary)


def load_train_config(path: str | Path) -> TrainConfig:
    import json

    return from_dict(TrainConfig, json.loads(Path(path).read_text()))
