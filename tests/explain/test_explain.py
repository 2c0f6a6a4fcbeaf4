"""ferlib.explain: CAM mass on an occluder, AP-patch placement, pytorch-grad-cam through the landmark wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def test_occluder_cam_mass_by_hand():
    from ferlib.explain import occluder_cam_mass

    cam = np.zeros((4, 4))
    cam[0, 0], cam[3, 3] = 3.0, 1.0
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True  # a quarter of the image, holding 3 of the 4 units of mass
    out = occluder_cam_mass(cam, mask)
    assert out["mass"] == pytest.approx(0.75) and out["area"] == pytest.approx(0.25)
    assert out["ratio"] == pytest.approx(3.0)
    assert np.isnan(occluder_cam_mass(np.zeros((4, 4)), mask)["mass"])
    with pytest.raises(ValueError, match="same H×W"):
        occluder_cam_mass(cam, np.zeros((3, 3), bool))


def test_paste_patch_cam_places_the_map_in_its_box():
    from ferlib.explain import paste_patch_cam

    out = paste_patch_cam(np.ones((224, 224), np.float32), (40, 80, 120, 160), 224)
    assert out[80:160, 40:120].min() == pytest.approx(1.0)
    assert out.sum() == pytest.approx(80 * 80)
    assert paste_patch_cam(np.ones((8, 8)), (np.nan, 0, 1, 1), 32).sum() == 0


def test_compute_cams_through_landmark_wrapper_for_every_cam_target():
    """pytorch-grad-cam on a model that needs landmarks (AMP-Net*), per branch, AP maps pasted."""
    from ferlib.explain import LogitsOnly, branch_cams, compute_cams
    from ferlib.models import create_model

    torch.manual_seed(0)
    model = create_model("amp-net-r18").eval()
    images = torch.randn(1, 3, 224, 224)
    lm5 = torch.tensor([[[80.0, 96], [144, 96], [112, 124], [88, 160], [136, 160]]])
    with pytest.raises(ValueError, match="one image at a time"):
        LogitsOnly(model, lm5.expand(2, 5, 2))(torch.randn(3, 3, 224, 224))
    assert {"gp", "lp", "ap_eye1"} <= set(model.cam_targets())
    cams = branch_cams(
        model, images, {"landmarks5": lm5, "label": torch.tensor([0])}, classes=[0], branches=["ap_eye1"]
    )
    assert set(cams) == {"ap_eye1"}
    stack = cams["ap_eye1"]
    assert stack.shape == (1, 224, 224) and stack.min() >= 0 and stack.max() <= 1 + 1e-6
    # the AP map lives only inside eye1's patch: grid centre (10, 12), L = 10 → columns 5..15
    assert stack[:, :, : 5 * 8].sum() == 0 and stack[:, :, 15 * 8 :].sum() == 0
    assert stack.sum() > 0
    plain = create_model("resnet18").eval()
    a = compute_cams(plain, images[:1], plain.cam_targets()["layer4"], classes=[0])
    b = compute_cams(plain, images[:1], plain.cam_targets()["layer4"], classes=[3])
    assert a.shape == (1, 224, 224) and not np.allclose(a, b)  # the explained class matters


def test_every_cam_target_of_every_model_outputs_one_tensor():
    """pytorch-grad-cam hooks a target's output as one tensor; a target returning a tuple (MAN's MA block returns
    (F, q)) breaks it, as notebook 06's lecture run found. One forward per model, hooks on every target; then a
    real CAM of MAN's ``ma_block`` target."""
    from ferlib.explain import branch_cams
    from ferlib.models import create_model, list_models, model_inputs

    lm5 = torch.tensor([[[80.0, 96], [144, 96], [112, 124], [88, 160], [136, 160]]])
    batch = {"landmarks5": lm5, "label": torch.tensor([0])}
    images = torch.randn(1, 3, 224, 224)
    for name in list_models():
        torch.manual_seed(0)
        model = create_model(name).eval()
        seen = {}
        for target, module in model.cam_targets().items():
            module.register_forward_hook(lambda m, i, o, target=target, seen=seen: seen.setdefault(target, o))
        with torch.no_grad():
            model(images, **model_inputs(model, batch))
        assert set(seen) == set(model.cam_targets()), name
        assert all(isinstance(o, torch.Tensor) for o in seen.values()), (name, {k: type(o) for k, o in seen.items()})
    man = create_model("man").eval()
    cams = branch_cams(man, images, batch, classes=[0], branches=["ma_block"])
    assert cams["ma_block"].shape == (1, 224, 224) and np.isfinite(cams["ma_block"]).all()


def test_mass_on_mask_by_hand():
    from ferlib.explain import mass_on_mask

    maps = np.zeros((3, 4, 4))
    maps[0, 0, 0], maps[0, 3, 3] = 3.0, 1.0  # 3 of 4 units inside the top-left quarter
    maps[1, 3, 3] = 2.0  # nothing inside
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    share = mass_on_mask(maps, mask)
    assert share[0] == pytest.approx(0.75) and share[1] == pytest.approx(0.0)
    assert np.isnan(share[2])  # an empty map has no share
    assert float(mass_on_mask(maps[0], mask)) == pytest.approx(0.75)
    per_face = np.zeros((3, 4, 4), bool)
    per_face[1, 3, 3] = True  # one mask per map
    assert mass_on_mask(maps, per_face)[:2] == pytest.approx([0.0, 1.0])
    with pytest.raises(ValueError, match="must be H×W"):
        mass_on_mask(maps, np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="non-negative"):
        mass_on_mask(-maps, mask)


def test_an_empty_cam_stays_empty_instead_of_rescaled_noise():
    from ferlib.explain import compute_cams
    from ferlib.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet18").eval()
    images = torch.randn(2, 3, 64, 64)
    assert compute_cams(model, images, model.layer4, classes=[0, 1]).max(axis=(1, 2)) == pytest.approx(1.0, abs=1e-5)
    with torch.no_grad():
        model.fc.weight.zero_()  # no gradient reaches layer4: nothing to explain
    assert compute_cams(model, images, model.layer4, classes=[0, 1]).max() == 0.0
