"""Augmentation parity with the public training code (issue 11, finding 4): a landmark-aware
random-resized crop, rotation, application probabilities and grayscale, selectable per recipe as
``paper``/``public`` presets — and today's recipes unchanged unless they opt in."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from ferlib.data.transforms import (
    LandmarkAugment,
    crop_boxes,
    crop_points,
    grayscale_images,
    resized_crop_images,
)
from ferlib.train.batches import build_augment
from ferlib.train.recipes import Augment, list_recipes, load_recipe

H, W = 40, 48
LM5 = torch.tensor([[14.0, 12.0], [33.0, 13.0], [24.0, 21.0], [16.0, 30.0], [31.0, 29.0]])


def _random_batch(n: int = 6, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, H, W), dtype=torch.uint8, generator=g)
    return {"image": images, "landmarks5": LM5.expand(n, 5, 2).clone(), "label": torch.arange(n)}


def _dot_images(n: int, point: torch.Tensor) -> torch.Tensor:
    """Black frames with one white 3×3 dot centred on ``point`` (integer pixel)."""
    img = torch.zeros(n, 3, H, W, dtype=torch.uint8)
    x, y = int(point[0]), int(point[1])
    img[:, :, y - 1 : y + 2, x - 1 : x + 2] = 255
    return img


def _centroid(image: torch.Tensor) -> tuple[float, float]:
    """Intensity-weighted centre of channel 0 of a 3×H×W uint8 image."""
    w = image[0].double()
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    return float((w * xs).sum() / w.sum()), float((w * ys).sum() / w.sum())


# -- the random-resized crop ---------------------------------------------------------------------------


def test_crop_boxes_follow_random_resized_crop_ranges():
    boxes = crop_boxes(400, H, W, (0.08, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(0))
    top, left, h, w = boxes.T.double()
    assert bool((top >= 0).all() and (left >= 0).all() and (top + h <= H).all() and (left + w <= W).all())
    area = h * w / (H * W)
    # whole-pixel rounding moves a box's area/ratio a little past the continuous range
    assert float(area.min()) >= 0.06 and float(area.max()) <= 1.0
    assert float((w / h).min()) >= 0.7 and float((w / h).max()) <= 1.4
    assert float(area.std()) > 0.1  # really random, not one box


def test_resized_crop_matches_torchvision_and_moves_points_as_its_keypoints():
    images = _random_batch()["image"]
    boxes = torch.tensor([[5, 7, 20, 24], [0, 0, H, W], [3, 2, 11, 30], [0, 0, 37, 20], [10, 30, 30, 18], [1, 1, 8, 8]])
    ours = resized_crop_images(images, boxes)
    for i, (top, left, h, w) in enumerate(boxes.tolist()):
        ref = F.resized_crop(images[i], top, left, h, w, [H, W], interpolation=F.InterpolationMode.BILINEAR)
        assert int((ours[i].int() - ref.int()).abs().max()) <= 1
        # torchvision's keypoints scale pixel corners; ferlib keeps pixel centres on pixel centres:
        # the two agree once the half-pixel offset is taken out.
        kp = tv_tensors.KeyPoints(LM5 + 0.5, canvas_size=(H, W))
        tv = F.resized_crop(kp, top, left, h, w, [H, W]).as_subclass(torch.Tensor) - 0.5
        ferlib = crop_points(LM5[None], boxes[i : i + 1], H, W)[0]
        torch.testing.assert_close(ferlib, tv, atol=1e-4, rtol=0)


@pytest.mark.parametrize("batched", [True, False])
def test_a_painted_landmark_moves_with_the_pixels_under_crop_rotation_and_zoom(batched):
    point = torch.tensor([24.0, 20.0])
    n = 40
    batch = {"image": _dot_images(n, point), "landmarks5": point.expand(n, 5, 2).clone(), "label": torch.arange(n)}
    aug = LandmarkAugment(
        flip=True,
        translate=0.05,
        rotate=15.0,
        scale=(0.9, 1.1),
        color_jitter=None,
        crop_area=(0.15, 0.6),  # small crops enlarge ~2×: a half-pixel convention error would show as ~1 px
        seed=3,
        batched=batched,
    )
    out = aug(batch)
    checked = 0
    for i in range(n):
        lx, ly = out["landmarks5"][i, 0].tolist()
        if not (3 < lx < W - 4 and 3 < ly < H - 4):  # the dot left the frame or touches its edge
            continue
        x, y = _centroid(out["image"][i])
        assert math.hypot(x - lx, y - ly) < 0.3, (i, (x, y), (lx, ly))
        checked += 1
    assert checked >= 20


def test_crop_keeps_nan_landmarks_nan():
    points = LM5.clone()
    points[2] = math.nan
    moved = crop_points(points[None], torch.tensor([[3, 4, 20, 30]]), H, W)[0]
    assert torch.isnan(moved[2]).all() and torch.isfinite(moved[[0, 1, 3, 4]]).all()


@pytest.mark.parametrize(
    "options",
    [
        {"crop_area": (0.08, 1.0)},
        {"crop_area": (0.3, 1.0), "rotate": 15.0, "scale": (0.9, 1.1), "translate": 0.09, "grayscale_p": 0.2},
        {"rotate": 15.0, "affine_p": 0.5},
        {"color_jitter": (0.3, 0.3, 0.3), "jitter_p": 0.5},
    ],
)
def test_batched_and_per_image_paths_agree(options):
    kw = {"color_jitter": None, **options}
    batch = _random_batch(8)
    a = LandmarkAugment(seed=5, batched=True, **kw)(batch)
    b = LandmarkAugment(seed=5, batched=False, **kw)(batch)
    assert int((a["image"].int() - b["image"].int()).abs().max()) <= 1
    torch.testing.assert_close(a["landmarks5"], b["landmarks5"], atol=1e-4, rtol=0)


# -- probabilities and grayscale -----------------------------------------------------------------------


@pytest.mark.parametrize("batched", [True, False])
def test_grayscale_matches_torchvision_on_the_chosen_samples(batched):
    batch = _random_batch(40)
    out = LandmarkAugment(flip=False, translate=0.0, color_jitter=None, grayscale_p=0.5, seed=1, batched=batched)(batch)
    grey = [bool((img[0] == img[1]).all() and (img[1] == img[2]).all()) for img in out["image"]]
    assert 8 < sum(grey) < 32  # about half
    for i, g in enumerate(grey):
        if g:
            ref = F.rgb_to_grayscale(batch["image"][i], num_output_channels=3)
            assert int((out["image"][i].int() - ref.int()).abs().max()) <= 1
        else:
            assert torch.equal(out["image"][i], batch["image"][i])
    assert torch.equal(out["landmarks5"], batch["landmarks5"])  # colour only
    everyone = grayscale_images(batch["image"], torch.ones(40, dtype=torch.bool))
    assert bool((everyone[:, 0] == everyone[:, 2]).all())


def test_affine_and_jitter_probabilities_leave_the_other_samples_alone():
    batch = _random_batch(60)
    aug = LandmarkAugment(flip=False, translate=0.1, rotate=10.0, color_jitter=None, affine_p=0.4, seed=2)
    params = aug.sample_params(60, H, W)
    moved = (params["angle"] != 0) | (params["tx"] != 0) | (params["ty"] != 0)
    assert 10 < int(moved.sum()) < 40
    out = aug.apply(batch, params)
    for i in range(60):
        same = torch.equal(out["landmarks5"][i], batch["landmarks5"][i])
        assert same != bool(moved[i])
    none = LandmarkAugment(flip=False, translate=0.1, rotate=10.0, color_jitter=None, affine_p=0.0, seed=2)(batch)
    assert torch.equal(none["image"], batch["image"]) and torch.equal(none["landmarks5"], batch["landmarks5"])
    jit = LandmarkAugment(flip=False, translate=0.0, color_jitter=(0.5, 0.5, 0.5), jitter_p=0.5, seed=2)
    p = jit.sample_params(60, H, W)
    untouched = (p["brightness"] == 1) & (p["contrast"] == 1) & (p["saturation"] == 1)
    assert 10 < int(untouched.sum()) < 50


def test_options_off_draw_exactly_what_the_augmentation_drew_before():
    """Seeded outputs of existing recipes stay: with the new options off, the same random numbers are drawn."""
    n = 9
    aug = LandmarkAugment(flip=True, translate=0.1, scale=(1.0, 1.15), color_jitter=(0.2, 0.2, 0.0), seed=11)
    params = aug.sample_params(n, H, W)
    g = torch.Generator().manual_seed(11)  # the draws of the first release, in their order
    flip = torch.rand(n, generator=g) < 0.5
    tx = torch.round(torch.rand(n, generator=g) * (0.2 * W) - 0.1 * W)
    ty = torch.round(torch.rand(n, generator=g) * (0.2 * H) - 0.1 * H)
    scale = torch.rand(n, generator=g) * 0.15 + 1.0
    brightness = torch.rand(n, generator=g) * 0.4 + 0.8
    contrast = torch.rand(n, generator=g) * 0.4 + 0.8
    assert torch.equal(params["flip"], flip) and torch.equal(params["tx"], tx) and torch.equal(params["ty"], ty)
    torch.testing.assert_close(params["scale"], scale)
    torch.testing.assert_close(params["brightness"], brightness)
    torch.testing.assert_close(params["contrast"], contrast)
    assert set(params) == {"flip", "angle", "tx", "ty", "scale", "brightness", "contrast", "saturation"}
    assert torch.equal(aug.generator.get_state(), g.get_state())  # nothing else was drawn


def test_invalid_options_are_refused():
    with pytest.raises(ValueError, match="grayscale_p"):
        LandmarkAugment(grayscale_p=1.5)
    with pytest.raises(ValueError, match="crop_area"):
        LandmarkAugment(crop_area=(0.5, 1.2))
    with pytest.raises(ValueError, match="augment.affine_p"):
        Augment(affine_p=-0.1)


# -- recipes: presets, and nothing changes unless a recipe opts in ----------------------------------------


@pytest.mark.parametrize("name", list_recipes())
def test_shipped_recipes_keep_their_augmentation_unless_they_opt_in(name):
    recipe = load_recipe(name)
    assert recipe.augment_preset == ""
    a = recipe.augment
    assert (a.rotate, a.affine_p, a.jitter_p, a.grayscale_p, a.crop_area) == (0.0, 1.0, 1.0, 0.0, None)
    aug = build_augment(recipe, True)
    if aug is not None:
        assert (aug.rotate, aug.affine_p, aug.grayscale_p, aug.crop_area) == (0.0, 1.0, 0.0, None)


def test_public_presets_match_the_public_code():
    ma = load_recipe("ma-net", augment_preset="public")  # RandomResizedCrop(224) + flip
    assert ma.augment_preset == "public"
    a = ma.augment
    assert a.hflip and a.crop_area == (0.08, 1.0) and a.crop_ratio == pytest.approx((3 / 4, 4 / 3))
    assert (a.translate, a.rotate, a.scale_min, a.scale_max, a.grayscale_p) == (0.0, 0.0, 1.0, 1.0, 0.0)
    amp = load_recipe("amp-net", augment_preset="public").augment  # + rotation, scale, ±20 px, grayscale 0.2
    assert amp.hflip and amp.crop_area == (0.08, 1.0)
    assert (amp.rotate, amp.scale_min, amp.scale_max, amp.grayscale_p) == (15.0, 0.9, 1.1, 0.2)
    assert round(amp.translate * 224) == 20
    aug = build_augment(load_recipe("amp-net", augment_preset="public"), True)
    assert (aug.rotate, aug.scale, aug.grayscale_p, aug.crop_area) == (15.0, (0.9, 1.1), 0.2, (0.08, 1.0))


def test_paper_presets_match_the_text():
    # MA-Net and AMP-Net: the default block is the paper's list (magnitudes ferlib's choice)
    for name in ("ma-net", "amp-net"):
        assert load_recipe(name, augment_preset="paper").augment == load_recipe(name).augment
    # MAN, LAN, FFRA-Net: their texts state no augmentation
    for name in ("man", "lan", "ffra-net"):
        a = load_recipe(name, augment_preset="paper").augment
        assert a == Augment(hflip=False)
        assert build_augment(load_recipe(name, augment_preset="paper"), True) is None


def test_dataset_overrides_apply_on_top_of_a_preset_and_unknown_presets_are_refused():
    fer = load_recipe("amp-net", dataset="fer2013", augment_preset="public").augment
    assert fer.rotate == 15.0 and (fer.brightness, fer.contrast, fer.saturation) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="no augmentation preset 'fancy'.*paper, public"):
        load_recipe("ma-net", augment_preset="fancy")


def test_a_recipe_yaml_selects_its_preset(tmp_path):
    from importlib import resources

    import yaml

    path = tmp_path / "mine.yaml"
    data = yaml.safe_load((resources.files("ferlib") / "recipes" / "ma-net.yaml").read_text())
    data["augment_preset"] = "public"
    path.write_text(yaml.safe_dump(data))
    r = load_recipe(str(path))
    assert r.augment_preset == "public" and r.augment.crop_area == (0.08, 1.0)
    assert np.isclose(load_recipe(str(path), augment_preset="paper").augment.scale_max, 1.15)
