"""MA-Net (ma-net.txt §III): fidelity counts, region geometry, Eqs. 1-3 and 6, ablation variants."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from ferlib.models import create_model
from ferlib.models.complexity import count_parameters, model_complexity
from ferlib.models.ma_net import LocalAttentionModule, MANet, MultiScaleBlock, ma_net_regions


# -- fidelity with the paper / public code -----------------------------------------------------
def test_parameter_count_matches_public_model_exactly():
    model = create_model("ma-net", num_classes=7)
    assert count_parameters(model) == 50_547_214
    parts = {k: count_parameters(v) for k, v in model.parts().items()}
    assert set(parts) == {"pre_extractor", "local", "global"}
    assert sum(parts.values()) == 50_547_214
    for part, claim in {"pre_extractor": 0.68e6, "local": 42.31e6, "global": 7.55e6}.items():
        assert abs(parts[part] - claim) < 0.006e6, (part, parts[part])


@pytest.fixture(scope="module")
def ma_net_profile() -> dict:
    return model_complexity("ma-net")


def test_gmacs_match_paper(ma_net_profile):
    prof = ma_net_profile
    assert abs(prof["gmacs"]["total"] - 3.65) <= 0.02
    for part, claim in {"pre_extractor": 0.99, "local": 2.06, "global": 0.59}.items():
        assert abs(prof["gmacs"][part] - claim) <= 0.01, (part, prof["gmacs"][part])
    assert prof["params"]["total"] == prof["claims"]["ferlib_params_7cls"] == 50_547_214
    assert prof["claims"]["params"]["total"] == 50.54e6  # the paper's "50.54 M" (§IV-B)
    assert "other" not in prof["params"]  # the three parts cover the whole model


# -- region strategies (Fig. 5, Table III) -----------------------------------------------------
@pytest.mark.parametrize(
    "split, overlap, expected",
    [
        (1, 0, [[0, 0, 28, 28]]),
        (2, 0, [[0, 0, 14, 14], [14, 0, 28, 14], [0, 14, 14, 28], [14, 14, 28, 28]]),
        (2, 6, [[0, 0, 17, 17], [11, 0, 28, 17], [0, 11, 17, 28], [11, 11, 28, 28]]),
        (3, 1, [[x, y, x + 10, y + 10] for y in (0, 9, 18) for x in (0, 9, 18)]),
        (3, 7, [[x, y, x + 14, y + 14] for y in (0, 7, 14) for x in (0, 7, 14)]),
    ],
)
def test_region_boxes_table_iii(split, overlap, expected):
    boxes = ma_net_regions(28, split, overlap)
    assert boxes.dtype == torch.int64
    assert boxes.tolist() == expected
    # neighbours share exactly `overlap` cells and the regions cover the map
    if split > 1:
        assert (boxes[0, 2] - boxes[1, 0]).item() == overlap
    assert boxes[:, 2].max().item() == 28 and boxes[:, 0].min().item() == 0


@pytest.mark.parametrize("split, overlap", [(2, 1), (3, 0), (1, 2), (0, 0)])
def test_region_boxes_reject_uneven_strategies(split, overlap):
    with pytest.raises(ValueError):
        ma_net_regions(28, split, overlap)


def test_local_module_applies_each_region_network_and_tiles_row_major():
    torch.manual_seed(0)
    module = LocalAttentionModule(split=2, overlap=0).eval()
    s = torch.randn(1, 128, 28, 28)
    with torch.no_grad():
        tiled = module(s)
        assert tiled.shape == (1, 512, 14, 14)
        # region 1 is the top-right 14×14 cut; its 7×7 output sits top-right in the tiling
        top_right = module.regions[1](s[:, :, 0:14, 14:28])
        bottom_left = module.regions[2](s[:, :, 14:28, 0:14])
    torch.testing.assert_close(tiled[:, :, 0:7, 7:14], top_right)
    torch.testing.assert_close(tiled[:, :, 7:14, 0:7], bottom_left)


# -- multi-scale block, Eqs. 1-3 ------------------------------------------------------------------
def _identity_conv1_block(symmetric: bool) -> MultiScaleBlock:
    """A block whose first 3×3 conv is the identity, so X_i are the input's channel groups."""
    block = MultiScaleBlock(8, 8, stride=1, scales=4, symmetric=symmetric).eval()
    with torch.no_grad():
        block.conv1.weight.zero_()
        for c in range(8):
            block.conv1.weight[c, c, 1, 1] = 1.0
    return block


def _changed_groups(block: MultiScaleBlock, group: int) -> list[int]:
    torch.manual_seed(1)
    x = torch.rand(1, 8, 6, 6) + 0.5  # positive: the ReLU after conv1 passes X through
    bumped = x.clone()
    bumped[:, 2 * group : 2 * group + 2] += 0.7
    with torch.no_grad():
        diff = (block(bumped) - block(x)).abs().reshape(4, -1).amax(dim=1)
    return [g for g in range(4) if diff[g] > 1e-6]


def test_left_cascade_reaches_later_subsets_only():
    """Eq. 1: Y_i^left sees X_j for j ≤ i. With P^right zeroed, a change in X_1 reaches every
    output group, while a change in X_4 reaches only group 4."""
    block = _identity_conv1_block(symmetric=True)
    with torch.no_grad():
        for p in block.right.parameters():
            p.zero_()
    assert _changed_groups(block, 0) == [0, 1, 2, 3]
    assert _changed_groups(block, 3) == [3]


def test_right_cascade_reaches_earlier_subsets_only():
    """Eq. 2: Y_i^right sees X_j for j ≥ i (mirror image of Eq. 1)."""
    block = _identity_conv1_block(symmetric=True)
    with torch.no_grad():
        for p in block.left.parameters():
            p.zero_()
    assert _changed_groups(block, 0) == [0]
    assert _changed_groups(block, 3) == [0, 1, 2, 3]


def test_symmetric_output_is_sum_of_both_cascades():
    """Eq. 3: Y_i = Y_i^left + Y_i^right, so every subset reaches every output group."""
    block = _identity_conv1_block(symmetric=True)
    assert _changed_groups(block, 0) == [0, 1, 2, 3]
    assert _changed_groups(block, 3) == [0, 1, 2, 3]


def test_res2net_variant_is_one_directional_with_identity_first_subset():
    block = _identity_conv1_block(symmetric=False)
    assert block.right is None and len(block.left) == 3
    assert _changed_groups(block, 1) == [1, 2, 3]
    assert _changed_groups(block, 3) == [3]


# -- fusion and loss (Eqs. 5-6, Table IV) ------------------------------------------------------------
def test_decision_fusion_and_eq6_loss_by_hand():
    torch.manual_seed(0)
    model = create_model("ma-net").eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 224, 224))
    local, glob = out.branch_logits["local"], out.branch_logits["global"]
    torch.testing.assert_close(out.logits, 0.6 * local + 0.4 * glob)
    labels = torch.tensor([3, 0])

    def ce(z):  # Eq. 5 written out
        return -(z.log_softmax(dim=1)[torch.arange(2), labels]).mean()

    expected = 0.6 * ce(local) + 0.4 * ce(glob)
    torch.testing.assert_close(model.loss(out, {"label": labels}), expected)
    # λ is a variant
    model.lam = 0.1
    torch.testing.assert_close(model.loss(out, {"label": labels}), 0.1 * ce(local) + 0.9 * ce(glob))


def test_feature_level_fusion_has_one_classifier():
    model = create_model("ma-net", fusion="feature").eval()
    assert model.local_branch.head is None and model.global_branch.head is None
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    assert out.branch_logits == {} and out.logits.shape == (1, 7)
    label = torch.tensor([2])
    torch.testing.assert_close(model.loss(out, {"label": label}), F.cross_entropy(out.logits, label))


# -- variants of Tables I-IV ------------------------------------------------------------------------
VARIANTS = {
    "one-branch baseline (ResNet-18)": (dict(global_branch="lts", local_branch=None), {"global"}, None),
    "one-branch + Res2Net multi-scale": (dict(global_branch="res2net", local_branch=None), {"global"}, None),
    "one-branch + symmetric multi-scale": (dict(global_branch="symmetric", local_branch=None), {"global"}, None),
    "one-branch + local feature": (dict(global_branch=None, local_branch="feature"), {"local"}, 14),
    "one-branch + local attention": (dict(global_branch=None, local_branch="attention"), {"local"}, 14),
    "two-branch LTS+LTS": (dict(global_branch="lts", local_branch="lts"), {"local", "global"}, 7),
    "two-branch LTS+MS": (dict(global_branch="symmetric", local_branch="lts"), {"local", "global"}, 7),
    "two-branch LTS+LA": (dict(global_branch="lts", local_branch="attention"), {"local", "global"}, 14),
    "regions 1x1": (dict(split=1), {"local", "global"}, 14),
    "regions 2x2 overlap 6": (dict(split=2, overlap=6), {"local", "global"}, 18),
    "regions 3x3 overlap 1": (dict(split=3, overlap=1), {"local", "global"}, 15),
    "regions 3x3 overlap 7": (dict(split=3, overlap=7), {"local", "global"}, 21),
}


@pytest.mark.parametrize("label", list(VARIANTS))
def test_variant_shapes_at_224(label):
    variant, branches, local_side = VARIANTS[label]
    model = create_model("ma-net", num_classes=8, **variant).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    assert out.logits.shape == (1, 8)
    assert set(out.branch_logits) == branches
    assert set(model.parts()) == {"pre_extractor", *branches}
    if local_side is not None:
        assert out.aux["local_features"].shape == (1, 512, local_side, local_side)
    if "global" in branches:
        assert out.aux["global_features"].shape == (1, 512, 7, 7)
    if isinstance(getattr(model.local_branch, "features", None), LocalAttentionModule):
        split = variant.get("split", 2)
        boxes = ma_net_regions(28, split, variant.get("overlap", 0)).float() * 8
        torch.testing.assert_close(out.aux["region_boxes"][0], boxes)


def test_local_feature_variant_drops_only_cbam():
    full = count_parameters(create_model("ma-net", global_branch=None, local_branch="attention"))
    plain = create_model("ma-net", global_branch=None, local_branch="feature")
    assert not any("cbam" in n for n, _ in plain.named_parameters())
    cbam_per_region = 2 * (2 * 256 * 16 + 16 + 256 + 98 + 2) + 2 * (2 * 512 * 32 + 32 + 512 + 98 + 2)
    assert full - count_parameters(plain) == 4 * cbam_per_region


def test_one_branch_baseline_is_resnet18_layout():
    model = create_model("ma-net", global_branch="lts", local_branch=None)
    import torchvision

    # ResNet-18 minus its 1000-way FC, plus a 7-way head
    tv = count_parameters(torchvision.models.resnet18(weights=None)) - (512 * 1000 + 1000)
    assert count_parameters(model) == tv + 512 * 7 + 7


def test_cam_targets_name_the_branch_maps():
    model = create_model("ma-net").eval()
    targets = model.cam_targets()
    assert set(targets) == {"multi_scale", "local"}
    seen = {}
    hooks = [
        layer.register_forward_hook(lambda m, i, o, k=k: seen.__setitem__(k, o.shape)) for k, layer in targets.items()
    ]
    with torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    assert seen == {"multi_scale": (1, 512, 7, 7), "local": (1, 512, 14, 14)}


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(global_branch="bogus"),
        dict(local_branch="cbam"),
        dict(global_branch=None, local_branch=None),
        dict(fusion="feature", local_branch=None),
        dict(fusion="late"),
        dict(lam=1.5),
        dict(split=3, overlap=0),
    ],
)
def test_invalid_variants_raise(kwargs):
    with pytest.raises(ValueError):
        MANet(7, **kwargs)


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError):
        create_model("ma-net", regions=4)


# -- `ferlib models` --------------------------------------------------------------------------------
def test_models_command_json_lists_measured_and_claimed(capsys):
    from ferlib.cli import main

    assert main(["models", "--json", "ma-net"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["name"] == "ma-net"
    assert entry["params"]["total"] == 50_547_214
    assert set(entry["gmacs"]) == {"total", "pre_extractor", "local", "global"}
    assert entry["claims"]["gmacs"]["total"] == 3.65  # the paper's "3.65 G FLOPs"
    assert main(["models", "no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_models_command_table_lines_up_claims(ma_net_profile):
    from ferlib.commands.models import format_table

    table = format_table([ma_net_profile])
    local_row = next(line for line in table.splitlines() if line.split()[:1] == ["local"])
    # measured params (M), paper (not per part), reference (M), measured GMACs, paper, reference GMACs
    assert local_row.split()[1:] == ["42.31", "-", "42.31", "2.056", "-", "2.06"]


@pytest.mark.parametrize("kwargs", [{}, {"global_branch": "res2net", "local_branch": "feature"}])
def test_branch_convolutions_use_kaiming_fan_out_like_the_public_code(kwargs):
    """PyTorch's default gives 1/√(3·fan_in): 0.58× (width-doubling convs) or 0.41× of Kaiming fan-out."""
    torch.manual_seed(0)
    model = create_model("ma-net", **kwargs)
    checked = 0
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d) and "branch" in name and m.weight.numel() >= 20_000:
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            ratio = float(m.weight.detach().std()) / (2.0 / fan_out) ** 0.5
            assert 0.95 < ratio < 1.05, (name, ratio)
            assert abs(float(m.weight.detach().mean())) < 0.05 * (2.0 / fan_out) ** 0.5 * 10, name  # normal, centred
            checked += 1
        if isinstance(m, torch.nn.BatchNorm2d) and "branch" in name:
            assert torch.equal(m.weight, torch.ones_like(m.weight)) and torch.equal(m.bias, torch.zeros_like(m.bias))
    assert checked > 20
