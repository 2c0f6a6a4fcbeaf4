"""The ``retina-face`` backend over the PyPI package: local weights only, RetinaFace order, never a download."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ferlib.landmarks import create_detector, list_detectors
from ferlib.landmarks.retinaface_pypi import POINT_NAMES, default_weights_path

retinaface = pytest.importorskip("retinaface")

torch.set_num_threads(1)


@pytest.fixture
def no_network(monkeypatch):
    """Every way the package could fetch weights raises; the list records any attempt."""
    import gdown
    import requests
    from retinaface.commons import weight_utils

    calls: list[str] = []

    def refuse(name):
        def f(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called: ferlib must never download")

        return f

    monkeypatch.setattr(weight_utils, "download_weights_if_necessary", refuse("download_weights_if_necessary"))
    monkeypatch.setattr(gdown, "download", refuse("gdown.download"))
    monkeypatch.setattr(requests, "head", refuse("requests.head"))
    monkeypatch.setattr(requests, "get", refuse("requests.get"))
    return calls


@pytest.fixture
def deepface_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))
    return tmp_path


def write_random_weights(home, seed: int = 0):
    """A randomly initialised state dict of the package's own network where its PyTorch engine looks."""
    from retinaface.model.retinaface_pth_model import RetinaFace

    torch.manual_seed(seed)
    net = RetinaFace()
    path = home / ".deepface" / "weights" / "retinaface.pth"
    path.parent.mkdir(parents=True)
    torch.save(net.state_dict(), path)
    return net, path


def test_registered_and_missing_weights_refused_with_path(deepface_home, no_network):
    assert "retina-face" in list_detectors()
    expected = deepface_home / ".deepface" / "weights" / "retinaface.pth"
    assert default_weights_path() == expected
    with pytest.raises(FileNotFoundError, match=r"not found at .*\.deepface/weights/retinaface\.pth.*never downloads"):
        create_detector("retina-face")
    assert no_network == []
    assert not expected.exists() and not (deepface_home / ".deepface").exists()  # nothing created either


def test_random_weights_detect_structure_in_retinaface_order(deepface_home, no_network):
    net, path = write_random_weights(deepface_home)
    det = create_detector("retina-face", score_threshold=0.0, allow_upscaling=False)
    # the weights in the file are the ones that run
    for name, value in net.state_dict().items():
        torch.testing.assert_close(det.model.state_dict()[name], value)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8), np.zeros((64, 64, 3), np.uint8)]
    out = det.detect(images)
    assert len(out) == 2
    assert len(out[0]) > 0  # threshold 0: every anchor is a candidate, NMS keeps some
    for faces in out:
        scores = [f.score for f in faces]
        assert scores == sorted(scores, reverse=True)
        for f in faces:
            assert f.box.shape == (4,) and f.box.dtype == np.float32
            assert f.landmarks5.shape == (5, 2) and f.landmarks5.dtype == np.float32
            assert 0.0 <= f.score <= 1.0 and np.isfinite(f.landmarks5).all()
    assert det.describe()["backend"] == "retina-face" and det.describe()["weights"] == path.name
    assert no_network == []


def test_points_map_to_retinaface_order_and_rgb_is_flipped(deepface_home, no_network, monkeypatch):
    write_random_weights(deepface_home)
    det = create_detector("retina-face")
    seen = {}
    pts = {name: [10.0 * i, 20.0 + i] for i, name in enumerate(POINT_NAMES)}

    def fake_detect_faces(img, threshold, model, allow_upscaling):
        seen["img"] = img
        seen["threshold"] = threshold
        return {"face_1": {"score": 0.97, "facial_area": [1, 2, 30, 40], "landmarks": dict(reversed(pts.items()))}}

    monkeypatch.setattr(det._api, "detect_faces", fake_detect_faces)
    image = np.zeros((8, 8, 3), np.uint8)
    image[..., 0] = 200  # red in RGB
    (face,) = det.detect([image])[0]
    assert seen["img"][0, 0].tolist() == [0, 0, 200]  # the package gets BGR
    assert seen["threshold"] == 0.9
    np.testing.assert_array_equal(face.landmarks5, [[0, 20], [10, 21], [20, 22], [30, 23], [40, 24]])
    np.testing.assert_array_equal(face.box, [1, 2, 30, 40])
    assert face.score == pytest.approx(0.97)
    assert no_network == []


def test_bad_file_and_gpu_device_refused(deepface_home, no_network, tmp_path):
    bad = tmp_path / "other.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="could not load .*other.pth"):
        create_detector("retina-face", weights=bad)
    with pytest.raises(ValueError, match="CPU only"):
        create_detector("retina-face", weights=bad, device="cuda")
    assert no_network == []


def test_cli_refuses_without_weights_and_names_the_path(deepface_home, no_network, tmp_path, capsys):
    from ferlib.cli import main

    folder = tmp_path / "images"
    folder.mkdir()
    assert main(["landmarks", str(folder), "--backend", "retina-face"]) == 2
    err = capsys.readouterr().err
    assert f"{deepface_home}/.deepface/weights/retinaface.pth" in err and "never downloads" in err
    assert no_network == [] and not list(folder.iterdir())
