"""MTCNN on real faces shipped with scikit-image, the backend registry and the annotations backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ferlib.landmarks import (
    Detector,
    Face,
    create_detector,
    detect,
    landmarks68_to_5,
    list_detectors,
    register_detector,
)
from ferlib.landmarks.base import select_primary_face, to_rgb_array
from ferlib.landmarks.examples import FRONTAL_LFW_FACES, astronaut_image, faces_side_by_side, lfw_face

torch.set_num_threads(1)

#: Recorded from a run of facenet-pytorch 2.5.3 MTCNN (deterministic on CPU): box and 5 points.
ASTRONAUT_BOX = [181.05, 62.16, 267.75, 172.05]
ASTRONAUT_POINTS = [[205.01, 101.73], [246.76, 103.71], [224.67, 128.96], [201.72, 139.25], [245.27, 141.86]]
LFW_POINTS = {  # lfw_face(i) = face i of lfw_subset() at 128 px on a 192 px grey canvas
    0: [[74.36, 77.75], [117.70, 76.75], [100.73, 102.87], [80.44, 129.78], [113.50, 129.46]],
    3: [[66.63, 80.42], [111.59, 79.26], [90.48, 105.96], [72.19, 127.86], [109.67, 127.68]],
    8: [[67.85, 81.04], [111.46, 79.87], [88.22, 103.12], [70.94, 122.42], [110.70, 122.15]],
}
TOLERANCE_PX = 3.0


@pytest.fixture(scope="module")
def mtcnn():
    return create_detector("mtcnn")


def assert_plausible_face(face: Face) -> None:
    """Eyes above nose above mouth; subject's right eye/mouth corner (slots 0, 3) on the image left."""
    re, le, nose, rm, lm = face.landmarks5
    assert face.landmarks5.dtype == np.float32 and face.landmarks5.shape == (5, 2)
    assert max(re[1], le[1]) < nose[1] < min(rm[1], lm[1]), face.landmarks5
    assert re[0] < le[0] and rm[0] < lm[0], "left/right slots swapped"
    assert re[0] < nose[0] < le[0]
    x1, y1, x2, y2 = face.box
    assert (face.landmarks5[:, 0] > x1).all() and (face.landmarks5[:, 0] < x2).all()
    assert (face.landmarks5[:, 1] > y1).all() and (face.landmarks5[:, 1] < y2).all()


def test_mtcnn_astronaut_matches_reference(mtcnn):
    faces = mtcnn.detect([astronaut_image()])[0]
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.99
    assert_plausible_face(face)
    np.testing.assert_allclose(face.box, ASTRONAUT_BOX, atol=TOLERANCE_PX)
    np.testing.assert_allclose(face.landmarks5, ASTRONAUT_POINTS, atol=TOLERANCE_PX)


def test_mtcnn_lfw_faces_batched_match_reference(mtcnn):
    images = [lfw_face(i) for i in LFW_POINTS]
    results = mtcnn.detect(images)  # equal sizes: one MTCNN batch
    for (i, ref), faces in zip(LFW_POINTS.items(), results):
        assert len(faces) == 1, f"lfw face {i}"
        assert_plausible_face(faces[0])
        np.testing.assert_allclose(faces[0].landmarks5, ref, atol=TOLERANCE_PX, err_msg=f"lfw face {i}")


def test_mtcnn_accepts_schema_tensor_and_mirrors_consistently(mtcnn):
    image = lfw_face(FRONTAL_LFW_FACES[0])
    tensor = torch.from_numpy(image).permute(2, 0, 1).contiguous()  # schema: uint8 C×H×W
    plain, flipped = mtcnn.detect([tensor, image[:, ::-1].copy()])
    assert len(plain) == 1 and len(flipped) == 1
    w = image.shape[1]
    # Mirroring swaps left/right slots: the subject's right eye becomes the subject's left eye.
    mirrored = flipped[0].landmarks5.copy()
    mirrored[:, 0] = (w - 1) - mirrored[:, 0]
    mirrored = mirrored[[1, 0, 2, 4, 3]]
    np.testing.assert_allclose(mirrored, plain[0].landmarks5, atol=6.0)  # MTCNN is not exactly flip-equivariant


def test_no_face_and_two_faces(mtcnn):
    grey = np.full((160, 160, 3), 128, dtype=np.uint8)
    big, small = lfw_face(0, 160), lfw_face(3, 96, 144)
    pair = faces_side_by_side(big, small)
    no_face, two = mtcnn.detect([grey, pair])
    assert no_face == []
    assert len(two) == 2
    for f in two:
        assert_plausible_face(f)
    primary = select_primary_face(two, pair.shape[:2])
    assert primary.box[2] <= big.shape[1] + 1, "the larger (left) face must be kept"


def test_select_primary_prefers_central_among_equals():
    pts = np.zeros((5, 2), np.float32)
    left = Face([0, 40, 50, 90], 0.99, pts)
    centre = Face([75, 40, 125, 90], 0.90, pts)
    tiny_centre = Face([95, 60, 105, 70], 0.99, pts)
    assert select_primary_face([left, centre], (130, 200)) is centre
    assert select_primary_face([left, tiny_centre], (130, 200)) is left
    assert select_primary_face([], (10, 10)) is None


def test_registry_new_backend_is_one_small_class():
    @register_detector("test-fixed")
    class Fixed(Detector):
        def detect_arrays(self, images):
            return [[Face([0, 0, im.shape[1], im.shape[0]], 0.5, np.ones((5, 2)))] for im in images]

    assert "test-fixed" in list_detectors()
    assert {"mtcnn", "retinaface", "annotations"} <= set(list_detectors())
    out = detect([np.zeros((8, 6, 3), np.uint8)], backend="test-fixed")
    assert out[0][0].box.tolist() == [0, 0, 6, 8]
    with pytest.raises(ValueError, match="unknown landmark backend 'nope'"):
        create_detector("nope")


def test_annotations_backend_and_68_to_5():
    pts68 = np.zeros((68, 2), np.float32)
    pts68[36:42] = [10, 20]
    pts68[42:48] = [30, 20]
    pts68[39] = [16, 26]  # one eye point off: the centre is the mean of six
    pts68[30] = [20, 30]
    pts68[48] = [12, 40]
    pts68[54] = [28, 40]
    five = landmarks68_to_5(pts68)
    np.testing.assert_allclose(five, [[11, 21], [30, 20], [20, 30], [12, 40], [28, 40]])
    assert landmarks68_to_5(np.stack([pts68, pts68])).shape == (2, 5, 2)
    # the data layer's CK+ loader must give the same five points
    from ferlib.data.datasets import landmarks5_from_68

    random68 = np.random.default_rng(0).uniform(0, 100, (68, 2))
    np.testing.assert_allclose(landmarks68_to_5(random68), landmarks5_from_68(random68), rtol=1e-6)
    with pytest.raises(ValueError, match="68×2"):
        landmarks68_to_5(np.zeros((5, 2)))

    det = create_detector("annotations")
    lm5 = torch.tensor(five)
    samples = [
        {"image": torch.zeros(3, 50, 50, dtype=torch.uint8), "landmarks5": lm5},
        {"image": torch.zeros(3, 50, 50, dtype=torch.uint8), "landmarks5": torch.full((5, 2), float("nan"))},
        {
            "image": torch.zeros(3, 50, 50, dtype=torch.uint8),
            "landmarks5": torch.full((5, 2), float("nan")),
            "landmarks": torch.from_numpy(pts68),
        },
    ]
    got = det.detect_samples(samples)
    assert [len(g) for g in got] == [1, 0, 1]
    np.testing.assert_allclose(got[0][0].landmarks5, five)
    np.testing.assert_allclose(got[2][0].landmarks5, five)
    with pytest.raises(TypeError, match="needs samples"):
        det.detect([np.zeros((4, 4, 3), np.uint8)])


def test_to_rgb_array_conversions():
    chw = torch.arange(2 * 3 * 4, dtype=torch.uint8).reshape(3, 2, 4)
    assert to_rgb_array(chw).shape == (2, 4, 3)
    assert to_rgb_array(np.ones((5, 6), np.float32)).tolist()[0][0] == [255, 255, 255]
    with pytest.raises(ValueError):
        to_rgb_array(np.zeros((2, 2, 2, 2)))


def test_detector_pool_matches_in_process_results(mtcnn):
    from ferlib.landmarks.parallel import DetectorPool

    images = [lfw_face(0), np.full((192, 192, 3), 128, np.uint8), lfw_face(3)]
    expected = mtcnn.detect(images)
    with DetectorPool("mtcnn", workers=2) as pool:
        got = pool.detect(images)  # split 2 + 1 across the workers, order kept
        assert pool.name == "mtcnn" and pool.describe()["workers"] == 2
        assert pool.describe()["min_face_size"] == 20
    assert [len(g) for g in got] == [1, 0, 1]
    for e, g in zip(expected, got):
        for fe, fg in zip(e, g):
            np.testing.assert_allclose(fg.landmarks5, fe.landmarks5, atol=1e-3)
    with pytest.raises(ValueError, match="annotations"):
        DetectorPool("annotations")
