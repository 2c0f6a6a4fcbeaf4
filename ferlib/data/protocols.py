"""Evaluation protocols: person-independent folds, class-balanced sampling, validation splits.

* CK+ person-independent 10-fold: subject ids sorted ascending, fold ``k`` holds every 10th
  subject starting at the ``k``-th (``subjects[k::10]``); the last three frames of each labelled
  sequence are the images (``build_dataset("ckplus", ..., frames=3)``).
* KDEF 10-fold cross-validation by subject (LAN paper, Sec. IV-B-1 and Table 1): the same rule on
  the 70 actors (F01 ... M35), so no actor appears in both train and test.
* AffectNet class-balanced oversampling (LAN Table 4 "+ Oversampling is used since AffectNet is
  imbalanced"; AMP-Net Sec. IV-A "data balance processing"): a sampler that draws every class
  equally often, with replacement.
* A seeded, stratified validation split carved from any training split, and a seeded stratified
  cap on a split's size (the profiles' ``max_train``/``max_test``).
* The trainer's seeded sample order: :func:`derive_seed` mixes ``(seed, epoch, purpose, rank)``
  into one seed per source of randomness, and :class:`EpochSampler` draws epoch ``e``'s order from
  ``(seed, e)`` alone, so a resumed run replays it exactly.
* :class:`IndexedDataset`, a labelled view of a subset of a dataset.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, WeightedRandomSampler


def _subject_key(subject: Hashable) -> tuple:
    """Sort key: by the numeric part when there is one (S005 < S010 < S100), then by text."""
    text = str(subject)
    digits = "".join(ch for ch in text if ch.isdigit())
    return (text.rstrip("0123456789").lstrip("0123456789"), int(digits) if digits else -1, text)


def subject_folds(subjects: Sequence[Hashable], num_folds: int = 10) -> list[list[Hashable]]:
    """Split the distinct ``subjects`` into ``num_folds`` folds: sorted ascending, fold ``k`` gets
    ``sorted_subjects[k::num_folds]`` (every ``num_folds``-th subject)."""
    if num_folds < 2:
        raise ValueError(f"num_folds must be at least 2, got {num_folds}")
    if any(s is None for s in subjects):
        raise ValueError("every item needs a subject id for a person-independent split (found None)")
    unique = sorted(set(subjects), key=_subject_key)
    if len(unique) < num_folds:
        raise ValueError(f"{len(unique)} subjects cannot fill {num_folds} folds")
    return [unique[k::num_folds] for k in range(num_folds)]


def fold_indices(subjects: Sequence[Hashable], fold: int, num_folds: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, test_idx)`` for ``fold`` of the person-independent protocol."""
    folds = subject_folds(subjects, num_folds)
    if not 0 <= fold < num_folds:
        raise ValueError(f"fold must be 0-{num_folds - 1}, got {fold}")
    test = set(folds[fold])
    mask = np.asarray([s in test for s in subjects])
    return np.nonzero(~mask)[0], np.nonzero(mask)[0]


def ckplus_folds(subjects: Sequence[Hashable], num_folds: int = 10) -> list[list[Hashable]]:
    """CK+ person-independent folds (subject ids ascending, every 10th subject per fold)."""
    return subject_folds(subjects, num_folds)


def kdef_folds(subjects: Sequence[Hashable], num_folds: int = 10) -> list[list[Hashable]]:
    """KDEF 10-fold cross-validation by actor (F01 ... M35)."""
    return subject_folds(subjects, num_folds)


def dataset_subjects(dataset) -> list[Hashable]:
    """Subject id of every item of a ferlib dataset, without decoding images."""
    records = getattr(dataset, "records", None)
    if records is None:
        raise TypeError(f"{type(dataset).__name__} has no records with subject ids")
    return [r.subject for r in records]


def class_balanced_weights(labels: Sequence[int], num_classes: int | None = None) -> np.ndarray:
    """Per-item weight 1 / (count of its class): every class gets the same total weight."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        raise ValueError("no labels")
    counts = np.bincount(labels, minlength=num_classes or 0).astype(np.float64)
    return (1.0 / counts[labels]).astype(np.float64)


def class_balanced_sampler(
    labels: Sequence[int], num_samples: int | None = None, seed: int = 0
) -> WeightedRandomSampler:
    """Oversampling sampler for imbalanced training sets (AffectNet): draws ``num_samples`` indices
    (default ``len(labels)``) with replacement, each class equally likely."""
    weights = class_balanced_weights(labels)
    generator = torch.Generator().manual_seed(int(seed))
    return WeightedRandomSampler(
        torch.as_tensor(weights, dtype=torch.double),
        num_samples=int(num_samples or len(weights)),
        replacement=True,
        generator=generator,
    )


def stratified_val_split(
    labels: Sequence[int], val_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, stratified ``(train_idx, val_idx)`` carved from a training split.

    Each class contributes ``round(val_fraction · n_c)`` items to validation (at least one when
    the class has two or more items, never all of them), chosen by a NumPy generator seeded with
    ``seed``; the same labels and seed always give the same split. Both index arrays are sorted.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(int(seed))
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        by_class[int(y)].append(i)
    val: list[int] = []
    for y in sorted(by_class):
        idx = np.asarray(by_class[y])
        n = len(idx)
        k = int(round(val_fraction * n))
        if n >= 2:
            k = min(max(k, 1), n - 1)
        else:
            k = 0
        if k:
            val.extend(rng.permutation(idx)[:k].tolist())
    val_idx = np.sort(np.asarray(val, dtype=np.int64))
    mask = np.ones(len(labels), dtype=bool)
    mask[val_idx] = False
    return np.nonzero(mask)[0], val_idx


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified train/validation index split (:func:`stratified_val_split`), both sorted int64."""
    tr, va = stratified_val_split(labels, val_fraction, seed)
    return np.sort(np.asarray(tr, dtype=np.int64)), np.sort(np.asarray(va, dtype=np.int64))


def stratified_cap(labels: np.ndarray, cap: int | None, seed: int) -> np.ndarray | None:
    """Indices of a seeded stratified subset of at most ``cap`` items (``None``: keep all)."""
    if not cap or len(labels) <= cap:
        return None
    from sklearn.model_selection import StratifiedShuffleSplit

    sss = StratifiedShuffleSplit(n_splits=1, train_size=cap, random_state=seed)
    keep, _ = next(sss.split(np.zeros(len(labels)), labels))
    return np.sort(keep)


def dataset_labels(ds: Dataset) -> np.ndarray:
    """The ``.labels`` array of a ferlib dataset as int64, read without decoding any image."""
    labels = getattr(ds, "labels", None)
    if labels is None:
        raise TypeError(
            f"{type(ds).__name__} has no .labels array; ferlib datasets expose their labels "
            "(see ferlib/data/datasets.py) so that splits can be stratified without decoding images"
        )
    return np.asarray(labels, dtype=np.int64)


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


_PURPOSES = {"order": 1, "augment": 2, "torch": 3, "workers": 4, "guidance": 5}


def derive_seed(seed: int, epoch: int, purpose: str, rank: int = 0) -> int:
    """A 63-bit seed for ``purpose`` (order, augment, torch, workers, guidance) in ``epoch`` on ``rank``
    (NumPy ``SeedSequence`` mixing)."""
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

    def __init__(self, labels: Sequence[int], seed: int, *, balanced: bool = False, rank: int = 0, world_size: int = 1):
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
        return idx[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())


__all__ = [
    "subject_folds",
    "fold_indices",
    "ckplus_folds",
    "kdef_folds",
    "dataset_subjects",
    "class_balanced_weights",
    "class_balanced_sampler",
    "stratified_val_split",
    "stratified_split",
    "stratified_cap",
    "dataset_labels",
    "IndexedDataset",
    "derive_seed",
    "EpochSampler",
]
