"""Augmentations move landmarks with the image; the flip swaps left/right slots."""

from __future__ import annotations

import math

import pytest
import torch

from ferlib.data.schema import LANDMARK5_FLIP_PERM, LANDMARK8_FLIP_PERM
from ferlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, LandmarkAugment, hflip_landmarks, normalize_images

H, W = 40, 48
# a frontal face: image-left eye, image-right eye, nose, image-left mouth corner, image-right mouth corner
LM5 = torch.tensor([[14.0, 12.0], [33.0, 13.0], [24.0, 21.0], [16.0, 30.0], [31.0, 29.0]])
LM8 = torch.tensor(
    [[24.0, 21.0], [10.0, 12.0], [18.0, 12.0], [29.0, 13.0], [37.0, 13.0], [16.0, 30.0], [31.0, 29.0], [24.0, 34.0]]
)


def _dots_batch(points: torch.Tensor, n: int = 2) -> dict:
    """Black images with a distinct bright 1-pixel dot at each landmark (channel 0 = 50 + 40·k)."""
    img = torch.zeros(n, 3, H, W, dtype=torch.uint8)
    for k, (x, y) in enumerate(points.tolist()):
        img[:, 0, int(y), int(x)] = 50 + 40 * k
        img[:, 1, int(y), int(x)] = 255
    return {"image": img, "landmarks5": points.expand(n, 5, 2).clone(), "label": torch.arange(n)}


def _dot_position(channel0: torch.Tensor, value: int) -> tuple[float, float]:
    ys, xs = torch.nonzero(channel0 == value, as_tuple=True)
    assert len(xs) == 1, f"dot {value} not found exactly once"
    return float(xs[0]), float(ys[0])


@pytest.mark.parametrize("batched", [True, False])
def test_flip_mirrors_x_and_swaps_slots(batched):
    aug = LandmarkAugment(flip=True, flip_p=1.0, translate=0.0, color_jitter=None, batched=batched)
    batch = _dots_batch(LM5)
    batch["landmarks8"] = LM8.expand(2, 8, 2).clone()
    out = aug(batch)
    lm = out["landmarks5"][0]
    perm = list(LANDMARK5_FLIP_PERM)
    expected = torch.stack([W - 1 - LM5[:, 0], LM5[:, 1]], 1)[perm]
    assert torch.equal(lm, expected)
    # slots keep their meaning: slot 0 is still the eye on the image's left after the flip
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]
    # the drawn dot of each original point is where the flipped landmark of its *swapped* slot says
    for k in range(5):
        x, y = _dot_position(out["image"][0, 0], 50 + 40 * k)
        slot = perm.index(k)
        assert (x, y) == (float(lm[slot, 0]), float(lm[slot, 1]))
    lm8 = out["landmarks8"][0]
    assert torch.equal(lm8, torch.stack([W - 1 - LM8[:, 0], LM8[:, 1]], 1)[list(LANDMARK8_FLIP_PERM)])
    assert lm8[1, 0] < lm8[2, 0] < lm8[3, 0] < lm8[4, 0]  # eye corners still ordered image-left to right


def test_flip_twice_is_identity_and_nan_stays_nan():
    points = LM5.clone()
    points[2] = math.nan
    once = hflip_landmarks(points, W, LANDMARK5_FLIP_PERM)
    assert torch.isnan(once[2]).all() and not torch.isnan(once[[0, 1, 3, 4]]).any()
    assert torch.equal(hflip_landmarks(once, W, LANDMARK5_FLIP_PERM)[[0, 1, 3, 4]], points[[0, 1, 3, 4]])
    for batched in (True, False):
        aug = LandmarkAugment(
            flip=True, flip_p=1.0, translate=0.1, rotate=10, color_jitter=None, seed=0, batched=batched
        )
        out = aug({"image": torch.zeros(3, 3, H, W, dtype=torch.uint8), "landmarks5": points.expand(3, 5, 2).clone()})
        assert torch.isnan(out["landmarks5"][:, 2]).all() and not torch.isnan(out["landmarks5"][:, [0, 1, 3, 4]]).any()


@pytest.mark.parametrize("batched", [True, False])
def test_flip_is_per_sample(batched):
    aug = LandmarkAugment(flip=True, flip_p=0.5, translate=0.0, color_jitter=None, seed=3, batched=batched)
    batch = _dots_batch(LM5, n=16)
    out = aug(batch)
    flipped = out["landmarks5"][:, 2, 0] != LM5[2, 0]  # nose x: 24 -> 23 when flipped
    assert 0 < int(flipped.sum()) < 16
    for i in range(16):
        x, _ = _dot_position(out["image"][i, 0], 50)
        assert x == (W - 1 - LM5[0, 0] if flipped[i] else LM5[0, 0])


@pytest.mark.parametrize("batched", [True, False])
def test_translation_moves_image_and_all_points_together(batched):
    aug = LandmarkAugment(flip=False, translate=0.15, color_jitter=None, seed=1, batched=batched)
    batch = _dots_batch(LM5, n=4)
    out = aug(batch)
    shifts = out["landmarks5"] - batch["landmarks5"]
    assert (shifts.abs().sum((1, 2)) > 0).any()
    for i in range(4):
        # one integer shift per sample, the same for every point
        assert torch.allclose(shifts[i], shifts[i, :1].expand(5, 2), atol=1e-5)
        assert torch.equal(shifts[i], shifts[i].round())
        for k in range(5):
            x, y = _dot_position(out["image"][i, 0], 50 + 40 * k)
            assert (x, y) == tuple(out["landmarks5"][i, k].round().tolist())


@pytest.mark.parametrize("batched", [True, False])
def test_rotation_and_scale_track_the_dots(batched):
    aug = LandmarkAugment(
        flip=False, translate=0.0, rotate=25, scale=(0.85, 1.15), color_jitter=None, seed=2, batched=batched
    )
    batch = _dots_batch(torch.tensor([[20.0, 16.0]] * 5), n=3)
    batch["image"][:, 0] = 0
    batch["image"][:, 1] = 0
    batch["image"][:, 1, 15:18, 19:22] = 255  # a 3x3 block centred on the landmark
    out = aug(batch)
    for i in range(3):
        g = out["image"][i, 1].float()
        ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
        cx, cy = float((g * xs).sum() / g.sum()), float((g * ys).sum() / g.sum())
        lx, ly = out["landmarks5"][i, 0].tolist()
        assert abs(cx - lx) < 0.5 and abs(cy - ly) < 0.5


def test_color_jitter_changes_pixels_not_landmarks_and_can_be_disabled():
    torch.manual_seed(0)
    img = torch.randint(30, 220, (4, 3, H, W), dtype=torch.uint8)
    batch = {"image": img, "landmarks5": LM5.expand(4, 5, 2).clone()}
    out = LandmarkAugment(flip=False, translate=0.0, color_jitter=(0.4, 0.4, 0.4), seed=0)(batch)
    assert not torch.equal(out["image"], img) and torch.equal(out["landmarks5"], batch["landmarks5"])
    assert out["image"].dtype == torch.uint8
    same = LandmarkAugment(flip=False, translate=0.0, color_jitter=None)(batch)
    assert torch.equal(same["image"], img)


def test_single_sample_and_seeded_repeatability():
    sample = {"image": _dots_batch(LM5, 1)["image"][0], "landmarks5": LM5.clone(), "label": 3, "meta": {"id": "x"}}
    a = LandmarkAugment(seed=5)(sample)
    b = LandmarkAugment(seed=5)(sample)
    assert a["image"].shape == (3, H, W) and a["landmarks5"].shape == (5, 2) and a["meta"] == {"id": "x"}
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["landmarks5"], b["landmarks5"])


def test_normalize_images():
    img = torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2).expand(2, 3, 1, 2)
    x = normalize_images(img)
    assert x.dtype == torch.float32 and x.shape == (2, 3, 1, 2)
    for c in range(3):
        assert x[0, c, 0, 0].item() == pytest.approx(-IMAGENET_MEAN[c] / IMAGENET_STD[c], rel=1e-5)
        assert x[0, c, 0, 1].item() == pytest.approx((1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c], rel=1e-5)
    with pytest.raises(TypeError, match="uint8"):
        normalize_images(img.float())


def _smooth_images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, 6, 7, generator=g) * 255
    return torch.nn.functional.interpolate(small, size=(H, W), mode="bilinear").round().to(torch.uint8)


def test_batched_whole_pixel_shift_equals_torchvision_affine_per_image():
    from torchvision.transforms.v2 import functional as F

    from ferlib.data.transforms import shift_images

    img = torch.randint(0, 256, (6, 3, H, W), dtype=torch.uint8)
    tx = torch.tensor([3, -5, 0, -1, 60, -7])  # 60 > W: the whole image leaves the frame
    ty = torch.tensor([-2, 4, 7, 0, 1, -45])
    out = shift_images(img, tx, ty)
    for i in range(6):
        want = F.affine(
            img[i],
            angle=0.0,
            translate=[int(tx[i]), int(ty[i])],
            scale=1.0,
            shear=[0.0, 0.0],
            interpolation=F.InterpolationMode.BILINEAR,
            fill=0,
        )
        assert torch.equal(out[i], want)
    assert out[4].sum() == 0


def test_batched_warp_and_point_map_match_torchvision_affine_per_image():
    from torchvision import tv_tensors
    from torchvision.transforms.v2 import functional as F

    from ferlib.data.transforms import affine_matrices, affine_points, warp_images

    n = 8
    g = torch.Generator().manual_seed(3)
    angle = torch.rand(n, generator=g) * 50 - 25
    scale = torch.rand(n, generator=g) * 0.5 + 0.8
    shift = torch.randint(-9, 10, (n, 2), generator=g).float()
    linear = affine_matrices(angle, scale)
    for img in (_smooth_images(n), torch.randint(0, 256, (n, 3, H, W), dtype=torch.uint8, generator=g)):
        out = warp_images(img, linear, shift)
        want = torch.stack(
            [
                F.affine(
                    img[i],
                    angle=float(angle[i]),
                    translate=shift[i].tolist(),
                    scale=float(scale[i]),
                    shear=[0.0, 0.0],
                    interpolation=F.InterpolationMode.BILINEAR,
                    fill=0,
                )
                for i in range(n)
            ]
        )
        diff = (out.int() - want.int()).abs()
        assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3
    points = torch.rand(n, 5, 2, generator=g) * torch.tensor([W - 1.0, H - 1.0])
    moved = affine_points(points, linear, shift, H, W)
    centre = [(W - 1) / 2, (H - 1) / 2]
    for i in range(n):
        want = F.affine(
            tv_tensors.KeyPoints(points[i], canvas_size=(H, W)),
            angle=float(angle[i]),
            translate=shift[i].tolist(),
            scale=float(scale[i]),
            shear=[0.0, 0.0],
            center=centre,
        )
        assert torch.allclose(moved[i], want.as_subclass(torch.Tensor), atol=1e-4)


def test_batched_colour_jitter_matches_torchvision_adjust_ops():
    from torchvision.transforms.v2 import functional as F

    from ferlib.data.transforms import jitter_colours

    n = 8
    img = _smooth_images(n, seed=1)
    g = torch.Generator().manual_seed(4)
    b, c, s = (torch.rand(n, generator=g) * 0.8 + 0.6 for _ in range(3))
    b[0] = c[0] = s[0] = 1.0  # a sample drawn at exactly 1 is left alone
    out = jitter_colours(img, b, c, s)
    assert torch.equal(out[0], img[0])
    for i in range(n):
        want = F.adjust_saturation(
            F.adjust_contrast(F.adjust_brightness(img[i], float(b[i])), float(c[i])), float(s[i])
        )
        diff = (out[i].int() - want.int()).abs()
        assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3
    assert not torch.equal(out[1:], img[1:])


def _per_image_reference(batch: dict, params: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """One image at a time through torchvision's functional ops: the semantics the batch path keeps."""
    from torchvision import tv_tensors
    from torchvision.transforms.v2 import functional as F

    images, points = [], []
    for i in range(batch["image"].shape[0]):
        img, pts = batch["image"][i], batch["landmarks5"][i].clone()
        if params["flip"][i]:
            img, pts = F.horizontal_flip(img), hflip_landmarks(pts, W, LANDMARK5_FLIP_PERM)
        kw = dict(
            angle=float(params["angle"][i]),
            translate=[float(params["tx"][i]), float(params["ty"][i])],
            scale=float(params["scale"][i]),
            shear=[0.0, 0.0],
        )
        img = F.affine(img, interpolation=F.InterpolationMode.BILINEAR, fill=0, **kw)
        pts = F.affine(tv_tensors.KeyPoints(pts, canvas_size=(H, W)), center=[(W - 1) / 2, (H - 1) / 2], **kw)
        img = F.adjust_brightness(img, float(params["brightness"][i]))
        img = F.adjust_contrast(img, float(params["contrast"][i]))
        img = F.adjust_saturation(img, float(params["saturation"][i]))
        images.append(img)
        points.append(pts.as_subclass(torch.Tensor))
    return torch.stack(images), torch.stack(points)


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("kind", ["paper-amp-net", "zoom-and-rotate"])
def test_augmentation_equals_the_per_image_torchvision_pipeline(kind, batched):
    kw = (
        dict(flip=True, translate=0.1, color_jitter=(0.2, 0.2, 0.2))
        if kind == "paper-amp-net"
        else dict(flip=True, translate=0.07, rotate=15, scale=(0.9, 1.15), color_jitter=(0.3, 0.0, 0.3))
    )
    aug = LandmarkAugment(seed=7, batched=batched, **kw)
    batch = {"image": _smooth_images(12, seed=2), "landmarks5": LM5.expand(12, 5, 2).clone()}
    params = aug.sample_params(12, H, W)
    assert params["flip"].any() and not params["flip"].all()
    out = aug.apply(batch, params)
    want_img, want_pts = _per_image_reference(batch, params)
    diff = (out["image"].int() - want_img.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3
    assert torch.allclose(out["landmarks5"], want_pts, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_augmentation_on_cuda_matches_cpu():
    aug = LandmarkAugment(flip=True, translate=0.1, rotate=10, scale=(0.9, 1.1), color_jitter=(0.2, 0.2, 0.2), seed=1)
    batch = {"image": _smooth_images(16, seed=5), "landmarks5": LM5.expand(16, 5, 2).clone()}
    params = aug.sample_params(16, H, W)
    cpu = aug.apply(batch, params)
    gpu = aug.apply({k: v.cuda() for k, v in batch.items()}, params)
    assert gpu["image"].is_cuda and gpu["landmarks5"].is_cuda
    assert (gpu["image"].cpu().int() - cpu["image"].int()).abs().max() <= 1
    assert torch.allclose(gpu["landmarks5"].cpu(), cpu["landmarks5"], atol=1e-3)


def test_batched_and_per_image_paths_agree_and_cpu_defaults_to_per_image():
    kw = dict(flip=True, translate=0.1, rotate=0.0, scale=(1.0, 1.15), color_jitter=(0.2, 0.2, 0.2))
    batch = {
        "image": _smooth_images(10, seed=6),
        "landmarks5": LM5.expand(10, 5, 2).clone(),
        "landmarks8": LM8.expand(10, 8, 2).clone(),
    }
    params = LandmarkAugment(seed=3, **kw).sample_params(10, H, W)
    default = LandmarkAugment(**kw).apply(batch, params)
    per_image = LandmarkAugment(batched=False, **kw).apply(batch, params)
    whole = LandmarkAugment(batched=True, **kw).apply(batch, params)
    assert torch.equal(default["image"], per_image["image"])  # CPU tensors: the per-image path
    assert (whole["image"].int() - per_image["image"].int()).abs().max() <= 1
    for key in ("landmarks5", "landmarks8"):
        assert torch.allclose(whole[key], per_image[key], atol=1e-4)
        assert not torch.equal(whole[key], batch[key])
