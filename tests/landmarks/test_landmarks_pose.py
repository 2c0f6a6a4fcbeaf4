"""Pose estimate from five points, calibrated and checked on SynthFER (synthetic, exact pose known)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ferlib.landmarks import CANONICAL_TEMPLATE_224, estimate_pose, pose_subset
from ferlib.landmarks.align import apply_transform
from ferlib.landmarks.pose import (
    DEFAULT_CALIBRATION,
    calibrate_pose,
    fit_pose_calibration,
    pose_errors,
    pose_features,
    synthfer_pose_dataset,
)

torch.set_num_threads(1)

#: Bounds on SynthFER's held-out split (measured: yaw MAE ≈ 2.1°, pitch MAE ≈ 6.2°; docs/landmarks.md).
YAW_MAE_BOUND = 3.5
PITCH_MAE_BOUND = 8.0


@pytest.fixture(scope="module")
def synth_test():
    ds = synthfer_pose_dataset(400, seed=1, split="test", image_size=32)
    return [ds[i] for i in range(len(ds))]  # render once; a list of samples is a dataset too


def test_default_calibration_error_on_synthfer(synth_test):
    err = pose_errors(synth_test)
    assert err["n"] == 400
    assert err["yaw_mae_deg"] < YAW_MAE_BOUND
    assert err["pitch_mae_deg"] < PITCH_MAE_BOUND


def test_refit_on_train_split_matches_shipped_constants(synth_test):
    cal = calibrate_pose(synthfer_pose_dataset(300, seed=0, split="train", image_size=32))
    assert cal.yaw_gain == pytest.approx(DEFAULT_CALIBRATION.yaw_gain, rel=0.1)
    assert cal.pitch_gain == pytest.approx(DEFAULT_CALIBRATION.pitch_gain, rel=0.15)
    assert cal.pitch_offset == pytest.approx(DEFAULT_CALIBRATION.pitch_offset, abs=0.03)
    assert abs(cal.yaw_offset) < 0.03
    err = pose_errors(synth_test, cal)
    assert err["yaw_mae_deg"] < YAW_MAE_BOUND and err["pitch_mae_deg"] < PITCH_MAE_BOUND


def test_features_invariant_to_roll_scale_translation_and_signs():
    a = math.radians(20)
    m = np.array([[1.6 * math.cos(a), -1.6 * math.sin(a), 30], [1.6 * math.sin(a), 1.6 * math.cos(a), -7], [0, 0, 1]])
    moved = apply_transform(m, CANONICAL_TEMPLATE_224)
    np.testing.assert_allclose(pose_features(moved), pose_features(CANONICAL_TEMPLATE_224), atol=1e-5)
    frontal_yaw, _ = estimate_pose(CANONICAL_TEMPLATE_224)
    assert abs(frontal_yaw) < 3
    turned = CANONICAL_TEMPLATE_224.copy()
    turned[2, 0] += 20  # nose towards the image right: positive yaw (SynthFER's convention)
    assert estimate_pose(turned)[0] > 20
    lowered = CANONICAL_TEMPLATE_224.copy()
    lowered[2, 1] += 10  # nose down: positive pitch
    assert estimate_pose(lowered)[1] > 10
    yaw, pitch = estimate_pose(np.stack([CANONICAL_TEMPLATE_224, np.full((5, 2), np.nan)]))
    assert yaw.shape == (2,) and np.isnan(yaw[1]) and np.isnan(pitch[1])


def test_fit_recovers_a_synthetic_linear_law():
    rng = np.random.default_rng(0)
    yaw = rng.uniform(-50, 50, 200)
    symmetric = np.array([[80, 100], [144, 100], [112, 140], [86, 180], [138, 180]], dtype=np.float64)
    base = np.repeat(symmetric[None], 200, axis=0)
    iod = np.linalg.norm(base[0, 1] - base[0, 0])
    height = np.linalg.norm(base[0, 3:].mean(0) - base[0, :2].mean(0))
    pitch = rng.uniform(-30, 30, 200)
    base[:, 2, 0] += 0.7 * iod * np.tan(np.radians(yaw))  # perfect laws f = g·tan(angle) + f0
    base[:, 2, 1] += 0.4 * height * np.tan(np.radians(pitch))
    cal = fit_pose_calibration(base, yaw, pitch)
    assert cal.yaw_gain == pytest.approx(0.7, rel=1e-9) and cal.pitch_gain == pytest.approx(0.4, rel=1e-9)
    est_yaw, est_pitch = estimate_pose(base, cal)
    np.testing.assert_allclose(est_yaw, yaw, atol=1e-6)
    np.testing.assert_allclose(est_pitch, pitch, atol=1e-6)
    with pytest.raises(ValueError, match="at least 3"):
        fit_pose_calibration(base[:2], yaw[:2], [0, 0])


def test_pose_subsets_like_the_ran_lists(synth_test):
    true_yaw = np.array([synth_test[i]["meta"]["yaw"] for i in range(len(synth_test))])
    for threshold in (30, 45):
        chosen = set(pose_subset(synth_test, min_abs_yaw=threshold))
        truth = set(np.nonzero(np.abs(true_yaw) >= threshold)[0].tolist())
        assert truth, "the calibration split must contain such poses"
        agree = len(chosen & truth)
        # faces within a few degrees of the threshold can fall either side (yaw MAE ≈ 2°)
        assert agree / len(truth) > 0.8 and agree / max(len(chosen), 1) > 0.8, threshold
    # the same selection from an array of points and from a landmarks table
    pts = np.stack([synth_test[i]["landmarks5"].numpy() for i in range(len(synth_test))])
    assert pose_subset(pts, 30) == pose_subset(synth_test, 30)
    table = {f"img{i}#0": {"landmarks5": pts[i].tolist(), "fallback": False} for i in range(10)}
    table["fallback#0"] = {"landmarks5": CANONICAL_TEMPLATE_224.tolist(), "fallback": True}
    assert pose_subset(table, 30) == [f"img{i}#0" for i in pose_subset(pts[:10], 30)]
    assert len(pose_subset(pts, min_abs_yaw=None, min_abs_pitch=0)) == len(pts)
    with pytest.raises(ValueError):
        pose_subset(pts, min_abs_yaw=None)
