"""ferlib.study.figures: the properties issue 14 asks of notebooks 03 and 04's figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ferlib.study.figures import plot_ablation_grid, plot_accuracy_intervals, plot_curves  # noqa: E402
from ferlib.study.stats import chance_interval, summarize_model  # noqa: E402

CM = (np.diag([8] * 7) + 2).tolist()


def _tests(accs):
    return [{"accuracy": a, "macro_f1": 0.3, "n": 280, "confusion_matrix": CM} for a in accs]


def test_accuracy_intervals_draw_the_interval_and_a_labelled_chance_line():
    seeds = {"resnet18": [0.40, 0.45, 0.42], "man": [0.2]}
    sums = {m: summarize_model(_tests(v)) for m, v in seeds.items()}
    fig = plot_accuracy_intervals(sums, seeds, chance_interval(280), "t")
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 100.0)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(lab.startswith("chance 1/7 = 14.3 %") for lab in labels)
    # the error bar of resnet18 spans its t-interval (in per cent)
    lo, hi = 100 * sums["resnet18"]["accuracy"]["low"], 100 * sums["resnet18"]["accuracy"]["high"]
    segs = [c for c in ax.collections if hasattr(c, "get_segments") and len(c.get_segments())]
    spans = [tuple(np.round(s[:, 0], 6)) for c in segs for s in c.get_segments()]
    assert (round(lo, 6), round(hi, 6)) in spans
    texts = [t.get_text() for t in ax.texts]
    assert any("1 seed only; Wilson" in t for t in texts)
    plt.close(fig)


def test_curves_have_integer_epoch_ticks_and_one_loss_axis_per_model():
    hist = [[{"epoch": e, "train_loss": 2.0 - 0.1 * e, "val_accuracy": 0.2 + 0.05 * e} for e in (1, 2, 3)]]
    fig = plot_curves({"ma-net": hist, "lan": hist}, "t")
    top = [a for a in fig.axes if a.get_title() in ("ma-net", "lan")]
    assert len(top) == 2 and top[0].get_shared_y_axes().get_siblings(top[0]) == [top[0]]
    for ax in fig.axes[2:]:  # row-major: the two loss axes, then the two accuracy axes
        assert list(ax.get_xticks()) == [1, 2, 3]
        assert ax.get_ylim() == (0.0, 100.0)
    plt.close(fig)


def test_ablation_columns_share_one_scale_and_the_paper_column_can_be_left_out():
    args = (["a", "b", "c"], [88.0, None, 80.0], [0.4, 0.3, 0.15], [(0.34, 0.46), (0.25, 0.36), (0.1, 0.2)])
    fig = plot_ablation_grid(*args, chance_interval(280), "paper", "run", "g", flags=["", "", "at chance"])
    assert [ax.get_xlim() for ax in fig.axes] == [(0.0, 100.0), (0.0, 100.0)]
    plt.close(fig)
    fig = plot_ablation_grid(*args, chance_interval(280), None, "run", "g")
    assert len(fig.axes) == 1
    plt.close(fig)
