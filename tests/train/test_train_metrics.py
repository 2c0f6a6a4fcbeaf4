"""Metrics agree with scikit-learn on a fixed prediction set; seeds summarise as mean ± sample std."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

from ferlib.train.metrics import classification_metrics, format_mean_std, mean_std, summarize_seeds

# 30 fixed predictions over 4 classes; class 3 is never predicted, class 2 is over-predicted.
Y_TRUE = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 0, 1, 2, 3, 0, 1, 2, 3, 1, 1])
Y_PRED = np.array([0, 0, 1, 0, 2, 1, 1, 2, 1, 1, 0, 2, 2, 2, 2, 0, 2, 2, 0, 1, 0, 1, 2, 2, 0, 0, 2, 1, 1, 2])
NAMES = ["neutral", "happy", "sad", "surprise"]


def test_metrics_match_scikit_learn():
    m = classification_metrics(Y_TRUE, Y_PRED, class_names=NAMES)
    assert m["n"] == 30
    assert m["accuracy"] == pytest.approx(accuracy_score(Y_TRUE, Y_PRED))
    assert m["macro_f1"] == pytest.approx(f1_score(Y_TRUE, Y_PRED, average="macro"))
    assert m["confusion_matrix"] == confusion_matrix(Y_TRUE, Y_PRED).tolist()
    recalls = recall_score(Y_TRUE, Y_PRED, average=None)
    assert [m["per_class_accuracy"][n] for n in NAMES] == pytest.approx(recalls.tolist())
    assert m["mean_class_accuracy"] == pytest.approx(recalls.mean())
    assert m["per_class_accuracy"]["surprise"] == 0.0  # never predicted correctly
    assert m["support"] == {n: int((Y_TRUE == i).sum()) for i, n in enumerate(NAMES)}


def test_a_class_absent_from_the_evaluation_set_is_nan_not_zero():
    y = np.array([0, 0, 1, 1])
    p = np.array([0, 1, 1, 1])
    m = classification_metrics(y, p, num_classes=3)
    assert m["per_class_accuracy"]["2"] is None
    assert m["confusion_matrix"][2] == [0, 0, 0]
    assert m["mean_class_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="3 labels but y_pred has 2"):
        classification_metrics([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        classification_metrics([], [])


def test_seed_summary_is_mean_and_sample_std():
    per_seed = [{"test": {"accuracy": a, "n": 10}, "name": "x"} for a in (0.80, 0.84, 0.86)]
    s = summarize_seeds(per_seed)
    assert set(s) == {"test.accuracy"}
    assert s["test.accuracy"]["mean"] == pytest.approx(np.mean([0.80, 0.84, 0.86]))
    assert s["test.accuracy"]["std"] == pytest.approx(np.std([0.80, 0.84, 0.86], ddof=1))
    assert format_mean_std(s["test.accuracy"]) == "83.33 ± 3.06"
    assert mean_std([0.5])["std"] == 0.0
    assert math.isnan(mean_std([])["mean"])
