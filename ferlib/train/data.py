"""The trainer's datasets and loaders: a config's training and test sets, shrunk to the profile, and
the one ``DataLoader`` recipe every split goes through (seeded workers, ferlib's collation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ferlib.data.protocols import IndexedDataset, dataset_labels, stratified_cap
from ferlib.data.schema import collate_samples
from ferlib.runs import worker_init_fn
from ferlib.train.config import TrainConfig
from ferlib.train.recipes import Profile


def build_datasets(cfg: TrainConfig, profile: Profile) -> tuple[Dataset, Dataset]:
    """Training and test sets of ``cfg.dataset`` shrunk to the profile's sizes."""
    from ferlib.data.datasets import build_dataset  # the dataset formats load only when a run needs them

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


def check_split_sizes(
    cfg: TrainConfig,
    class_names: list[str],
    labels: np.ndarray,
    tr_idx: np.ndarray,
    va_idx: np.ndarray,
    n_test: int,
    val_fraction: float,
    validation: bool = True,
) -> None:
    """Refuse, before any training, a split too small to train or to measure (named, with the reason).
    ``validation=False`` (the paper protocol) expects no validation split."""
    synthetic = cfg.dataset.lower() == "synthfer" and cfg.root is None
    more_train = "a larger --n-train" if synthetic else "more training images (a larger profile)"
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    per_class = ", ".join(f"{name} {int(c)}" for name, c in zip(class_names, counts, strict=False))
    problem = None
    if len(labels) == 0:
        problem = "the training set is empty"
    elif validation and len(va_idx) == 0:
        problem = (
            f"the validation split is empty: {len(labels)} training images ({per_class}) with --val-fraction "
            f"{val_fraction:g} hold out 0 images of every class; pass {more_train} or a larger --val-fraction"
        )
    elif len(tr_idx) == 0:
        problem = (
            f"the training split is empty: all {len(labels)} training images ({per_class}) went to validation "
            f"with --val-fraction {val_fraction:g}; pass {more_train} or a smaller --val-fraction"
        )
    elif n_test == 0:
        problem = "the test set is empty" + ("; pass a larger --n-test" if synthetic else "")
    if problem:
        raise ValueError(problem)


def make_loader(
    ds: Dataset,
    batch_size: int,
    *,
    sampler: Sampler | None = None,
    num_workers: int = 0,
    pin_memory: bool = False,
    drop_last: bool = False,
) -> DataLoader:
    """A ``DataLoader`` in a fixed order (or ``sampler``'s) with ferlib's collation and seeded workers."""
    return DataLoader(
        ds,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_samples,
        pin_memory=pin_memory,
        drop_last=drop_last,
        worker_init_fn=worker_init_fn if num_workers > 0 else None,
        generator=torch.Generator(),
        persistent_workers=False,
    )
