"""Multiple Attention Network (man.txt): Table 2 / Eq. 4 masks, Eqs. 2–3 loss, MA block, stages."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ferlib.data.schema import LANDMARK5_FLIP_PERM, LANDMARK8_FLIP_PERM
from ferlib.models import ModelOutput, create_model, get_card
from ferlib.models.man import MASK_PRIOR_EPS, MABlock, RASnet, _xavier_init, rasnet_feature_side
from ferlib.models.man_masks import (
    BELOW_MOUTH_FRACTION,
    EYE_HALF_WIDTH,
    REGION_SIZES_EYES_LANDSCAPE,
    ground_truth_masks,
    landmarks5_to_8,
    region_boxes,
)

# A frontal face on a 224×224 image: l1 nose, l2/l3 image-left eye outer/inner, l4/l5 image-right
# eye inner/outer, l6/l7 mouth corners, l8 below the mouth.
LM8 = torch.tensor(
    [
        [
            [112.0, 130.0],
            [60.0, 96.0],
            [92.0, 96.0],
            [132.0, 96.0],
            [164.0, 96.0],
            [80.0, 170.0],
            [144.0, 170.0],
            [112.0, 200.0],
        ]
    ]
)

# Expected masks worked out by hand from Table 2 and Eq. 4 with λ = 1/16 (inclusive bounds):
#   region            centre       (w, h) px          λ·x-range        λ·y-range        cols  rows
#   whole image       (112, 112)   (224, 224)         [0, 14]          [0, 14]          0-13  0-13
#   eyes with brows   (112, 96)    (80.64, 161.28)    [4.48, 9.52]     [0.96, 11.04]    5-9   1-11
#   mouth with nose   (112, 165)   (80.64, 120.96)    [4.48, 9.52]     [6.5325, 14.09]  5-9   7-13
#   left eye          (76, 96)     (60.48, 60.48)     [2.86, 6.64]     [4.11, 7.89]     3-6   5-7
#   right eye         (148, 96)    (60.48, 60.48)     [7.36, 11.14]    [4.11, 7.89]     8-11  5-7
#   nose              (112, 130)   (60.48, 60.48)     [5.11, 8.89]     [6.235, 10.015]  6-8   7-10
#   left mouth        (80, 170)    (60.48, 60.48)     [3.11, 6.89]     [8.735, 12.515]  4-6   9-12
#   right mouth       (144, 170)   (60.48, 60.48)     [7.11, 10.89]    [8.735, 12.515]  8-10  9-12
EXPECTED_RANGES = [  # (first col, last col, first row, last row), inclusive
    (0, 13, 0, 13),
    (5, 9, 1, 11),
    (5, 9, 7, 13),
    (3, 6, 5, 7),
    (8, 11, 5, 7),
    (6, 8, 7, 10),
    (4, 6, 9, 12),
    (8, 10, 9, 12),
]


def box_mask(c0: int, c1: int, r0: int, r1: int, size: int = 14) -> torch.Tensor:
    m = torch.zeros(size, size)
    m[r0 : r1 + 1, c0 : c1 + 1] = 1
    return m


@pytest.fixture(scope="module")
def man_model():
    torch.manual_seed(0)
    return create_model("man")


def test_ground_truth_masks_equal_table2_boxes_by_hand():
    masks = ground_truth_masks(LM8)
    assert masks.shape == (1, 8, 14, 14)
    for r, (c0, c1, r0, r1) in enumerate(EXPECTED_RANGES):
        assert torch.equal(masks[0, r], box_mask(c0, c1, r0, r1)), f"region {r}"


def test_region_boxes_centres_and_sizes():
    boxes = region_boxes(LM8)[0]
    torch.testing.assert_close(boxes[1], torch.tensor([112.0, 96.0, 0.36 * 224, 0.72 * 224]))
    torch.testing.assert_close(boxes[2], torch.tensor([112.0, 165.0, 0.36 * 224, 0.54 * 224]))
    torch.testing.assert_close(boxes[6], torch.tensor([80.0, 170.0, 0.27 * 224, 0.27 * 224]))


def test_eyes_landscape_variant_swaps_the_eye_box():
    masks = ground_truth_masks(LM8, region_sizes=REGION_SIZES_EYES_LANDSCAPE)
    # centre (112, 96), size (161.28, 80.64): λ·x ∈ [1.96, 12.04] → cols 2-12; λ·y ∈ [3.48, 8.52] → rows 4-8
    assert torch.equal(masks[0, 1], box_mask(2, 12, 4, 8))
    assert torch.equal(masks[0, 2], ground_truth_masks(LM8)[0, 2])


def test_masks_are_batched_and_per_sample():
    shifted = LM8 + torch.tensor([16.0, 0.0])  # one cell to the right
    masks = ground_truth_masks(torch.cat([LM8, shifted]))
    assert torch.equal(masks[0], ground_truth_masks(LM8)[0])
    # nose: λ·x ∈ [6.11, 9.89] → cols 7-9
    assert torch.equal(masks[1, 5], box_mask(7, 9, 7, 10))


def test_landmarks5_to_8_construction():
    lm5 = torch.tensor([[76.0, 96.0], [148.0, 96.0], [112.0, 130.0], [80.0, 170.0], [144.0, 170.0]])
    lm8 = landmarks5_to_8(lm5)
    d = 72.0 * EYE_HALF_WIDTH
    expected = torch.tensor(
        [
            [112.0, 130.0],
            [76.0 - d, 96.0],
            [76.0 + d, 96.0],
            [148.0 - d, 96.0],
            [148.0 + d, 96.0],
            [80.0, 170.0],
            [144.0, 170.0],
            [112.0, 170.0 + BELOW_MOUTH_FRACTION * 74.0],
        ]
    )
    torch.testing.assert_close(lm8, expected)


def test_landmarks5_to_8_commutes_with_horizontal_flip():
    torch.manual_seed(1)
    lm5 = torch.rand(4, 5, 2) * 200 + 10

    def flip(points, perm):
        out = points[:, list(perm)].clone()
        out[..., 0] = 223.0 - out[..., 0]
        return out

    torch.testing.assert_close(
        landmarks5_to_8(flip(lm5, LANDMARK5_FLIP_PERM)), flip(landmarks5_to_8(lm5), LANDMARK8_FLIP_PERM)
    )


def test_rasnet_arithmetic_at_224():
    assert rasnet_feature_side(224) == 2
    net = RASnet()
    assert net.fc1.in_features == 128 * 2 * 2
    assert net.fc2.out_features == 8 * 14 * 14
    masks = net(torch.randn(2, 3, 224, 224))
    assert masks.shape == (2, 8, 14, 14)
    assert ((masks > 0) & (masks < 1)).all()


def test_ma_block_matches_eqs_5_and_6_by_hand():
    torch.manual_seed(2)
    block = MABlock(channels=32, num_regions=8, feature_size=(4, 4), se_reduction=4, reduced_channels=8).eval()
    v = torch.randn(2, 32, 4, 4)
    masks = torch.rand(2, 8, 4, 4)
    fused, q = block(v, masks)
    torch.testing.assert_close(q.sum(1), torch.ones(2))
    expected = torch.zeros_like(v)
    for r, branch in enumerate(block.branches):
        t = F.conv2d(v * masks[:, r : r + 1], branch.buffer.weight, branch.buffer.bias)  # Eq. 5: ω₂(V⊗M_r)+b₂
        s = torch.sigmoid(branch.se.fc2(torch.relu(branch.se.fc1(t.mean(dim=(2, 3), keepdim=True)))))
        expected += q[:, r, None, None, None] * (t * s)  # Eq. 6
    torch.testing.assert_close(fused, expected)


def test_mask_loss_matches_eqs_2_3_by_hand(man_model):
    torch.manual_seed(3)
    predicted = torch.rand(3, 8, 14, 14)
    lm8 = torch.cat([LM8, LM8 + torch.tensor([16.0, 0.0]), torch.full((1, 8, 2), float("nan"))])
    output = ModelOutput(logits=torch.zeros(3, 7), aux={"masks": predicted})
    loss = man_model.mask_loss(output, {"landmarks8": lm8})
    target = ground_truth_masks(lm8[:2])
    per_sample = [((predicted[k] - target[k]) ** 2).sum() for k in range(2)]  # Eq. 2
    torch.testing.assert_close(loss, (per_sample[0] + per_sample[1]) / 2)  # Eq. 3, the NaN sample left out


def test_mask_loss_derives_points_from_landmarks5(man_model):
    predicted = torch.rand(1, 8, 14, 14)
    lm5 = torch.tensor([[[76.0, 96.0], [148.0, 96.0], [112.0, 130.0], [80.0, 170.0], [144.0, 170.0]]])
    output = ModelOutput(logits=torch.zeros(1, 7), aux={"masks": predicted})
    got = man_model.mask_loss(output, {"landmarks5": lm5})
    expected = ((predicted - ground_truth_masks(landmarks5_to_8(lm5))) ** 2).sum()
    torch.testing.assert_close(got, expected)


def test_mask_loss_without_landmarks_is_a_clear_error(man_model):
    output = ModelOutput(logits=torch.zeros(1, 7), aux={"masks": torch.rand(1, 8, 14, 14)})
    with pytest.raises(ValueError, match="landmarks8"):
        man_model.mask_loss(output, {"label": torch.tensor([0])})


def test_stages_freeze_exactly_their_subnet_and_train_it(man_model):
    model = man_model
    assert model.stages() == ("rasnet", "ersnet")
    rasnet_ids = {id(p) for p in model.rasnet.parameters()}
    all_params = list(model.parameters())
    images = torch.randn(1, 3, 224, 224)
    batch = {"label": torch.tensor([3]), "landmarks8": LM8}
    for stage in ("rasnet", "ersnet"):
        model.set_stage(stage)
        trainable = {id(p) for p in all_params if p.requires_grad}
        assert trainable == (rasnet_ids if stage == "rasnet" else {id(p) for p in all_params} - rasnet_ids)
        model.zero_grad(set_to_none=True)
        out = model(images)
        assert out.logits.shape == (1, 7)
        assert out.aux["masks"].shape == (1, 8, 14, 14)
        if stage == "ersnet":  # the RASnet stage does not run the ERSnet (no fusion weights)
            torch.testing.assert_close(out.aux["region_weights"].sum(1), torch.ones(1))
        loss = model.loss(out, batch)
        if stage == "rasnet":
            torch.testing.assert_close(loss, model.mask_loss(out, batch))
        else:
            torch.testing.assert_close(loss, F.cross_entropy(out.logits, batch["label"]))
        loss.backward()
        for p in all_params:
            if id(p) in trainable:
                assert p.grad is not None and torch.isfinite(p.grad).all()
            else:
                assert p.grad is None
    model.set_stage("joint")
    assert all(p.requires_grad for p in all_params)
    with pytest.raises(ValueError, match="stage"):
        model.set_stage("both")


def test_joint_loss_is_ce_plus_mask_loss(man_model):
    man_model.set_stage("joint")
    output = ModelOutput(logits=torch.randn(1, 7), aux={"masks": torch.rand(1, 8, 14, 14)})
    batch = {"label": torch.tensor([2]), "landmarks8": LM8}
    expected = F.cross_entropy(output.logits, batch["label"]) + man_model.mask_loss(output, batch)
    torch.testing.assert_close(man_model.loss(output, batch), expected)


def test_wrong_input_size_is_a_clear_error(man_model):
    with pytest.raises(ValueError, match="224"):
        man_model(torch.randn(1, 3, 112, 112))


def test_cam_targets_and_registered_parameter_count(man_model):
    targets = man_model.cam_targets()
    assert isinstance(targets["conv5_3"], torch.nn.ReLU)
    total = sum(p.numel() for p in man_model.parameters())
    assert get_card("man").claims.ferlib_params_7cls == total
    assert sum(sum(p.numel() for p in part.parameters()) for part in man_model.parts().values()) == total


def _ersnet_calls(model) -> list[str]:
    calls: list[str] = []
    for name in ("blocks1_4", "ma_block", "block5", "classifier"):
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: calls.append(name))
    return calls


def test_rasnet_stage_runs_no_ersnet_forward_in_training():
    torch.manual_seed(0)
    model = create_model("man", stage="rasnet")
    calls = _ersnet_calls(model)
    images = torch.randn(2, 3, 224, 224)
    model.train()
    out = model(images)
    assert calls == []  # set_stage contract: the stage computes only what its loss needs
    assert torch.equal(out.logits, torch.zeros(2, 7)) and not out.logits.requires_grad
    torch.testing.assert_close(out.aux["masks"], model.rasnet(images))
    model.loss(out, {"label": torch.tensor([0, 1]), "landmarks8": LM8.expand(2, -1, -1)}).backward()
    assert model.rasnet.fc2.weight.grad is not None
    model.eval()  # validation inside the stage: the mask loss needs only the masks too
    with torch.no_grad():
        model(images)
    assert calls == []
    for stage in ("ersnet", "joint"):
        model.set_stage(stage)
        with torch.no_grad():
            model(images)
        assert calls == ["blocks1_4", "ma_block", "block5", "classifier"]
        calls.clear()


def test_data_init_sets_rasnet_bias_to_the_logit_of_the_mean_mask():
    torch.manual_seed(0)
    model = create_model("man")
    shifted = LM8 + torch.tensor([6.0, -4.0])
    batches = [
        {"landmarks8": torch.cat([LM8, shifted]), "label": torch.tensor([0, 1])},
        {"landmarks8": torch.full((1, 8, 2), float("nan")), "label": torch.tensor([2])},  # left out
    ]
    summary = model.data_init(batches)
    mean = ground_truth_masks(torch.cat([LM8, shifted])).mean(0)
    prior = torch.sigmoid(model.rasnet.fc2.bias.reshape(8, 14, 14))
    torch.testing.assert_close(prior, mean.clamp(MASK_PRIOR_EPS, 1 - MASK_PRIOR_EPS), atol=1e-5, rtol=1e-5)
    assert summary["samples"] == 2 and summary["mean_mask_value"] == pytest.approx(float(mean.mean()), abs=1e-5)
    assert model.mask_prior is summary
    # the whole-face region is 1 everywhere, so its buffer's gain is 2·√8 / 0.99
    assert summary["buffer_gains"][0] == pytest.approx(2 * 8**0.5 / (1 - MASK_PRIOR_EPS), rel=1e-3)
    # no usable landmarks: nothing read into the model
    fresh = create_model("man")
    bias = fresh.rasnet.fc2.bias.clone()
    assert fresh.data_init([{"landmarks8": torch.full((1, 8, 2), float("nan"))}]) is None
    assert torch.equal(fresh.rasnet.fc2.bias, bias)


def test_ma_block_keeps_the_signal_scale_at_initialisation():
    """With plain Xavier buffers F ≈ 0.09 × V at initialisation (masks ≈ 0.5, SE gate 0.5, the mean
    of N independent branches); the buffers' gain brings it back to about 1× (1.02× in MAN on SynthFER)."""
    torch.manual_seed(4)
    block = MABlock(channels=256, num_regions=8, feature_size=(14, 14), se_reduction=16, reduced_channels=32)
    _xavier_init(block)
    v = torch.relu(torch.randn(4, 256, 14, 14))
    masks = 0.5 + 0.01 * torch.randn(4, 8, 14, 14)

    def ratio() -> float:
        with torch.no_grad():
            return float(block(v, masks)[0].pow(2).mean().sqrt() / v.pow(2).mean().sqrt())

    assert ratio() < 0.2
    block.match_scale(0.5)
    assert 0.6 < ratio() < 1.6
    block.match_scale(torch.full((8,), 0.5))  # relative to the current gain: no change
    assert 0.6 < ratio() < 1.6


def test_trainer_calls_data_init_once_and_records_it(tmp_path):
    """The trainer hands a fresh run's training batches to ``model.data_init`` (MAN's mean-mask
    prior) and writes what it returns to ``data_init.json`` and ``metrics.json``."""
    import json

    import torch.nn as nn

    from ferlib.models import FERModel, ModelOutput
    from ferlib.models.registry import register_model, unregister_model
    from ferlib.train import TrainConfig, train
    from test_train_helpers import ColourDataset

    seen: list[int] = []

    class Probe(FERModel):
        def __init__(self, num_classes: int = 7):
            super().__init__()
            self.fc = nn.Linear(3, num_classes)

        def forward(self, images, landmarks5=None, landmarks8=None):
            return ModelOutput(logits=self.fc(images.mean(dim=(2, 3))))

        def data_init(self, batches):
            n = sum(len(b["landmarks5"]) for b in batches)
            seen.append(n)
            return {"samples": n}

        def cam_targets(self):
            return {"fc": self.fc}

    register_model("test-data-init-probe")(Probe)
    try:
        cfg = TrainConfig(
            model="test-data-init-probe",
            recipe="baseline",
            profile="smoke",
            epochs=1,
            batch_size=8,
            val_fraction=0.25,
            run_dir=str(tmp_path / "run"),
            progress=False,
            tensorboard=False,
            device="cpu",
        )
        result = train(cfg, train_dataset=ColourDataset(40, 0), test_dataset=ColourDataset(8, 1))
    finally:
        unregister_model("test-data-init-probe")
    assert seen == [30]  # once, over the training part only (40 minus the 25 % validation split)
    assert json.loads((result.run_dir / "data_init.json").read_text()) == {"samples": 30}
    assert result.metrics["data_init"] == {"samples": 30}


def test_synthfer_override_raises_the_from_scratch_lr_for_man_and_its_control_only():
    """SynthFER has no VGG-Face start: man.yaml and man-vgg16.yaml train it at 1e-2, every other dataset at 1e-3."""
    from ferlib.train.config import TrainConfig, resolve_recipe
    from ferlib.train.recipes import apply_profile, load_profile, load_recipe

    for name in ("man", "man-vgg16"):
        assert load_recipe(name).lr == 1e-3  # man.txt §IV-B
        assert load_recipe(name, "rafdb").lr == 1e-3
        assert load_recipe(name, "synthfer").lr == 0.01
        assert load_recipe(name, "synthfer").batch_size == 42  # only the lr changes
        assert load_recipe(name, "synthfer").schedule == load_recipe(name).schedule
    default = load_profile("default")
    assert apply_profile(load_recipe("man", "synthfer"), default).lr == 0.01  # at the profile's cap, not above it
    recipe, _ = resolve_recipe(TrainConfig(model="man", dataset="synthfer", profile="default"))
    assert recipe.lr == 0.01 and [s.name for s in recipe.stages] == ["rasnet", "ersnet"]
    recipe, _ = resolve_recipe(TrainConfig(model="vgg16", recipe="man-vgg16", dataset="synthfer", profile="default"))
    assert recipe.lr == 0.01 and recipe.iterations == 100  # the default profile: about the others' 104 steps
