"""ferlib's RetinaFace: checkpoint layout, loading errors, anchors, decoding and the whole detect path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ferlib.landmarks import create_detector
from ferlib.landmarks.retinaface import (
    VARIANCES,
    RetinaFaceNet,
    decode_boxes,
    decode_landmarks,
    load_retinaface,
    prior_boxes,
)

torch.set_num_threads(1)


def save_checkpoint(net: torch.nn.Module, path, prefix: str = "module.") -> None:
    """Save like the public checkpoints: a DataParallel state dict with 'module.' prefixes."""
    torch.save({prefix + k: v for k, v in net.state_dict().items()}, path)


@pytest.fixture(scope="module")
def random_mobilenet(tmp_path_factory):
    torch.manual_seed(0)
    net = RetinaFaceNet("mobilenet0.25")
    path = tmp_path_factory.mktemp("rf") / "mobilenet0.25_random.pth"
    save_checkpoint(net, path)
    return net, path


def test_checkpoint_layout_matches_public_key_names():
    keys = set(RetinaFaceNet("mobilenet0.25").state_dict())
    for k in (
        "body.stage1.0.0.weight",
        "body.stage1.1.3.weight",
        "body.stage2.5.4.running_var",
        "body.stage3.1.4.bias",
        "fpn.output1.0.weight",
        "fpn.merge2.1.weight",
        "ssh1.conv3X3.0.weight",
        "ssh3.conv7x7_3.1.bias",
        "ClassHead.0.conv1x1.weight",
        "BboxHead.2.conv1x1.bias",
        "LandmarkHead.1.conv1x1.weight",
    ):
        assert k in keys, k
    assert not any(k.startswith(("body.fc", "body.avg")) for k in keys)
    n_params = sum(p.numel() for p in RetinaFaceNet("mobilenet0.25").parameters())
    assert 420_000 < n_params < 440_000  # mobilenet0.25_Final.pth is 1.7 MB of float32
    r50 = RetinaFaceNet("resnet50").state_dict()
    assert "body.layer4.2.conv3.weight" in r50 and "body.fc.weight" not in r50
    assert r50["fpn.output3.0.weight"].shape == (256, 2048, 1, 1)
    assert r50["LandmarkHead.0.conv1x1.weight"].shape == (20, 256, 1, 1)


def test_prior_boxes_count_order_and_decoding():
    h, w = 64, 96
    priors = prior_boxes(h, w)
    cells = [math.ceil(h / s) * math.ceil(w / s) for s in (8, 16, 32)]
    assert priors.shape == (2 * sum(cells), 4)
    # first two anchors: cell (0, 0) of stride 8, sizes 16 and 32 (normalised)
    np.testing.assert_allclose(priors[0], [4 / w, 4 / h, 16 / w, 16 / h], rtol=1e-6)
    np.testing.assert_allclose(priors[1], [4 / w, 4 / h, 32 / w, 32 / h], rtol=1e-6)
    np.testing.assert_allclose(priors[2, :2], [12 / w, 4 / h], rtol=1e-6)  # next column
    # zero offsets decode to the anchor itself; landmark offsets scale by variance·anchor size
    boxes = decode_boxes(torch.zeros(2, 4), priors[:2])
    np.testing.assert_allclose(boxes[0], [-4 / w, -4 / h, 12 / w, 12 / h], rtol=1e-5)
    lm = decode_landmarks(torch.ones(1, 10), priors[:1])
    np.testing.assert_allclose(lm[0, 0], [(4 + VARIANCES[0] * 16) / w, (4 + VARIANCES[0] * 16) / h], rtol=1e-5)
    grown = decode_boxes(torch.tensor([[0.0, 0.0, 1 / VARIANCES[1], 0.0]]), priors[:1])
    np.testing.assert_allclose((grown[0, 2] - grown[0, 0]) * w, 16 * math.e, rtol=1e-5)


def test_random_weights_whole_path(random_mobilenet, tmp_path):
    _, path = random_mobilenet
    det = create_detector("retinaface", weights=path, score_threshold=0.95)
    images = [np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8), np.zeros((64, 64, 3), np.uint8)]
    out = det.detect(images)
    assert len(out) == 2
    for faces in out:
        for f in faces:
            assert f.score >= 0.95 and f.landmarks5.shape == (5, 2) and f.landmarks5.dtype == np.float32
    # the same weights under another key prefix (no DataParallel) load identically
    plain = tmp_path / "plain.pth"
    save_checkpoint(random_mobilenet[0], plain, prefix="")
    net = load_retinaface(plain)
    x = torch.randn(1, 3, 32, 32)
    for a, b in zip(net(x), det.net(x)):
        torch.testing.assert_close(a, b)


def test_planted_face_decodes_to_known_points(tmp_path):
    """Heads with zero weights and chosen biases: one 512 px anchor fires at every stride-32 cell."""
    net = RetinaFaceNet("mobilenet0.25")
    offsets = torch.tensor([-1.0, -0.5, 1.0, -0.5, 0.0, 0.2, -0.8, 1.0, 0.8, 1.0])
    with torch.no_grad():
        for level in range(3):
            for head in (net.ClassHead[level], net.BboxHead[level], net.LandmarkHead[level]):
                head.conv1x1.weight.zero_()
                head.conv1x1.bias.zero_()
            net.ClassHead[level].conv1x1.bias.copy_(torch.tensor([8.0, -8.0, 8.0, -8.0]))  # background
        net.ClassHead[2].conv1x1.bias.copy_(torch.tensor([8.0, -8.0, -8.0, 8.0]))  # anchor 1 (512 px): face
        net.LandmarkHead[2].conv1x1.bias[10:].copy_(offsets)
    path = tmp_path / "planted.pth"
    save_checkpoint(net, path)
    det = create_detector("retinaface", weights=path, score_threshold=0.9, max_size=None)
    faces = det.detect([np.full((64, 64, 3), 100, np.uint8)])[0]
    assert len(faces) == 1  # four overlapping 512 px anchors: NMS keeps one
    f = faces[0]
    assert f.score > 0.999
    np.testing.assert_allclose(f.box[2] - f.box[0], 512, atol=1e-3)
    expected = f.center + offsets.view(5, 2).numpy() * VARIANCES[0] * 512
    np.testing.assert_allclose(f.landmarks5, expected, atol=1e-3)
    assert f.center.tolist() in ([16.0, 16.0], [48.0, 16.0], [16.0, 48.0], [48.0, 48.0])
    # downsized to 32×32 (one stride-32 cell), coordinates come back in the 64×64 image's pixels
    half = create_detector("retinaface", weights=path, score_threshold=0.9, max_size=32)
    (g,) = half.detect([np.full((64, 64, 3), 100, np.uint8)])[0]
    np.testing.assert_allclose(g.center, [32.0, 32.0], atol=1e-3)
    np.testing.assert_allclose(g.box[2] - g.box[0], 1024, atol=1e-2)
    np.testing.assert_allclose(g.landmarks5, g.center + offsets.view(5, 2).numpy() * VARIANCES[0] * 1024, atol=1e-2)


def test_large_images_are_downsized_and_mapped_back(tmp_path, random_mobilenet):
    _, path = random_mobilenet
    det = create_detector("retinaface", weights=path, score_threshold=0.99, max_size=64)
    calls = []
    original = det.net.forward
    det.net.forward = lambda x: calls.append(tuple(x.shape)) or original(x)
    det.detect([np.zeros((200, 100, 3), np.uint8)])
    assert calls == [(1, 3, 64, 32)]


def test_missing_and_mismatched_weights_messages(tmp_path):
    with pytest.raises(ValueError, match="no RetinaFace weights given.*mobilenet0.25_Final.pth"):
        create_detector("retinaface")
    with pytest.raises(FileNotFoundError, match="not found at .*nope.pth.*--weights"):
        create_detector("retinaface", weights=tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not read RetinaFace weights"):
        create_detector("retinaface", weights=junk)
    other = tmp_path / "resnet18.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, other)
    with pytest.raises(ValueError, match="neither RetinaFace"):
        create_detector("retinaface", weights=other)
    broken = RetinaFaceNet("mobilenet0.25").state_dict()
    broken["ClassHead.0.conv1x1.weight"] = torch.zeros(6, 64, 1, 1)
    del broken["fpn.merge1.0.weight"]
    bad = tmp_path / "bad.pth"
    torch.save(broken, bad)
    with pytest.raises(ValueError, match=r"1 missing key\(s\) \['fpn.merge1.0.weight'\].*1 shape mismatch"):
        create_detector("retinaface", weights=bad)
    good = tmp_path / "good.pth"
    save_checkpoint(RetinaFaceNet("mobilenet0.25"), good)
    with pytest.raises(ValueError, match="holds a RetinaFace mobilenet0.25 checkpoint but backbone='resnet50'"):
        create_detector("retinaface", weights=good, backbone="resnet50")


def test_cli_without_weights_fails_with_the_fix(tmp_path, capsys):
    from ferlib.cli import main

    assert main(["landmarks", str(tmp_path), "--backend", "retinaface"]) == 2
    err = capsys.readouterr().err
    assert "no RetinaFace weights given" in err and "--weights PATH" in err and "mtcnn" in err
    assert not list(tmp_path.iterdir())  # nothing written
