"""Landmark-placed occluders (ferlib.occlusion): coverage, determinism, types, dataset copy."""

from __future__ import annotations

import csv
import dataclasses
import math

import numpy as np
import pytest
import torch

from ferlib.occlusion import (
    CANONICAL_LANDMARKS5,
    apply_affine,
    fit_similarity,
    materialise_occluded,
    occlude,
    template_landmarks5,
)

SIZE = 160


def _face_landmarks(angle_deg: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """The aligned-crop template, rotated about the image centre and scaled."""
    lm = template_landmarks5(SIZE, SIZE).astype(np.float64)
    c = np.array([SIZE / 2, SIZE / 2])
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return ((lm - c) * scale) @ rot.T + c


def _blank() -> np.ndarray:
    return np.full((SIZE, SIZE, 3), 128, dtype=np.uint8)


def _covered(mask: np.ndarray, pt: np.ndarray, radius: int = 0) -> bool:
    """True when every pixel within ``radius`` of ``pt`` is covered."""
    x, y = int(round(pt[0])), int(round(pt[1]))
    return bool(mask[y - radius : y + radius + 1, x - radius : x + radius + 1].all())


def _touched(mask: np.ndarray, pt: np.ndarray, radius: int = 0) -> bool:
    x, y = int(round(pt[0])), int(round(pt[1]))
    return bool(mask[y - radius : y + radius + 1, x - radius : x + radius + 1].any())


def test_fit_similarity_recovers_a_known_transform():
    # dst = 2·R(30°)·src + (5, -3), computed by hand.
    a = math.radians(30)
    m_true = np.array([[2 * math.cos(a), -2 * math.sin(a), 5.0], [2 * math.sin(a), 2 * math.cos(a), -3.0]])
    src = CANONICAL_LANDMARKS5
    dst = apply_affine(m_true, src)
    np.testing.assert_allclose(fit_similarity(src, dst), m_true, atol=1e-9)
    # Two points fix a similarity exactly (how sunglasses are placed on the eyes).
    np.testing.assert_allclose(fit_similarity(src[:2], dst[:2]), m_true, atol=1e-9)


@pytest.mark.parametrize("angle,scale", [(0.0, 1.0), (25.0, 0.8), (-15.0, 1.1)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sunglasses_cover_both_eyes_not_the_mouth(angle, scale, seed):
    lm = _face_landmarks(angle, scale)
    out, mask = occlude(_blank(), lm, "sunglasses", seed)
    assert _covered(mask, lm[0], 3) and _covered(mask, lm[1], 3), "both eyes must be under the lenses"
    mouth_centre = lm[3:].mean(0)
    for p in (lm[3], lm[4], mouth_centre):
        assert not _touched(mask, p, 1), "sunglasses must leave the mouth visible"
    assert (out[mask] != 128).any(axis=-1).mean() > 0.9


@pytest.mark.parametrize("angle,scale", [(0.0, 1.0), (20.0, 0.9), (-20.0, 1.1)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_face_mask_covers_mouth_and_nose_bottom_not_the_eyes(angle, scale, seed):
    lm = _face_landmarks(angle, scale)
    _, mask = occlude(_blank(), lm, "mask", seed)
    nose_to_mouth = lm[3:].mean(0) - lm[2]
    nose_bottom = lm[2] + 0.25 * nose_to_mouth
    for p in (lm[3], lm[4], lm[3:].mean(0), lm[2], nose_bottom):
        assert _covered(mask, p, 2), f"face mask must cover mouth and nose bottom, missed {p}"
    assert not _touched(mask, lm[0], 3) and not _touched(mask, lm[1], 3), "face mask must not cover the eyes"


@pytest.mark.parametrize("kind", ["mask", "sunglasses", "hand", "random"])
def test_pixels_change_only_under_the_mask_and_determinism(kind):
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    lm = _face_landmarks(10.0)
    out1, mask1 = occlude(img, lm, kind, 7)
    out2, mask2 = occlude(img, lm, kind, np.random.default_rng(7))
    assert out1.shape == img.shape and out1.dtype == np.uint8
    assert mask1.shape == (SIZE, SIZE) and mask1.dtype == bool
    assert 0.005 < mask1.mean() < 0.6, f"{kind}: occluder area {mask1.mean():.3f} is implausible"
    np.testing.assert_array_equal(out1[~mask1], img[~mask1])  # nothing outside the mask changes
    np.testing.assert_array_equal(out1, out2)  # int seed and Generator with that seed agree
    np.testing.assert_array_equal(mask1, mask2)
    others = [occlude(img, lm, kind, s) for s in (8, 9, 10)]
    assert any(not np.array_equal(o, out1) for o, _ in others), f"{kind}: seed does not change the occluder"


def test_hand_and_random_patch_lie_on_the_face():
    lm = _face_landmarks()
    box_lo = lm.min(0) - 0.9 * (lm[1, 0] - lm[0, 0])
    box_hi = lm.max(0) + 0.9 * (lm[1, 0] - lm[0, 0])
    for kind in ("hand", "random"):
        for seed in range(6):
            _, mask = occlude(_blank(), lm, kind, seed)
            ys, xs = np.nonzero(mask)
            cx, cy = xs.mean(), ys.mean()
            assert box_lo[0] <= cx <= box_hi[0] and box_lo[1] <= cy <= box_hi[1], (kind, seed, cx, cy)


def test_torch_layout_round_trip_matches_numpy():
    img = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    lm = _face_landmarks()
    out_np, mask_np = occlude(img, lm, "mask", 3)
    out_t, mask_t = occlude(
        torch.from_numpy(img).permute(2, 0, 1).contiguous(), torch.from_numpy(lm).float(), "face_mask", 3
    )
    assert out_t.shape == (3, SIZE, SIZE) and out_t.dtype == torch.uint8 and mask_t.dtype == torch.bool
    np.testing.assert_array_equal(out_t.permute(1, 2, 0).numpy(), out_np)
    np.testing.assert_array_equal(mask_t.numpy(), mask_np)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown occluder kind"):
        occlude(_blank(), _face_landmarks(), "scarf", 0)
    with pytest.raises(ValueError, match="NaN"):
        occlude(_blank(), np.full((5, 2), np.nan), "mask", 0)
    with pytest.raises(ValueError, match="uint8"):
        occlude(np.zeros((SIZE, SIZE), np.uint8), _face_landmarks(), "mask", 0)


class _TinyDataset:
    """Two schema samples: one with landmarks, one without (NaN → template placement)."""

    def __init__(self) -> None:
        lm = torch.from_numpy(_face_landmarks()).float()
        self.samples = [
            {
                "image": torch.full((3, SIZE, SIZE), 100, dtype=torch.uint8),
                "label": 3,
                "landmarks5": lm,
                "meta": {"id": "a/001.jpg", "path": None, "subject": "s1", "yaw": 5.0, "pitch": None, "roll": None},
            },
            {
                "image": torch.full((3, SIZE, SIZE), 50, dtype=torch.uint8),
                "label": 1,
                "landmarks5": torch.full((5, 2), float("nan")),
                "meta": {"id": "b", "split": "train", "occlusion": "hand"},
            },
        ]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return self.samples[i]


def test_materialise_occluded_writes_images_and_manifest(tmp_path):
    from PIL import Image

    manifest = materialise_occluded(_TinyDataset(), "sunglasses", tmp_path, seed=0, progress=False)
    rows = list(csv.DictReader(manifest.open()))
    assert list(rows[0].keys()) == [
        "id",
        "path",
        "split",
        "label",
        "subject",
        "yaw",
        "pitch",
        "roll",
        "occlusion",
        "lm5",
        "lm8",
        "occluder_area",
        "placement",
    ]
    assert [r["placement"] for r in rows] == ["landmarks", "template"]
    assert rows[0]["path"] == "images/test/a__001.jpg.png" and rows[1]["split"] == "train"
    assert rows[0]["label"] == "3" and rows[0]["occlusion"] == "sunglasses" and rows[0]["yaw"] == "5.000"
    assert rows[1]["occlusion"] == "hand+sunglasses"  # an occlusion the source already had is kept
    assert len(rows[0]["lm5"].split()) == 10 and rows[1]["lm5"].split()[0] == "nan"
    for r in rows:
        img = np.asarray(Image.open(tmp_path / r["path"]))
        area = float(r["occluder_area"])
        assert img.shape == (SIZE, SIZE, 3) and 0.01 < area < 0.6
        changed = (img != img[0, 0]).any(-1).mean() if r["placement"] == "template" else (img != 100).any(-1).mean()
        assert abs(changed - area) < 0.02
    # Deterministic: a rerun writes byte-identical images.
    first = (tmp_path / rows[0]["path"]).read_bytes()
    materialise_occluded(_TinyDataset(), "sunglasses", tmp_path, seed=0, progress=False)
    assert (tmp_path / rows[0]["path"]).read_bytes() == first


def test_synthfer_faces_get_occluders_on_the_drawn_features():
    """On SynthFER faces (exact landmarks), sunglasses hide the drawn pupils and a mask the lips."""
    from ferlib.data.synthfer import CLEAN_CONFIG, SynthFERDataset

    ds = SynthFERDataset(6, seed=3, image_size=SIZE, config=dataclasses.replace(CLEAN_CONFIG, yaw_range=(-30, 30)))
    for i in range(len(ds)):
        s = ds[i]
        img = s["image"].permute(1, 2, 0).numpy()
        lm = s["landmarks5"].numpy()
        _, sg = occlude(img, lm, "sunglasses", i)
        _, fm = occlude(img, lm, "mask", i)
        assert _covered(sg, lm[0], 1) and _covered(sg, lm[1], 1) and not _touched(sg, lm[3:].mean(0))
        assert _covered(fm, lm[3], 1) and _covered(fm, lm[4], 1) and not _touched(fm, lm[0]) and not _touched(fm, lm[1])
