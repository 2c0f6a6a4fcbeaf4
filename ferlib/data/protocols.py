"""Evaluation protocols: person-independent folds, class-balanced sampling, validation splits.

* CK+ person-independent 10-fold: subject ids sorted ascending, fold ``k`` holds every 10th
  subject starting at the ``k``-th (``subjects[k::10]``); the last three frames of each labelled
  sequence are the images (``build_dataset("ckplus", ..., frames=3)``).
* KDEF 10-fold cross-validation by subject (LAN paper, Sec. IV-B-1 and Table 1): the same rule on
  the 70 actors (F01 ... M35), so no actor appears in both train and test.
* AffectNet class-balanced oversampling (LAN Table 4 "+ Oversampling is used since AffectNet is
  imbalanced"; AMP-Net Sec. IV-A "data balance processing"): a sampler that draws every class
  equally often, with replacement.
* A seeded, stratified validation split carved from any training split.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Sequence

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler


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


def class_balanced_sampler(labels: Sequence[int], num_samples: int | None = None, seed: int = 0) -> WeightedRandomSampler:
    """Oversampling sampler for imbalanced training sets (AffectNet): draws ``num_samples`` indices
    (default ``len(labels)``) with replacement, each class equally likely."""
    weights = class_balanced_weights(labels)
    generator = torch.Generator().manual_seed(int(seed))
    return WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double),
                                 num_samples=int(num_samples or len(weights)), replacement=True, generator=generator)


def stratified_val_split(labels: Sequence[int], val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
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


__all__ = [
    "subject_folds",
    "fold_indices",
    "ckplus_folds",
    "kdef_folds",
    "dataset_subjects",
    "class_balanced_weights",
    "class_balanced_sampler",
    "stratified_val_split",
]
