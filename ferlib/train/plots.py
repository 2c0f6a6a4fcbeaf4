"""Figures every training run saves in its folder: learning curves and confusion matrices (seaborn)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from ferlib.runs import RunFolder


def _plt():
    # No matplotlib.use(): without a display matplotlib falls back to Agg by itself, and inside a
    # notebook the kernel's inline backend must stay.
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: Sequence[dict[str, Any]]):
    """Loss and accuracy per epoch (training vs validation), learning rate on a log axis."""
    plt = _plt()
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    # the papers' protocol (no validation split) watches the test set after every epoch instead
    watched, label = ("test", "test (paper protocol)") if "test_loss" in history[0] else ("val", "validation")
    axes[0].plot(epochs, [h[f"{watched}_loss"] for h in history], "o-", label=label)
    axes[0].set(title="loss", xlabel="epoch")
    axes[1].plot(epochs, [h["train_accuracy"] for h in history], "o-", label="train")
    axes[1].plot(epochs, [h[f"{watched}_accuracy"] for h in history], "o-", label=label)
    axes[1].set(title="accuracy", xlabel="epoch", ylim=(0, 1))
    axes[2].plot(epochs, [h["lr"] for h in history], "o-")
    axes[2].set(title="learning rate (last step of epoch)", xlabel="epoch", yscale="log")
    for ax in axes[:2]:
        ax.legend()
    stages = [h.get("stage") for h in history]
    for i in range(1, len(stages)):
        if stages[i] != stages[i - 1]:
            for ax in axes:
                ax.axvline(epochs[i] - 0.5, color="grey", ls="--", lw=1)
    fig.tight_layout()
    return fig


def plot_confusion(metrics: dict[str, Any], title: str = "", normalize: bool = True):
    """Seaborn heat map of a confusion matrix (rows true, columns predicted), row-normalised by default."""
    import seaborn as sns

    plt = _plt()
    cm = np.asarray(metrics["confusion_matrix"], dtype=np.float64)
    names = metrics["class_names"]
    data = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(names), 0.6 + 0.7 * len(names)))
    sns.heatmap(
        data,
        annot=True,
        fmt=".2f" if normalize else ".0f",
        cmap="Blues",
        vmin=0,
        vmax=1 if normalize else None,
        xticklabels=names,
        yticklabels=names,
        cbar=False,
        ax=ax,
    )
    ax.set(xlabel="predicted", ylabel="true")
    summary = f"accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}"
    ax.set_title(f"{title}\n{summary}" if title else summary, fontsize=10)
    fig.tight_layout()
    return fig


def save_run_figures(
    folder: RunFolder,
    history: Sequence[dict[str, Any]],
    test_selected: dict[str, Any],
    test_final: dict[str, Any],
    selected_title: str | None = None,
) -> list:
    """``curves.png``, ``confusion_matrix.png`` (selected weights, titled ``selected_title``) and
    ``confusion_matrix_final.png``. Without seaborn/matplotlib (the notebooks extra) the run goes on
    without figures and says so."""
    try:
        plt = _plt()
        import seaborn  # noqa: F401  (plot_confusion draws with it)
    except ImportError as exc:
        print(f"figures skipped ({exc}); install ferlib[notebooks] for curves and confusion matrices", file=sys.stderr)
        return []
    selected_title = selected_title or "test, validation-selected epoch"
    paths = []
    for name, fig in (
        ("curves", plot_curves(history) if history else None),
        ("confusion_matrix", plot_confusion(test_selected, selected_title)),
        ("confusion_matrix_final", plot_confusion(test_final, "test, final epoch")),
    ):
        if fig is None:
            continue
        paths.append(folder.save_figure(fig, name))
        plt.close(fig)
    return paths
