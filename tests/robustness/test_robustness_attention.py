"""Attention on the occluder: where a map's mass lies, on hand-made maps and masks."""

from __future__ import annotations

import numpy as np
import pytest

from ferlib.robustness.attention import mass_on_masks, summarise_attention


def test_mass_on_masks_splits_a_map_between_occluder_visible_face_and_background():
    maps = np.zeros((2, 4, 4))
    maps[0, 0, :] = 1.0  # 4 units on the top row
    maps[0, 3, 3] = 4.0  # 4 units in the corner (background)
    maps[1] = 1.0  # uniform
    occ = np.zeros((2, 4, 4), dtype=bool)
    occ[:, 0, :2] = True  # 2 pixels of the top row
    face = np.zeros((2, 4, 4), dtype=bool)
    face[:, :2, :] = True  # the top half is face
    out = mass_on_masks(maps, occ, face)
    np.testing.assert_allclose(out["on_occluder"], [2 / 8, 2 / 16])
    np.testing.assert_allclose(out["on_visible_face"], [2 / 8, 6 / 16])
    np.testing.assert_allclose(out["on_background"], [4 / 8, 8 / 16])
    np.testing.assert_allclose(out["occluder_area"], [2 / 16, 2 / 16])
    np.testing.assert_allclose(out["ratio"], [2.0, 1.0])  # a uniform map has no preference


def test_an_empty_map_gives_nan_and_the_summary_skips_it():
    maps = np.zeros((1, 3, 3))
    occ = np.ones((1, 3, 3), dtype=bool)
    out = mass_on_masks(maps, occ, occ)
    assert np.isnan(out["on_occluder"][0])
    nan = float("nan")
    records = [
        {"m": "a", "correct": True, "on_occluder": 0.2, "on_visible_face": 0.5, "ratio": 1.0, "occluder_area": 0.2},
        {"m": "a", "correct": False, "on_occluder": 0.4, "on_visible_face": 0.3, "ratio": 2.0, "occluder_area": 0.2},
        {"m": "a", "correct": False, "on_occluder": nan, "on_visible_face": nan, "ratio": nan, "occluder_area": 0.2},
    ]
    rows = {r["predictions"]: r for r in summarise_attention(records, ["m"], n_resamples=200)}
    assert rows["all"]["n"] == 3 and rows["all"]["on_occluder"] == pytest.approx(0.3)
    assert rows["correct"]["on_occluder"] == pytest.approx(0.2) and rows["wrong"]["ratio"] == pytest.approx(2.0)
    assert rows["all"]["on_occluder_low"] <= 0.3 <= rows["all"]["on_occluder_high"]
