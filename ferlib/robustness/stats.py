"""Statistics a reviewer accepts: bootstrap intervals over faces, mean ± std over seeds, paired tests.

* **Intervals** are percentile bootstrap intervals (Efron 1979, doi:10.1214/aos/1176344552) from
  :func:`scipy.stats.bootstrap`, resampling *faces*: every seed of a model is scored on the same resampled faces,
  so one interval covers both the face sample and the seeds' average.
* **Paired tests** between two models use the same faces: McNemar's test (McNemar 1947,
  doi:10.1007/BF02295996) on the 2×2 table of correct/wrong, from
  :func:`statsmodels.stats.contingency_tables.mcnemar` (exact binomial when fewer than 25 faces disagree, else
  χ² with continuity correction), per seed pair; and a paired bootstrap interval of the accuracy difference.
* **Drops** from clean to a condition are paired too: per face, correct on clean minus correct under the
  condition (averaged over seeds), with its bootstrap interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: Resamples of every bootstrap interval unless a caller says otherwise.
N_RESAMPLES = 2000
CONFIDENCE = 0.95


def accuracy(y_true: np.ndarray, y_pred: np.ndarray, axis: int = -1) -> np.ndarray:
    """Share of ``y_pred == y_true`` along ``axis`` (broadcasts, so batches of resamples work)."""
    return np.mean(np.asarray(y_true) == np.asarray(y_pred), axis=axis)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Macro-F1 over the last axis, vectorised over leading axes; classes absent from both ``y_true`` and
    ``y_pred`` are left out of the mean and a class with no true or predicted face scores 0 (scikit-learn's
    ``f1_score(average="macro", zero_division=0)`` on the labels present)."""
    yt = np.asarray(y_true)
    yp = np.asarray(y_pred)
    yt, yp = np.broadcast_arrays(yt, yp)
    classes = np.arange(num_classes)
    t = yt[..., None] == classes  # ... × n × C
    p = yp[..., None] == classes
    tp = (t & p).sum(-2)
    fp = (~t & p).sum(-2)
    fn = (t & ~p).sum(-2)
    denom = 2 * tp + fp + fn
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    present = (t | p).any(-2)
    return (f1 * present).sum(-1) / np.maximum(present.sum(-1), 1)


def bootstrap_interval(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(index)`` over ``n`` faces.

    ``statistic`` receives an integer index array of shape ``(..., n)`` (a batch of resamples of the faces)
    and returns one value per resample (shape ``(...)``); :func:`scipy.stats.bootstrap` draws the resamples.
    Returns ``(nan, nan)`` for fewer than two faces.
    """
    from scipy.stats import bootstrap

    if n < 2:
        return float("nan"), float("nan")
    res = bootstrap(
        (np.arange(n),),
        lambda idx, axis=-1: statistic(np.moveaxis(idx, axis, -1)),
        n_resamples=int(n_resamples),
        confidence_level=float(confidence),
        method="percentile",
        vectorized=True,
        batch=200,
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value) of per-seed numbers."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def metric_summary(
    y_true: np.ndarray, preds: np.ndarray, num_classes: int, *, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> dict[str, float]:
    """Accuracy and macro-F1 of one model under one condition: ``preds`` is seeds × faces.

    ``accuracy``/``macro_f1``: mean over seeds; ``*_std``: std over seeds; ``*_low``/``*_high``: bootstrap
    interval of the seed mean over faces."""
    y = np.asarray(y_true)
    p = np.atleast_2d(np.asarray(preds))
    acc_s = accuracy(y[None], p)
    f1_s = macro_f1(y[None], p, num_classes)
    out: dict[str, float] = {"n": int(len(y)), "seeds": int(len(p))}
    out["accuracy"], out["accuracy_std"] = mean_std(acc_s)
    out["macro_f1"], out["macro_f1_std"] = mean_std(f1_s)
    correct = p == y[None]  # seeds × faces
    out["accuracy_low"], out["accuracy_high"] = bootstrap_interval(
        lambda idx: correct[:, idx].mean(-1).mean(0), len(y), n_resamples=n_resamples, seed=seed
    )
    out["macro_f1_low"], out["macro_f1_high"] = bootstrap_interval(
        lambda idx: _seed_mean_f1(y, p, idx, num_classes), len(y), n_resamples=n_resamples, seed=seed
    )
    return out


def _seed_mean_f1(y: np.ndarray, p: np.ndarray, idx: np.ndarray, num_classes: int) -> np.ndarray:
    # idx: (..., n) → y[idx]: (..., n); p[:, idx]: S × ... × n → mean over S.
    return np.mean([macro_f1(y[idx], p[s][idx], num_classes) for s in range(len(p))], axis=0)


def paired_mean_interval(
    diff: np.ndarray, *, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of per-face paired differences and its bootstrap interval: ``(mean, low, high)``."""
    d = np.asarray(diff, dtype=np.float64)
    if d.size == 0:
        return float("nan"), float("nan"), float("nan")
    low, high = bootstrap_interval(lambda idx: d[idx].mean(-1), len(d), n_resamples=n_resamples, seed=seed)
    return float(d.mean()), low, high


def mcnemar_test(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, Any]:
    """McNemar's test of two classifiers on the same faces (boolean arrays, one entry per face).

    Table ``[[both right, only A right], [only B right, both wrong]]``; exact binomial test when fewer than
    25 faces disagree, else χ² with continuity correction (statsmodels). ``difference`` = acc(A) − acc(B)."""
    from statsmodels.stats.contingency_tables import mcnemar

    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"McNemar needs the same faces for both models: {a.shape} vs {b.shape}")
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    discordant = int(table[0, 1] + table[1, 0])
    exact = discordant < 25
    if discordant == 0:
        p_value, statistic = 1.0, 0.0
    else:
        res = mcnemar(table, exact=exact, correction=True)
        p_value, statistic = float(res.pvalue), float(res.statistic)
    return {
        "n": int(a.size),
        "only_a": int(table[0, 1]),
        "only_b": int(table[1, 0]),
        "exact": bool(exact),
        "statistic": statistic,
        "p_value": p_value,
        "accuracy_a": float(a.mean()) if a.size else float("nan"),
        "accuracy_b": float(b.mean()) if b.size else float("nan"),
        "difference": float(a.mean() - b.mean()) if a.size else float("nan"),
    }


def compare_models(
    correct_a: np.ndarray, correct_b: np.ndarray, *, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """Paired comparison of models A and B on the same faces; ``correct_*`` are seeds × faces booleans.

    Seeds are paired in order (seed k of A with seed k of B, as many as both have). Returns the accuracy
    difference (mean over seed pairs) with the paired bootstrap interval over faces, the McNemar p-value of every
    seed pair and their largest (``p_value``: the most conservative), and how many pairs were tested."""
    a = np.atleast_2d(np.asarray(correct_a, dtype=bool))
    b = np.atleast_2d(np.asarray(correct_b, dtype=bool))
    k = min(len(a), len(b))
    tests = [mcnemar_test(a[s], b[s]) for s in range(k)]
    diff, low, high = paired_mean_interval(a[:k].mean(0) - b[:k].mean(0), n_resamples=n_resamples, seed=seed)
    return {
        "seed_pairs": k,
        "difference": diff,
        "difference_low": low,
        "difference_high": high,
        "p_values": [t["p_value"] for t in tests],
        "p_value": max(t["p_value"] for t in tests) if tests else float("nan"),
        "only_a": int(sum(t["only_a"] for t in tests)),
        "only_b": int(sum(t["only_b"] for t in tests)),
    }
