"""ferlib.landmarks.benchmark: detection rate and NME by condition, template offset (hand-checked values)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ferlib.data.face_geometry import canonical_template
from ferlib.landmarks.base import Detector, Face
from ferlib.landmarks.benchmark import (
    detection_by_condition,
    detection_records,
    normalised_mean_error,
    summarise_detection,
    template_offset,
    yaw_bin,
)

# True points of every fake face: eyes 40 px apart (inter-ocular distance 40).
TRUTH = np.array([[40, 50], [80, 50], [60, 70], [45, 90], [75, 90]], dtype=np.float32)
BOX = np.array([20, 20, 100, 110], dtype=np.float32)


class FakeDataset:
    """Sample i: a 128×128 image whose pixel (0, 0) holds i, the points above, a given yaw and occluder."""

    class_names = ["neutral", "happy"]

    def __init__(self, yaws, occluders, points=None):
        self.yaws, self.occluders = yaws, occluders
        self.points = points

    def __len__(self):
        return len(self.yaws)

    def __getitem__(self, i):
        image = torch.zeros(3, 128, 128, dtype=torch.uint8)
        image[0, 0, 0] = i
        pts = TRUTH if self.points is None else self.points[i]
        return {
            "image": image,
            "label": i % 2,
            "landmarks5": torch.from_numpy(np.asarray(pts, dtype=np.float32)),
            "meta": {"yaw": self.yaws[i], "pitch": 0.0, "occlusion": self.occluders[i], "split": "test"},
        }


class FakeDetector(Detector):
    """Per sample index (read from pixel (0, 0)): a list of (box, points) to return."""

    def __init__(self, answers):
        self.answers = answers

    def detect_arrays(self, images):
        out = []
        for im in images:
            i = int(im[0, 0, 0])
            out.append([Face(box, 0.9, pts) for box, pts in self.answers.get(i, [])])
        return out


def test_nme_is_mean_point_distance_over_inter_ocular_distance():
    shifted = TRUTH + np.array([3.0, 4.0])  # every point 5 px off → 5 / 40
    assert float(normalised_mean_error(shifted, TRUTH)) == pytest.approx(0.125)
    one_off = TRUTH.copy()
    one_off[2] += [0, 10]  # one point 10 px off → 10 / 5 / 40
    assert float(normalised_mean_error(one_off, TRUTH)) == pytest.approx(0.05)
    both = normalised_mean_error(np.stack([shifted, one_off]), np.stack([TRUTH, TRUTH]))
    np.testing.assert_allclose(both, [0.125, 0.05])


def test_yaw_bins_by_absolute_yaw():
    assert [yaw_bin(y) for y in (0, -14.9, 15, -29, 30.5, -44, 45, 60)] == [
        "0-15",
        "0-15",
        "15-30",
        "15-30",
        "30-45",
        "30-45",
        "45-60",
        "45-60",
    ]
    with pytest.raises(ValueError, match="outside"):
        yaw_bin(61)


def test_detection_by_condition_hand_checked():
    # 6 faces: frontal none ×3, frontal glasses ×1, turned (35°) none ×2.
    ds = FakeDataset([0, 5, -10, 3, 35, -40], ["none", "none", "none", "glasses", "none", "none"])
    shift5 = TRUTH + np.array([3.0, 4.0])  # NME 0.125
    shift2 = TRUTH + np.array([0.0, 2.0])  # NME 0.05
    far_box = np.array([100, 100, 127, 127], dtype=np.float32)  # does not contain the nose (60, 70)
    answers = {
        0: [(BOX, shift5)],
        1: [(BOX, shift2)],
        2: [(far_box, TRUTH)],  # a false positive elsewhere: not detected
        3: [(BOX, TRUTH)],  # NME 0
        4: [],  # missed
        5: [(BOX, shift5)],
    }
    table = detection_by_condition(ds, FakeDetector(answers))
    rows = {(str(r.yaw_bin), r.occluder): r for r in table.itertuples()}
    assert set(rows) == {("0-15", "none"), ("0-15", "glasses"), ("30-45", "none")}
    r = rows[("0-15", "none")]
    assert (r.n, r.detected) == (3, 2)
    assert r.rate == pytest.approx(2 / 3)
    assert r.nme == pytest.approx((0.125 + 0.05) / 2)
    r = rows[("0-15", "glasses")]
    assert (r.n, r.detected, r.rate, r.nme) == (1, 1, 1.0, pytest.approx(0.0))
    r = rows[("30-45", "none")]
    assert (r.n, r.detected, r.rate) == (2, 1, 0.5)
    assert r.nme == pytest.approx(0.125)
    assert list(table.columns) == ["yaw_bin", "occluder", "n", "detected", "rate", "nme"]

    records = detection_records(ds, FakeDetector(answers))
    overall = summarise_detection(records, by=())
    assert (int(overall.n[0]), int(overall.detected[0])) == (6, 4)
    assert float(overall.nme[0]) == pytest.approx((0.125 + 0.05 + 0.0 + 0.125) / 4)
    by_class = summarise_detection(records, by="class_name")
    assert dict(zip(by_class.class_name, by_class.detected)) == {"neutral": 1, "happy": 3}  # samples 0, 2, 4 vs 1, 3, 5
    with pytest.raises(ValueError, match="cannot group"):
        summarise_detection(records, by="colour")


def test_of_several_faces_the_one_on_the_nose_counts():
    ds = FakeDataset([0], ["none"])
    decoy = (np.array([0, 0, 30, 30], dtype=np.float32), TRUTH + 50)
    table = detection_by_condition(ds, FakeDetector({0: [decoy, (BOX, TRUTH)]}), by=())
    assert (int(table.detected[0]), float(table.nme[0])) == (1, 0.0)


def test_template_offset_hand_checked():
    template = canonical_template(128).astype(np.float64)
    # Two frontal faces at template ± 2 px in x, one turned face far away that must be left out.
    pts = [template + [2.0, 0.0], template - [2.0, 0.0] + [0.0, 3.0], template + 40]
    ds = FakeDataset([0.0, 5.0, 30.0], ["none"] * 3, points=pts)
    out = template_offset(ds, max_abs_yaw=10)
    assert out["n"] == 2
    np.testing.assert_allclose(out["offset"], np.tile([0.0, 1.5], (5, 1)), atol=1e-3)
    assert out["mean_offset_px"] == pytest.approx(1.5)
    # each point is sqrt(2² + 1.5²) = 2.5 px from its mean
    assert out["spread_px"] == pytest.approx(2.5)
    assert out["mean_distance_px"] == pytest.approx((2.0 + np.hypot(2.0, 3.0)) / 2)
    assert out["inter_ocular_px"] == pytest.approx(out["template_inter_ocular_px"], abs=1e-6)
    assert out["image_size"] == [128, 128]
    with pytest.raises(ValueError, match="no sample"):
        template_offset(FakeDataset([30.0], ["none"], points=[template]), max_abs_yaw=10)
