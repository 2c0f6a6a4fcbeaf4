"""Figures of notebooks 03 and 04: accuracies with their intervals beside chance, learning curves
as small multiples (one loss axis per model: their composite losses differ), and an ablation grid's
paper and run columns on one 0–100 % scale.

Every function returns a matplotlib ``Figure``; the notebook saves and shows it with
``ctx.show(fig, name)``. Interval definitions are :mod:`ferlib.study.stats`'s.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

RUN_COLOUR = "#E69F00"
PAPER_COLOUR = "#0072B2"
FLAG_COLOUR = "#999999"


def _chance(ax: Any, chance: tuple[float, float], num_classes: int, vertical: bool = True) -> None:
    """The chance level 1/C as a labelled line and its binomial 95 % band (in per cent)."""
    lo, hi = 100 * chance[0], 100 * chance[1]
    label = (
        f"chance 1/{num_classes} = {100 / num_classes:.1f} % (band: 95 % of a guesser's scores, {lo:.0f}–{hi:.0f} %)"
    )
    if vertical:
        ax.axvspan(lo, hi, color="grey", alpha=0.15, lw=0)
        ax.axvline(100 / num_classes, color="grey", ls=":", lw=1.2, label=label)
    else:
        ax.axhspan(lo, hi, color="grey", alpha=0.15, lw=0)
        ax.axhline(100 / num_classes, color="grey", ls=":", lw=1.2, label=label)


def plot_accuracy_intervals(
    summaries: Mapping[str, Mapping[str, Any]],
    seed_values: Mapping[str, Sequence[float]],
    chance: tuple[float, float],
    title: str,
    num_classes: int = 7,
) -> plt.Figure:
    """Test accuracy per model: the mean (diamond), each seed (dots) and the 95 % interval (bar).

    ``summaries`` maps a model to :func:`ferlib.study.stats.summarize_model`'s dict; flagged models
    are drawn in grey with their flag, never in the run colour.
    """
    names = list(summaries)
    fig, ax = plt.subplots(figsize=(9, 1.9 + 0.55 * len(names)))
    for y, name in enumerate(names):
        s = summaries[name]
        acc = s["accuracy"]
        colour = RUN_COLOUR if s["rankable"] else FLAG_COLOUR
        lo, hi = 100 * acc["low"], 100 * acc["high"]
        ax.errorbar(
            100 * acc["mean"],
            y,
            xerr=[[100 * acc["mean"] - lo], [hi - 100 * acc["mean"]]],
            fmt="D",
            color=colour,
            ecolor=colour,
            capsize=4,
            ms=7,
        )
        ax.plot([100 * v for v in seed_values[name]], [y] * len(seed_values[name]), "o", color="k", ms=3, alpha=0.7)
        note = (
            f"{acc['n']} seeds; t-interval over seeds"
            if acc["n"] > 1
            else "1 seed only; Wilson interval over the test faces"
        )
        if s["flag"]:
            note += f"; FLAGGED: {s['flag']}"
        ax.annotate(note, (hi, y), xytext=(6, 0), textcoords="offset points", va="center", fontsize=7)
    _chance(ax, chance, num_classes)
    ax.axvline(200 / num_classes, color="#009E73", ls="--", lw=1, label=f"2 × chance = {200 / num_classes:.1f} %")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("test accuracy % (diamond: mean over seeds; bar: 95 % interval; dots: single seeds)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.5 / (1 + 0.3 * len(names))), ncol=2)
    fig.tight_layout()
    return fig


def plot_curves(histories: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]], title: str) -> plt.Figure:
    """Small multiples: per model (column), its training loss (own y-axis: the models' composite
    losses differ) above its validation accuracy (shared 0–100 % axis), one line per seed, integer
    epoch ticks."""
    names = list(histories)
    last = max((h[-1]["epoch"] for hs in histories.values() for h in hs if h), default=1)
    ticks = range(1, last + 1) if last <= 12 else None
    fig, axes = plt.subplots(2, len(names), figsize=(2.6 * len(names) + 0.6, 5.2), squeeze=False, sharex="col")
    for j, name in enumerate(names):
        top, bottom = axes[0, j], axes[1, j]
        for k, hist in enumerate(histories[name]):
            ep = [h["epoch"] for h in hist]
            top.plot(ep, [h["train_loss"] for h in hist], "o-", ms=3, lw=1, color=f"C{k}", label=f"seed {k}")
            val = [None if h.get("val_accuracy") is None else 100 * h["val_accuracy"] for h in hist]
            bottom.plot(ep, val, "o-", ms=3, lw=1, color=f"C{k}")
        top.set_title(name, fontsize=9)
        bottom.axhline(100 / 7, color="grey", ls=":", lw=1)
        bottom.set_ylim(0, 100)
        bottom.set_xlabel("epoch")
        if ticks is not None:  # integer epochs only, even for a single epoch
            bottom.set_xticks(list(ticks))
            bottom.set_xlim(0.5, last + 0.5)
        else:
            bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].set_ylabel("training loss\n(each model's own loss)")
    axes[1, 0].set_ylabel("validation accuracy %\n(dotted: chance)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_ablation_grid(
    labels: Sequence[str],
    paper: Sequence[float | None],
    run_mean: Sequence[float],
    run_interval: Sequence[tuple[float, float]],
    chance: tuple[float, float],
    paper_title: str | None,
    run_title: str,
    title: str,
    flags: Sequence[str] = (),
    num_classes: int = 7,
) -> plt.Figure:
    """An ablation grid: the paper's accuracy per row (left; None = not printed) and this run's
    mean with its 95 % interval (right), both on one 0–100 % scale. ``paper_title=None`` leaves the
    paper column out (when the run's data cannot be compared with the paper's)."""
    y = np.arange(len(labels))
    ncols = 1 if paper_title is None else 2
    fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 1.6 + 0.5 * len(labels)), sharey=True, squeeze=False)
    axes = axes[0]
    if paper_title is not None:
        a = axes[0]
        vals = [np.nan if p is None else p for p in paper]
        a.barh(y, np.nan_to_num(vals), color=PAPER_COLOUR)
        for yi, p in zip(y, paper):
            a.annotate(
                "not printed" if p is None else f"{p:.1f}",
                (0 if p is None else p, yi),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        a.set_xlim(0, 100)
        a.set_xlabel("accuracy %")
        a.set_title(textwrap.fill(paper_title, 60), fontsize=9)
        _chance(a, (1 / num_classes, 1 / num_classes), num_classes)
    b = axes[-1]
    flags = list(flags) or [""] * len(labels)
    for yi, m, (lo, hi), fl in zip(y, run_mean, run_interval, flags):
        colour = FLAG_COLOUR if fl else RUN_COLOUR
        b.barh(yi, 100 * m, color=colour)
        b.errorbar(100 * m, yi, xerr=[[100 * (m - lo)], [100 * (hi - m)]], fmt="none", ecolor="k", capsize=4)
        if fl:
            b.annotate(fl, (100 * hi, yi), xytext=(4, 0), textcoords="offset points", va="center", fontsize=7)
    _chance(b, chance, num_classes)
    b.set_xlim(0, 100)
    b.set_xlabel("accuracy % (bar: 95 % interval)")
    b.set_title(textwrap.fill(run_title, 60), fontsize=9)
    b.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.9 / (1 + 0.3 * len(labels))))
    axes[0].set_yticks(y, labels)
    axes[0].invert_yaxis()
    fig.suptitle(textwrap.fill(title, 110), fontsize=10)
    fig.tight_layout()
    return fig
