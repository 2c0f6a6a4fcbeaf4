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


def test_control_without_attention_branch_is_resnet18_gap_fc():
    torch.manual_seed(0)
    model = create_model("lan", attention=False).eval()
    assert model.lan_module is None and "lan_module" not in model.parts()
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        out = model(images)
        f_map = model.backbone(images)
    assert "attention_map" not in out.aux
    torch.testing.assert_close(out.logits, model.fc(f_map.mean(dim=(2, 3))))
    batch = {"label": torch.tensor([0, 1]), "guidance": torch.ones(2, 7, 7)}
    torch.testing.assert_close(model.loss(out, batch), nn.functional.cross_entropy(out.logits, batch["label"]))
    n_full = sum(p.numel() for p in create_model("lan").parameters())
    n_lan_module = sum(p.numel() for p in create_model("lan").lan_module.parameters())
    assert sum(p.numel() for p in model.parameters()) == n_full - n_lan_module
    with pytest.raises(ValueError, match="attention=False"):
        create_model("lan", attention=False, fusion="concat")


def test_control_recipes_build_their_variants():
    from ferlib.train.recipes import load_recipe

    a0 = load_recipe("lan-alpha0")
    assert (a0.model, a0.model_kwargs["alpha"], a0.guidance_warmup_epochs) == ("lan", 0.0, None)
    assert create_model("lan", **a0.model_kwargs).alpha == 0.0
    plain = load_recipe("lan-no-attention")
    assert create_model("lan", **plain.model_kwargs).lan_module is None
    lan = load_recipe("lan")
    for control in (a0, plain):  # like for like: only the model keywords differ
        assert (control.lr, control.batch_size, control.epochs, control.schedule) == (
            lan.lr,
            lan.batch_size,
            lan.epochs,
            lan.schedule,
        )


def test_guidance_is_fitted_on_the_loaded_backbone_when_init_is_given():
    """lan.txt §III-C/§IV-B clusters the pre-trained backbone: no warm-up with --init."""
    from types import SimpleNamespace

    from ferlib.train.loop import _guidance_warmup

    def run(warmup, init):
        return SimpleNamespace(recipe=SimpleNamespace(guidance_warmup_epochs=warmup), cfg=SimpleNamespace(init=init))

    assert _guidance_warmup(run(5, None)) == 5
    assert _guidance_warmup(run(5, "ms_celeb_resnet18.pth")) == 0
    assert _guidance_warmup(run(None, "ms_celeb_resnet18.pth")) is None  # the controls make no guidance


def test_attentive_share_per_position_by_hand():
    import numpy as np

    from ferlib.train.guidance import TrainingGuidance, attentive_share_summary

    counts = np.zeros((7, 7, 2), np.int64)
    counts[..., 0], counts[..., 1] = 10, 30
    counts[3, 4] = (20, 20)
    summary = attentive_share_summary(counts)
    assert summary["n_samples"] == 40
    assert np.array(summary["attentive_share"]).shape == (7, 7)
    assert summary["attentive_share"][0][0] == 0.25 and summary["attentive_share"][3][4] == 0.5
    assert (summary["attentive_share_min"], summary["attentive_share_max"]) == (0.25, 0.5)
    assert summary["attentive_share_mean"] == pytest.approx((48 * 0.25 + 0.5) / 49, abs=1e-4)
    assert TrainingGuidance().summary() == {}  # nothing fitted (or restored from a checkpoint)
