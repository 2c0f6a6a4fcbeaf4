"""Statistics of ferlib.robustness against cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from ferlib.robustness import stats


def test_mcnemar_p_value_is_the_exact_binomial_computed_by_hand():
    # 10 faces both right, 1 only A right, 6 only B right, 3 both wrong: 7 discordant faces.
    a = np.array([1] * 10 + [1] + [0] * 6 + [0] * 3, dtype=bool)
    b = np.array([1] * 10 + [0] + [1] * 6 + [0] * 3, dtype=bool)
    res = stats.mcnemar_test(a, b)
    # Exact McNemar = two-sided binomial test of 1 success in 7 at p = 1/2: 2 * (C(7,0) + C(7,1)) / 2^7 = 16/128.
    assert res["exact"] is True
    assert res["only_a"] == 1 and res["only_b"] == 6
    assert res["p_value"] == pytest.approx(2 * (math.comb(7, 0) + math.comb(7, 1)) / 2**7) == pytest.approx(0.125)
    assert res["difference"] == pytest.approx((11 - 16) / 20)


def test_mcnemar_without_disagreement_is_p_one_and_large_tables_use_chi2():
    same = np.array([1, 0, 1, 1], dtype=bool)
    assert stats.mcnemar_test(same, same)["p_value"] == 1.0
    # 30 faces only A right, 10 only B right: chi2 with continuity correction (|30-10|-1)^2/40 = 9.025.
    a = np.array([1] * 30 + [0] * 10, dtype=bool)
    res = stats.mcnemar_test(a, ~a)
    assert res["exact"] is False
    assert res["statistic"] == pytest.approx(19**2 / 40)
    from scipy.stats import chi2

    assert res["p_value"] == pytest.approx(chi2.sf(19**2 / 40, 1))


def test_bootstrap_interval_matches_the_binomial_quantiles_by_hand():
    # 9 of 10 faces right. A resample's accuracy is Binomial(10, 0.9)/10: P(X ≤ 6) = 1.3 % < 2.5 % < P(X ≤ 7) = 7.0 %,
    # and P(X ≤ 9) = 65 % < 97.5 %, so the percentile interval is [0.7, 1.0].
    correct = np.array([1] * 9 + [0], dtype=float)
    low, high = stats.bootstrap_interval(lambda idx: correct[idx].mean(-1), 10, n_resamples=20000, seed=1)
    assert (low, high) == (pytest.approx(0.7), pytest.approx(1.0))


def test_macro_f1_matches_scikit_learn_and_vectorises():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 60)
    preds = np.stack([np.where(rng.random(60) < 0.5, y, rng.integers(0, 7, 60)) for _ in range(3)])
    ours = stats.macro_f1(y[None], preds, 7)
    ref = [f1_score(y, p, average="macro", zero_division=0) for p in preds]
    np.testing.assert_allclose(ours, ref)
    # a class absent from both labels and predictions is left out, as scikit-learn does
    assert stats.macro_f1(np.array([0, 0, 1]), np.array([0, 1, 1]), 7) == pytest.approx(
        f1_score([0, 0, 1], [0, 1, 1], average="macro")
    )


def test_metric_summary_reports_seed_mean_std_and_an_interval_around_it():
    y = np.array([0, 1, 2, 3] * 5)
    preds = np.stack([y.copy(), np.where(np.arange(20) < 10, y, 0)])  # seed 0 perfect, seed 1: 10 + 2 right
    s = stats.metric_summary(y, preds, 4, n_resamples=500)
    acc1 = np.mean(preds[1] == y)
    assert s["accuracy"] == pytest.approx((1.0 + acc1) / 2)
    assert s["accuracy_std"] == pytest.approx(np.std([1.0, acc1], ddof=1))
    assert s["accuracy_low"] <= s["accuracy"] <= s["accuracy_high"]
    assert s["macro_f1_low"] <= s["macro_f1"] <= s["macro_f1_high"]
    assert s["seeds"] == 2 and s["n"] == 20


def test_compare_models_pairs_seeds_and_gives_the_paired_difference():
    a = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]], dtype=bool)
    b = np.array([[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0]], dtype=bool)
    res = stats.compare_models(a, b, n_resamples=500)
    assert res["seed_pairs"] == 2
    assert res["difference"] == pytest.approx(a.mean() - b.mean())
    assert res["difference_low"] <= res["difference"] <= res["difference_high"]
    # seed 0: 3 faces only A right → 2·(1/2)^3 = 0.25; seed 1: 1 face only A right → min(1, 2·1/2) = 1
    assert res["p_values"] == [pytest.approx(0.25), pytest.approx(1.0)]
    assert res["p_value"] == pytest.approx(1.0)
