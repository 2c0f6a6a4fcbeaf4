"""ferlib.study.stats against values worked out by hand (the arithmetic is in each test)."""

from __future__ import annotations

import numpy as np
import pytest

from ferlib.study.stats import (
    accuracy_interval,
    best_separated,
    chance_interval,
    prediction_spread,
    rankable,
    run_flags,
    seed_interval,
    separated,
    summarize_model,
    top_confusions,
)


def test_seed_interval_is_students_t_of_the_mean():
    # mean 0.4, sample std 0.1; t_{0.975, 2} = 4.302653; half = 4.302653 * 0.1 / sqrt(3) = 0.248414
    s = seed_interval([0.3, 0.4, 0.5])
    assert s["mean"] == pytest.approx(0.4)
    assert s["std"] == pytest.approx(0.1)
    assert s["n"] == 3
    assert s["half_width"] == pytest.approx(0.248414, abs=1e-6)
    assert (s["low"], s["high"]) == pytest.approx((0.151586, 0.648414), abs=1e-6)


def test_one_seed_has_no_interval():
    s = seed_interval([0.35])
    assert (s["mean"], s["std"], s["n"], s["low"], s["high"]) == (0.35, 0.0, 1, None, None)
    with pytest.raises(ValueError):
        seed_interval([])


def test_accuracy_interval_is_wilsons():
    # p = 0.3, n = 140, z = 1.959964: centre (0.3 + z²/280) / (1 + z²/140) = 0.305342,
    # half z·sqrt(p(1-p)/140 + z²/(4·140²)) / (1 + z²/140) = 0.075080
    low, high = accuracy_interval(42, 140)
    assert (low, high) == pytest.approx((0.230262, 0.380420), abs=5e-6)
    with pytest.raises(ValueError):
        accuracy_interval(5, 0)


def test_chance_interval_of_seven_classes():
    # Binomial(140, 1/7): mean 20, sd 4.14; the central 95 % is 12..28 faces
    assert chance_interval(140, 7) == pytest.approx((12 / 140, 28 / 140))
    # Binomial(210, 1/7): mean 30; central 95 % is 20..40
    assert chance_interval(210, 7) == pytest.approx((20 / 210, 40 / 210))
    # a one-class guesser on a balanced set of 140 scores 20/140 = 14.3 %: inside
    low, high = chance_interval(140, 7)
    assert low < 20 / 140 < high


def test_prediction_spread_counts_the_classes_holding_ninety_percent():
    cm = np.zeros((7, 7), dtype=int)
    cm[:, 0] = [10, 10, 10, 5, 5, 5, 5]  # 50 predictions of class 0
    cm[:, 1] = [5, 5, 5, 5, 5, 5, 0]  # 30
    cm[:, 2] = [5, 5, 5, 0, 0, 0, 0]  # 15
    cm[0, 3], cm[0, 4], cm[0, 5] = 3, 1, 1  # 3, 1, 1: cumulative shares 0.50, 0.80, 0.95
    assert prediction_spread(cm) == 3
    assert prediction_spread(np.full((7, 7), 10)) == 7  # 6 of 7 classes hold 60/70 = 86 % < 90 %


def test_run_flags_at_chance_and_collapsed():
    # FFRA-Net's collapse of issue 14: everything predicted as one of three classes
    cm = np.zeros((7, 7), dtype=int)
    cm[:, 0] = 10
    cm[1, 1] = cm[2, 2] = 10
    cm[1, 0] = cm[2, 0] = 0
    n = int(cm.sum())  # 70 faces, 10 per class
    acc = np.trace(cm) / n  # 30 / 70 = 0.4286
    flags = run_flags({"accuracy": acc, "n": n, "confusion_matrix": cm.tolist()})
    assert flags["collapsed"] and flags["classes_predicted"] == 3
    # 42.9 % is above chance's 95 % upper end on 70 faces, 16/70 = 22.9 %:
    # Binomial(70, 1/7) has P(X <= 15) = 0.964 < 0.975 <= P(X <= 16) = 0.982
    assert not flags["at_chance"]
    assert flags["chance_high"] == pytest.approx(16 / 70)
    assert flags["flag"] == "collapsed onto 3 classes"
    assert not rankable(flags)

    diag = np.diag([6] * 7) + 1  # 6 + 1 = 7 of 13 correct per class: 53.8 %, predictions on all classes
    good = run_flags({"accuracy": 49 / 91, "n": 91, "confusion_matrix": diag.tolist()})
    assert good["flag"] == "" and rankable(good)

    guesser = np.zeros((7, 7), dtype=int)
    guesser[:, 3] = 20  # one-class guesser on 140 faces: 14.3 %
    f = run_flags({"accuracy": 20 / 140, "n": 140, "confusion_matrix": guesser.tolist()})
    assert f["at_chance"] and f["collapsed"] and f["flag"] == "at chance, collapsed onto 1 class"


def test_rows_within_noise_name_no_best_setting():
    apart = [(0.30, 0.40), (0.45, 0.55), (0.20, 0.28)]
    assert separated(apart)
    assert best_separated(["a", "b", "c"], apart) == "b"
    overlapping_top = [(0.30, 0.46), (0.45, 0.55), (0.20, 0.28)]
    assert separated(overlapping_top)  # top and bottom differ ...
    assert best_separated(["a", "b", "c"], overlapping_top) is None  # ... but the top is not alone
    noise = [(0.30, 0.40), (0.35, 0.45)]
    assert not separated(noise) and best_separated(["a", "b"], noise) is None
    assert best_separated(["a"], [(0.1, 0.2)]) is None


def test_summarize_model_over_seeds_and_for_one_seed():
    diag = (np.diag([6] * 7) + 1).tolist()  # 49 of 91 correct, predictions on every class
    tests = [
        {"accuracy": 0.3, "macro_f1": 0.2, "n": 91, "confusion_matrix": diag},
        {"accuracy": 0.4, "macro_f1": 0.3, "n": 91, "confusion_matrix": diag},
        {"accuracy": 0.5, "macro_f1": 0.4, "n": 91, "confusion_matrix": diag},
    ]
    s = summarize_model(tests)
    assert (s["accuracy"]["low"], s["accuracy"]["high"]) == pytest.approx((0.151586, 0.648414), abs=1e-6)
    assert s["accuracy"]["interval"] == "Student t over 3 seeds"
    assert s["macro_f1"]["mean"] == pytest.approx(0.3)
    assert s["rankable"] and s["flag"] == ""
    one = summarize_model([{"accuracy": 42 / 140, "macro_f1": 0.25, "n": 140, "confusion_matrix": _spread(140)}])
    assert (one["accuracy"]["low"], one["accuracy"]["high"]) == pytest.approx((0.230262, 0.380420), abs=5e-6)
    assert one["accuracy"]["interval"] == "Wilson, 140 test faces (1 seed)"


def _spread(n: int) -> list[list[int]]:
    cm = np.zeros((7, 7), dtype=int)
    for i in range(n):
        cm[i % 7, (i * 3) % 7] += 1
    return cm.tolist()


def test_top_confusions_are_row_shares():
    cm = np.diag([10, 10, 10, 10, 10, 10, 10])
    cm[2, 5] = 30  # 30 of 40 "fear"-row faces predicted as class 5: share 0.75
    cm[0, 1] = 5  # 5 of 15: share 0.333
    names = ["a", "b", "fear", "d", "e", "surprise", "g"]
    top = top_confusions(cm, names, k=3)
    assert top[0] == {"true": "fear", "predicted": "surprise", "share": pytest.approx(0.75)}
    assert top[1] == {"true": "a", "predicted": "b", "share": pytest.approx(1 / 3)}
    assert len(top) == 2  # no third off-diagonal cell is non-zero
