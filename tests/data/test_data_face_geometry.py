"""The one face geometry (ferlib.data.face_geometry): template, similarity fit, 68→5/8, boxes — hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_convert

from ferlib.data import face_geometry as fg


def test_template_is_arcface_scaled_per_axis():
    np.testing.assert_allclose(fg.canonical_template(112), fg.TEMPLATE_112)
    np.testing.assert_allclose(fg.CANONICAL_TEMPLATE_224, fg.TEMPLATE_112 * 2)
    # (height, width) = (224, 112): x unchanged, y doubled
    np.testing.assert_allclose(fg.canonical_template((224, 112))[0], [38.2946, 51.6963 * 2], rtol=1e-6)
    left_eye, right_eye, nose, left_mouth, right_mouth = fg.TEMPLATE_112
    assert left_eye[0] < nose[0] < right_eye[0] and left_mouth[0] < right_mouth[0]  # slot 0 is image-left


def test_fit_two_points_is_exact():
    # (0,0)→(1,1) and (1,0)→(1,3): the unit x-vector becomes (0,2): scale 2, rotation +90°, translation (1,1)
    m = fg.fit_similarity([[0, 0], [1, 0]], [[1, 1], [1, 3]])
    np.testing.assert_allclose(m, [[0, -2, 1], [2, 0, 1]], atol=1e-12)


def test_fit_is_least_squares_when_no_similarity_is_exact():
    # src: (±1,0), (0,±1); dst stretches x by 2 only. Umeyama: var_s = 1, Σ = diag(1, 0.5), R = I,
    # s = (1 + 0.5) / 1 = 1.5, t = 0 — the best uniform scale between 2 (x) and 1 (y).
    src = [[-1, 0], [1, 0], [0, 1], [0, -1]]
    dst = [[-2, 0], [2, 0], [0, 1], [0, -1]]
    np.testing.assert_allclose(fg.fit_similarity(src, dst), [[1.5, 0, 0], [0, 1.5, 0]], atol=1e-12)


def test_fit_never_reflects_and_rejects_bad_points():
    src = np.array([[0, 0], [2, 0], [0, 1]], float)
    mirrored = src * [-1, 1]
    m = fg.fit_similarity(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0
    with pytest.raises(ValueError, match="NaN"):
        fg.fit_similarity([[0, 0], [np.nan, 1]], [[0, 0], [1, 1]])
    with pytest.raises(ValueError, match="coincide"):
        fg.fit_similarity([[3, 3], [3, 3]], [[0, 0], [1, 1]])


def test_matrix_forms_agree():
    src = fg.canonical_template(100)
    m3 = fg.similarity_matrix(src, fg.CANONICAL_TEMPLATE_224)
    np.testing.assert_allclose(m3[2], [0, 0, 1])
    np.testing.assert_allclose(fg.apply_affine(m3, src), fg.apply_affine(m3[:2], src))
    np.testing.assert_allclose(fg.apply_affine(m3, src), fg.CANONICAL_TEMPLATE_224, atol=1e-4)


def test_68_to_5_and_8_by_hand():
    pts = np.array([[i, 2 * i] for i in range(68)], np.float32)  # point i at (i, 2i)
    five = fg.landmarks68_to_5(pts)
    # eyes: means of 36..41 and 42..47; nose 30; mouth corners 48 and 54
    np.testing.assert_allclose(five, [[38.5, 77], [44.5, 89], [30, 60], [48, 96], [54, 108]])
    assert five.dtype == np.float32
    np.testing.assert_allclose(fg.landmarks68_to_5(pts.reshape(-1)), five)  # flat 136-vector
    np.testing.assert_allclose(fg.landmarks68_to_5(np.stack([pts, pts + 1]))[1], five + 1)
    np.testing.assert_allclose(fg.landmarks68_to_8(pts)[:, 0], [30, 36, 39, 42, 45, 48, 54, 57])
    with pytest.raises(ValueError, match="68"):
        fg.landmarks68_to_5(np.zeros((5, 2)))


def test_68_to_5_puts_the_image_left_eye_first():
    # an iBUG face as annotated: 36-41 (subject's right eye) lie on the image's left
    pts = np.zeros((68, 2), np.float32)
    pts[36:42] = [30, 40]
    pts[42:48] = [70, 40]
    pts[48], pts[54] = [35, 80], [65, 80]
    five = fg.landmarks68_to_5(pts)
    assert five[0, 0] < five[1, 0] and five[3, 0] < five[4, 0]
    np.testing.assert_allclose(fg.order_landmarks5_by_x(five[[1, 0, 2, 4, 3]]), five)


def test_boxes_are_xyxy_like_torchvision():
    xywh = [10.0, 20.0, 30.0, 40.0]
    expected = box_convert(torch.tensor([xywh]), "xywh", "xyxy")[0].numpy()
    np.testing.assert_allclose(fg.xywh_to_xyxy(xywh), expected)
    box = fg.box_around_points(fg.canonical_template(112), margin=0.0)
    np.testing.assert_allclose(box, [*fg.TEMPLATE_112.min(0), *fg.TEMPLATE_112.max(0)])


def test_one_home_for_each_geometry_fact():
    import ferlib.landmarks as lm
    from ferlib import occlusion
    from ferlib.data import datasets, images, landmark_files
    from ferlib.landmarks import align, base, extract

    assert align.TEMPLATE_112 is fg.TEMPLATE_112 and lm.canonical_template is fg.canonical_template
    assert occlusion.fit_similarity is fg.fit_similarity
    assert lm.landmarks68_to_5 is fg.landmarks68_to_5 is datasets.landmarks5_from_68
    assert lm.load_landmarks_file is datasets.load_landmarks_file is landmark_files.load_landmarks_file
    assert extract.LandmarkTable is landmark_files.LandmarkTable
    assert base.to_rgb_array is images.to_rgb_array
    np.testing.assert_allclose(
        align.similarity_transform([[0, 0], [1, 0]], [[1, 1], [1, 3]])[:2],
        fg.fit_similarity([[0, 0], [1, 0]], [[1, 1], [1, 3]]),
    )


def test_occluder_frame_is_the_template_up_to_a_similarity():
    """The occluders' drawing frame is a symmetrised copy of the one template: within 1 px at 112×112."""
    from ferlib.data.occlusion import CANONICAL_LANDMARKS5

    moved = fg.apply_affine(fg.fit_similarity(CANONICAL_LANDMARKS5, fg.TEMPLATE_112), CANONICAL_LANDMARKS5)
    assert np.linalg.norm(moved - fg.TEMPLATE_112, axis=1).max() < 1.0


def test_image_conversions_round_trip():
    from PIL import Image

    from ferlib.data.images import array_to_tensor, pil_to_tensor, tensor_to_array, to_pil, to_rgb_array

    arr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    t = array_to_tensor(arr)
    assert t.shape == (3, 2, 3) and t.dtype == torch.uint8 and t.is_contiguous()
    np.testing.assert_array_equal(tensor_to_array(t), arr)
    np.testing.assert_array_equal(pil_to_tensor(Image.fromarray(arr)), t)
    np.testing.assert_array_equal(to_rgb_array(to_pil(t)), arr)
    np.testing.assert_array_equal(to_rgb_array(Image.fromarray(arr[..., 0])), np.repeat(arr[..., :1], 3, -1))
