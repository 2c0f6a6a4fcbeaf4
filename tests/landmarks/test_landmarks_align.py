"""Alignment to the canonical 224×224 template: round trips, pixel placement, types and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ferlib.landmarks import CANONICAL_TEMPLATE_224, align_face, canonical_template, similarity_transform
from ferlib.landmarks.align import TEMPLATE_112, alignment_error, apply_transform
from ferlib.landmarks.examples import astronaut_image


def known_similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array(
        [[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty], [0, 0, 1]]
    )


def test_template_is_arcface_scaled_and_in_retinaface_order():
    np.testing.assert_allclose(CANONICAL_TEMPLATE_224, TEMPLATE_112 * 2)
    re, le, nose, rm, lm = CANONICAL_TEMPLATE_224
    assert re[0] < nose[0] < le[0] and rm[0] < lm[0] and max(re[1], le[1]) < nose[1] < min(rm[1], lm[1])
    np.testing.assert_allclose(canonical_template((100, 50))[2], [56.0252 * 50 / 112, 71.7366 * 100 / 112], rtol=1e-6)


def test_round_trip_template_points_land_on_template():
    forward = known_similarity(25.0, 1.7, 40.0, -15.0)
    src = apply_transform(forward, CANONICAL_TEMPLATE_224)  # the template seen in some bigger photo
    image = np.zeros((480, 520, 3), np.uint8)
    out = align_face(image, src)
    np.testing.assert_allclose(out.landmarks5, CANONICAL_TEMPLATE_224, atol=1e-3)
    np.testing.assert_allclose(out.matrix, np.linalg.inv(forward), atol=1e-4)  # src is float32
    assert out.image.shape == (224, 224, 3) and out.image.dtype == np.uint8
    assert alignment_error(src) < 1e-3


def test_warp_moves_pixels_with_the_points():
    """A bright disc at the nose of a rotated, scaled face ends on the template's nose."""
    forward = known_similarity(-30.0, 0.8, 60.0, 50.0)
    src = apply_transform(forward, CANONICAL_TEMPLATE_224)
    h, w = 320, 300
    yy, xx = np.mgrid[:h, :w]
    image = np.zeros((h, w), np.uint8)
    image[(xx - src[2, 0]) ** 2 + (yy - src[2, 1]) ** 2 <= 16] = 255
    tensor = torch.from_numpy(np.stack([image] * 3))  # schema tensor C×H×W
    out = align_face(tensor, src)
    assert isinstance(out.image, torch.Tensor) and out.image.dtype == torch.uint8 and out.image.shape == (3, 224, 224)
    warped = out.image[0].numpy().astype(float)
    ys, xs = np.nonzero(warped > 0)
    weights = warped[ys, xs]
    centroid = np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()
    np.testing.assert_allclose(centroid, CANONICAL_TEMPLATE_224[2], atol=0.75)
    # the disc (radius 4 px) shrinks by the inverse scale, 1/0.8
    assert abs((warped > 127).sum() - math.pi * (4 / 0.8) ** 2) < 25


def test_identity_alignment_keeps_the_image():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    out = align_face(image, CANONICAL_TEMPLATE_224)
    np.testing.assert_allclose(out.matrix, np.eye(3), atol=1e-9)
    assert np.abs(out.image.astype(int) - image.astype(int)).max() <= 1


def test_real_face_aligns_close_to_template():
    # MTCNN's points on skimage's astronaut (recorded in test_landmarks_detectors.py)
    points = np.array([[205.01, 101.73], [246.76, 103.71], [224.67, 128.96], [201.72, 139.25], [245.27, 141.86]])
    out = align_face(astronaut_image(), points, output_size=112)
    assert out.image.shape == (112, 112, 3)
    # a real face is not the template: the residual is the non-rigid part (this mouth is wider)
    residual = np.linalg.norm(out.landmarks5 - TEMPLATE_112, axis=1)
    assert residual.max() < 8.0 and residual.mean() < 6.0
    assert abs(alignment_error(points, output_size=112) - residual.mean()) < 1e-3
    eyes_y = out.landmarks5[:2, 1]
    assert abs(eyes_y[0] - eyes_y[1]) < 1.5  # the slight head tilt is removed
    assert out.image.mean() > 60  # a face, not the black border


def test_unknown_points_raise():
    with pytest.raises(ValueError, match="NaN"):
        align_face(np.zeros((10, 10, 3), np.uint8), np.full((5, 2), np.nan))
    with pytest.raises(ValueError):
        similarity_transform(np.zeros((5, 2)), CANONICAL_TEMPLATE_224)  # degenerate: all points equal
