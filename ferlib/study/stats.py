"""How sure a study result is: intervals over seeds and over test faces, and runs that learnt nothing.

Notebooks 03 and 04 report every accuracy with its uncertainty and never rank a run that did not
learn. The definitions, in one place:

* **over seeds** (:func:`seed_interval`): mean, sample standard deviation and the two-sided
  Student-t confidence interval of the mean, ``mean ± t_{(1+c)/2, n-1} · std / √n``
  (``scipy.stats.t``); one seed has no interval (``low``/``high`` are None).
* **over test faces** (:func:`accuracy_interval`): the Wilson score interval of one run's accuracy,
  ``k`` correct out of ``n`` (``scipy.stats.binomtest(...).proportion_ci``); used when a row has a
  single seed.
* **chance** (:func:`chance_interval`): the central interval that holds ``confidence`` of the
  accuracies a guesser that draws one of ``C`` classes uniformly scores on ``n`` faces,
  ``Binomial(n, 1/C)`` (``scipy.stats.binom.interval``), divided by ``n``. On 140 faces and seven
  classes it is 12/140–28/140 (8.6–20.0 %): a one-class guesser on a balanced set (1/7 = 14.3 %)
  lies inside it.
* **at chance** (:func:`run_flags`): the run's accuracy is at or below the upper end of that chance
  interval.
* **collapsed**: predictions concentrated on at most three classes — the fewest classes that
  together receive ``share`` (90 %) of the predictions number three or fewer.

A flagged run is shown, never ranked (:func:`rankable`). Rows of a grid *differ beyond their
intervals* when the intervals of the highest and the lowest row do not overlap
(:func:`separated`); otherwise the grid is "within noise" and no best setting is named
(:func:`best_separated`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

#: Share of the predictions that at most three classes receive in a collapsed run.
COLLAPSE_SHARE = 0.9
#: A run whose predictions fall on this many classes or fewer (for ``COLLAPSE_SHARE``) is collapsed.
COLLAPSE_CLASSES = 3


def seed_interval(values: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """``{"mean", "std", "n", "low", "high", "half_width"}`` of ``values`` over seeds.

    ``std`` is the sample standard deviation (ddof 1); the interval is Student-t's for the mean.
    With one value ``std`` is 0 and the interval is None: one seed says nothing about the spread.
    """
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        raise ValueError("seed_interval needs at least one value")
    mean = float(arr.mean())
    if arr.size == 1:
        return {"mean": mean, "std": 0.0, "n": 1, "low": None, "high": None, "half_width": None}
    std = float(arr.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, arr.size - 1) * std / np.sqrt(arr.size))
    return {"mean": mean, "std": std, "n": int(arr.size), "low": mean - half, "high": mean + half, "half_width": half}


def accuracy_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of an accuracy of ``correct`` out of ``n`` test faces."""
    if n <= 0 or not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n and n > 0, got correct={correct}, n={n}")
    ci = stats.binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def chance_interval(n: int, num_classes: int = 7, confidence: float = 0.95) -> tuple[float, float]:
    """Accuracies a uniform guesser over ``num_classes`` scores on ``n`` faces (central ``confidence``)."""
    if n <= 0 or num_classes < 2:
        raise ValueError(f"need n > 0 and at least two classes, got n={n}, num_classes={num_classes}")
    low, high = stats.binom.interval(confidence, int(n), 1.0 / num_classes)
    return float(low) / n, float(high) / n


def prediction_spread(confusion: Sequence[Sequence[int]], share: float = COLLAPSE_SHARE) -> int:
    """The fewest predicted classes that together receive ``share`` of all predictions."""
    cm = np.asarray(confusion, dtype=np.float64)
    predicted = np.sort(cm.sum(axis=0))[::-1]
    total = predicted.sum()
    if total <= 0:
        raise ValueError("the confusion matrix holds no predictions")
    return int(np.searchsorted(np.cumsum(predicted) / total, share - 1e-12) + 1)


def run_flags(test: Mapping[str, Any], confidence: float = 0.95) -> dict[str, Any]:
    """Flags of one run from its test metrics (``accuracy``, ``n``, ``confusion_matrix``).

    ``{"at_chance", "collapsed", "chance_high", "classes_predicted", "flag"}``; ``flag`` is a short
    reason ("at chance", "collapsed onto 2 classes", both joined) or "" for a run that may be ranked.
    """
    cm = np.asarray(test["confusion_matrix"])
    n = int(test.get("n") or cm.sum())
    k = cm.shape[0]
    _, high = chance_interval(n, k, confidence)
    at_chance = float(test["accuracy"]) <= high
    spread = prediction_spread(cm)
    collapsed = spread <= COLLAPSE_CLASSES
    reasons = (["at chance"] if at_chance else []) + (
        [f"collapsed onto {spread} class{'' if spread == 1 else 'es'}"] if collapsed else []
    )
    return {
        "at_chance": bool(at_chance),
        "collapsed": bool(collapsed),
        "chance_high": high,
        "classes_predicted": spread,
        "flag": ", ".join(reasons),
    }


def rankable(flags: Mapping[str, Any]) -> bool:
    """A run may be ranked only when it is neither at chance nor collapsed."""
    return not (flags.get("at_chance") or flags.get("collapsed"))


def separated(intervals: Sequence[tuple[float, float]]) -> bool:
    """True when the interval of the highest row lies wholly above that of the lowest row."""
    if len(intervals) < 2:
        return False
    mids = [(lo + hi) / 2 for lo, hi in intervals]
    top, bottom = intervals[int(np.argmax(mids))], intervals[int(np.argmin(mids))]
    return top[0] > bottom[1]


def best_separated(labels: Sequence[str], intervals: Sequence[tuple[float, float]]) -> str | None:
    """The label whose interval lies wholly above every other row's, else None ("within noise")."""
    if len(labels) != len(intervals):
        raise ValueError(f"{len(labels)} labels for {len(intervals)} intervals")
    if len(labels) < 2:
        return None
    mids = [(lo + hi) / 2 for lo, hi in intervals]
    i = int(np.argmax(mids))
    others = [hi for j, (_, hi) in enumerate(intervals) if j != i]
    return labels[i] if intervals[i][0] > max(others) else None


def summarize_model(tests: Sequence[Mapping[str, Any]], confidence: float = 0.95) -> dict[str, Any]:
    """One model's test results over its seeds (``test_selected`` metrics of each run).

    ``accuracy`` is :func:`seed_interval` of the per-seed accuracies; its ``low``/``high`` are the
    t-interval over seeds, or with a single seed the Wilson interval over that run's test faces
    (``interval`` says which). ``flags`` holds each run's :func:`run_flags`; the model is
    ``rankable`` only when none of its runs is flagged.
    """
    if not tests:
        raise ValueError("summarize_model needs the test metrics of at least one run")
    accs = [float(t["accuracy"]) for t in tests]
    acc = seed_interval(accs, confidence)
    if acc["n"] == 1:
        n = int(tests[0].get("n") or np.asarray(tests[0]["confusion_matrix"]).sum())
        acc["low"], acc["high"] = accuracy_interval(round(accs[0] * n), n, confidence)
        acc["interval"] = f"Wilson, {n} test faces (1 seed)"
    else:
        acc["interval"] = f"Student t over {acc['n']} seeds"
    flags = [run_flags(t, confidence) for t in tests]
    return {
        "accuracy": acc,
        "macro_f1": seed_interval([float(t["macro_f1"]) for t in tests], confidence),
        "flags": flags,
        "rankable": all(rankable(f) for f in flags),
        "flag": "; ".join(sorted({f["flag"] for f in flags if f["flag"]})),
    }


def top_confusions(confusion: Sequence[Sequence[int]], class_names: Sequence[str], k: int = 3) -> list[dict]:
    """The ``k`` largest off-diagonal cells as ``{"true", "predicted", "share"}``, ``share`` being the
    fraction of the true class's faces predicted as the other class (row-normalised)."""
    cm = np.asarray(confusion, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    np.fill_diagonal(share, -1.0)
    order = np.argsort(share, axis=None)[::-1][:k]
    out = []
    for flat in order:
        i, j = np.unravel_index(flat, share.shape)
        if share[i, j] <= 0:
            break
        out.append({"true": class_names[i], "predicted": class_names[j], "share": float(share[i, j])})
    return out
