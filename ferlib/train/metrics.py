"""Classification metrics (scikit-learn) and multi-seed summaries.

Every number ferlib reports about a classifier comes from :func:`classification_metrics`:
overall accuracy, per-class accuracy (the recall of each class, i.e. the diagonal of the
row-normalised confusion matrix, which is what the papers' per-class tables show), the
mean of the per-class accuracies, macro-F1 and the confusion matrix (rows = true class,
columns = predicted class). :func:`summarize_seeds` turns several seeds' metrics into
``mean ± std`` (sample standard deviation, ``ddof=1``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    class_names: Sequence[str] | None = None,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """Accuracy, per-class accuracy, mean class accuracy, macro-F1 and confusion matrix.

    ``num_classes`` (or ``len(class_names)``) fixes the label set ``0..C-1`` so that a class
    missing from a small evaluation set still gets a row (its per-class accuracy is NaN and it
    is left out of the mean class accuracy, never silently counted as 0 or 1).
    """
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred has {y_pred.size}")
    if y_true.size == 0:
        raise ValueError("cannot compute metrics on an empty prediction set")
    if num_classes is None:
        num_classes = len(class_names) if class_names is not None else int(max(y_true.max(), y_pred.max())) + 1
    labels = np.arange(num_classes)
    names = list(class_names) if class_names is not None else [str(i) for i in labels]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names given for {num_classes} classes")
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)
    present = support > 0
    return {
        "n": int(y_true.size),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "mean_class_accuracy": float(np.nanmean(per_class[present])) if present.any() else float("nan"),
        # Macro-F1 over the classes that occur in y_true or y_pred (scikit-learn's convention
        # when no labels are forced would drop absent ones; we pass the present ones explicitly).
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels[present | (cm.sum(axis=0) > 0)], average="macro", zero_division=0)
        ),
        "per_class_accuracy": {n: (None if np.isnan(a) else float(a)) for n, a in zip(names, per_class)},
        "support": {n: int(s) for n, s in zip(names, support)},
        "confusion_matrix": cm.tolist(),
        "class_names": names,
    }


def mean_std(values: Iterable[float]) -> dict[str, float]:
    """``{"mean", "std", "n"}`` with the sample standard deviation (0 for a single value)."""
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std, "n": int(arr.size)}


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "", *, scalars_only: bool = True) -> dict[str, Any]:
    """Nested metric dicts → ``{"a.b.c": value}`` with dotted paths.

    ``scalars_only`` keeps numbers only (as floats; booleans dropped), which is what averaging over
    seeds needs; ``False`` keeps every leaf value (the study's headline and regression checks).
    """
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, path + ".", scalars_only=scalars_only))
        elif not scalars_only:
            out[path] = value
        elif isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
            out[path] = float(value)
    return out


def summarize_seeds(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean ± std over seeds of every scalar found in the per-seed metric dicts.

    Keys are dotted paths (``"test_selected.accuracy"``, ``"test_final.per_class_accuracy.happy"``).
    Only paths present in every seed are summarised.
    """
    if not per_seed:
        raise ValueError("summarize_seeds needs at least one seed's metrics")
    flat = [flatten_metrics(m) for m in per_seed]
    common = set(flat[0]).intersection(*flat[1:]) if len(flat) > 1 else set(flat[0])
    return {k: mean_std(f[k] for f in flat) for k in sorted(common) if not k.endswith(".n")}


def format_mean_std(stat: Mapping[str, float], scale: float = 100.0, digits: int = 2) -> str:
    """``"85.12 ± 0.34"`` (accuracies as percentages by default)."""
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"
