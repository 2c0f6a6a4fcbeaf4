"""Seaborn figures of a robustness run: accuracy vs occluded area per occluder, accuracy vs yaw, the degradation
panel, expression intensity and the paired-comparison matrix. Every curve carries its bootstrap 95 % interval
(a band over faces, around the mean over seeds); SynthFER figures say "synthetic" in their title."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _theme():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    return plt, sns


def _curves(ax, df, x: str, palette: dict[str, Any], clean=None) -> None:
    for key, g in df.groupby("key", sort=False):
        g = g.sort_values(x)
        xs, ys = g[x].to_numpy(float), g["accuracy"].to_numpy(float)
        lo, hi = g["accuracy_low"].to_numpy(float), g["accuracy_high"].to_numpy(float)
        if clean is not None and key in clean:
            c = clean[key]
            xs, ys = np.r_[0.0, xs], np.r_[c["accuracy"], ys]
            lo, hi = np.r_[c["accuracy_low"], lo], np.r_[c["accuracy_high"], hi]
        ax.plot(xs, ys, marker="o", color=palette[key], label=key)
        ax.fill_between(xs, lo, hi, color=palette[key], alpha=0.15)


def _palette(keys) -> dict[str, Any]:
    import seaborn as sns

    keys = list(dict.fromkeys(keys))
    return dict(zip(keys, sns.color_palette("tab10", len(keys))))


def accuracy_vs_area(acc, title: str = ""):
    """One panel per occluder: accuracy (seed mean, band = bootstrap 95 % interval) against the occluded share of
    the face (the measured share; clean at 0)."""
    plt, _ = _theme()
    occ = acc[acc.family == "occlusion"]
    kinds = list(dict.fromkeys(occ.factor))
    clean = {r.key: r._asdict() for r in acc[acc.family == "clean"].itertuples()}
    pal = _palette(acc.key)
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(3.6 * max(1, len(kinds)), 3.4), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        d = occ[occ.factor == kind].copy()
        d["area"] = d["achieved_area"] if "achieved_area" in d else d["level"]
        _curves(ax, d, "area", pal, clean)
        ax.set_title(kind)
        ax.set_xlabel("occluded share of the face")
    axes[0][0].set_ylabel("accuracy")
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle(title or "Accuracy vs occluded area")
    fig.tight_layout()
    return fig


def accuracy_vs_level(acc, family: str, xlabel: str, title: str = ""):
    """Accuracy against the level of one family (``pose``: yaw in degrees; ``intensity``)."""
    plt, _ = _theme()
    d = acc[acc.family == family]
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    _curves(ax, d, "level", _palette(acc.key))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def degradation_panel(acc, title: str = ""):
    """One panel per degradation, strengths mild → strong (0 = clean)."""
    plt, _ = _theme()
    deg = acc[acc.family == "degradation"]
    kinds = list(dict.fromkeys(deg.factor))
    clean = {r.key: r._asdict() for r in acc[acc.family == "clean"].itertuples()}
    pal = _palette(acc.key)
    cols = min(3, max(1, len(kinds)))
    rows = -(-max(1, len(kinds)) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), sharey=True, squeeze=False)
    for ax, kind in zip(axes.ravel(), kinds):
        d = deg[deg.factor == kind].copy()
        levels = list(dict.fromkeys(d.level))
        d["step"] = [levels.index(v) + 1 for v in d.level]
        _curves(ax, d, "step", pal, clean)
        ax.set_xticks(range(len(levels) + 1), ["clean"] + [f"{v:g}" for v in levels], fontsize=8)
        ax.set_title(kind)
    for ax in axes.ravel()[len(kinds) :]:
        ax.set_visible(False)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title or "Degradations (mild → strong)")
    fig.tight_layout()
    return fig


def pairs_matrix(pairs, condition: str = "clean", title: str = ""):
    """Accuracy difference (row − column, seed-paired) with the largest McNemar p-value of the seed pairs."""
    plt, sns = _theme()
    d = pairs[pairs.condition == condition]
    keys = list(dict.fromkeys(list(d.model_a) + list(d.model_b)))
    n = len(keys)
    diff = np.zeros((n, n))
    text = np.full((n, n), "", dtype=object)
    for r in d.itertuples():
        i, j = keys.index(r.model_a), keys.index(r.model_b)
        diff[i, j], diff[j, i] = r.difference, -r.difference
        text[i, j] = text[j, i] = f"{r.difference:+.2f}\np={r.p_value:.2g}"
    fig, ax = plt.subplots(figsize=(1.4 * n + 2.5, 1.1 * n + 1.5))
    lim = max(0.05, float(np.abs(diff).max()))
    sns.heatmap(diff, annot=text, fmt="", cmap="vlag", vmin=-lim, vmax=lim, xticklabels=keys, yticklabels=keys,
                ax=ax, cbar_kws={"label": "accuracy difference (row − column)"}, annot_kws={"fontsize": 8})  # fmt: skip
    ax.set_title(title or f"Paired comparison on {condition}")
    fig.tight_layout()
    return fig


def save_figures(results: Any, out_dir: Path) -> list[Path]:
    """Every figure that has data, as PNGs in ``out_dir``; returns their paths."""
    import matplotlib.pyplot as plt

    from ferlib.fileio import atomic_path

    acc = results.table("accuracy")
    pairs = results.table("pairs")
    tag = " (SynthFER, synthetic)" if results.settings.get("synthetic") else f" ({results.settings.get('dataset')})"
    figs = []
    if len(acc) and (acc.family == "occlusion").any():
        figs.append(("accuracy_vs_area", accuracy_vs_area(acc, "Accuracy vs occluded area" + tag)))
    if len(acc) and (acc.family == "pose").any():
        xlabel = "|yaw| (degrees)" if results.settings.get("synthetic") else "estimated |yaw| bin start (degrees)"
        figs.append(("accuracy_vs_yaw", accuracy_vs_level(acc, "pose", xlabel, "Accuracy vs yaw" + tag)))
    if len(acc) and (acc.family == "degradation").any():
        figs.append(("degradations", degradation_panel(acc, "Degradations, mild → strong" + tag)))
    if len(acc) and (acc.family == "intensity").any():
        figs.append(("accuracy_vs_intensity", accuracy_vs_level(acc, "intensity", "expression intensity",
                                                                "Accuracy vs expression intensity" + tag)))  # fmt: skip
    if len(pairs):
        figs.append(("pairs_clean", pairs_matrix(pairs, "clean", "Paired comparison, clean faces" + tag)))
    paths = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, fig in figs:
        target = out_dir / f"{name}.png"
        with atomic_path(target, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=90, bbox_inches="tight", format="png")
        plt.close(fig)
        paths.append(target)
    return paths
