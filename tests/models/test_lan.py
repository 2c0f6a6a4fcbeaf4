"""LAN (lan.txt §III): fusion variants and the Eq. 5 loss; the K-means guidance maps (§III-C) are
tested with their module in tests/train/test_train_guidance.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from ferlib.models import ModelOutput, create_model, get_card


def test_shapes_at_224_for_every_fusion():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 224, 224)
    for fusion, fc_in in (("add", 512), ("concat", 1024), ("average", 512)):
        model = create_model("lan", fusion=fusion).eval()
        out = model(images)
        assert out.logits.shape == (2, 7)
        assert out.aux["attention_map"].shape == (2, 7, 7)
        assert out.aux["features"].shape == (2, 512, 7, 7)
        assert ((out.aux["attention_map"] > 0) & (out.aux["attention_map"] < 1)).all()
        assert model.fc.in_features == fc_in


def test_fusion_follows_eqs_1_2_and_table6():
    torch.manual_seed(1)
    images = torch.randn(2, 3, 64, 64)
    for fusion in ("add", "concat", "average"):
        model = create_model("lan", fusion=fusion).eval()
        out = model(images)
        f_o_map = out.aux["features"]
        f_a_map = f_o_map * out.aux["attention_map"][:, None]  # Eq. 1
        f_o, f_a = f_o_map.mean(dim=(2, 3)), f_a_map.mean(dim=(2, 3))
        f = {"add": f_o + f_a, "concat": torch.cat([f_o, f_a], 1), "average": (f_o + f_a) / 2}[fusion]
        torch.testing.assert_close(out.logits, model.fc(f))


def test_lan_module_is_four_3x3_convs_then_sigmoid():
    model = create_model("lan")
    convs = [m for m in model.lan_module.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(3, 3)] * 4
    assert [c.out_channels for c in convs] == [256, 128, 64, 1]


def test_loss_is_ce_plus_alpha_bce_by_hand():
    torch.manual_seed(2)
    logits = torch.randn(2, 7)
    attention = torch.rand(2, 7, 7) * 0.98 + 0.01
    guidance = (torch.rand(2, 7, 7) > 0.7).float()
    labels = torch.tensor([1, 5])
    output = ModelOutput(logits=logits, aux={"attention_map": attention})
    ce = -torch.log_softmax(logits, 1)[torch.arange(2), labels].mean()
    bce = -(guidance * attention.log() + (1 - guidance) * (1 - attention).log()).mean()
    for alpha in (0.5, 0.25):
        model = create_model("lan", alpha=alpha)
        got = model.loss(output, {"label": labels, "guidance": guidance})
        torch.testing.assert_close(got, ce + alpha * bce)
    # without guidance maps (warm-up) the loss is the cross-entropy alone
    torch.testing.assert_close(model.loss(output, {"label": labels}), ce)
    with pytest.raises(ValueError, match="guidance"):
        model.loss(output, {"label": labels, "guidance": guidance[:, :6]})


def test_every_parameter_gets_a_gradient_with_guidance():
    torch.manual_seed(3)
    model = create_model("lan")
    out = model(torch.randn(2, 3, 112, 112))
    batch = {"label": torch.tensor([0, 3]), "guidance": (torch.rand(2, 4, 4) > 0.5).float()}
    model.loss(out, batch).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert get_card("lan").claims.ferlib_params_7cls == sum(p.numel() for p in model.parameters())
