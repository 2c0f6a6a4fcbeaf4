"""FFRA-Net (ffra-net.txt §3): Eq. 1 cascade, Eq. 4 local cascade, Eq. 5 fusion, variants, loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ferlib.models import ModelOutput, create_model, get_card
from ferlib.models.ffra_net import FeatureFusion, LocalAttentionModule, MultiScaleModule


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"fusion": "add"},
        {"fusion": "concat"},
        {"multi_scale": False},
        {"local_attention": False},
        {"multi_scale": False, "local_attention": False},
        {"split": "layer2"},
    ],
    ids=["weighted", "add", "concat", "no-ms", "no-la", "baseline", "split-layer2"],
)
def test_shapes_at_224_for_every_variant(variant):
    torch.manual_seed(0)
    model = create_model("ffra-net", **variant).eval()
    captured = {}
    model.fusion.register_forward_hook(lambda m, i, o: captured.update(fused=o.shape))  # returns None
    out = model(torch.randn(1, 3, 224, 224))
    assert out.logits.shape == (1, 7)
    expected = (1, 128, 28, 28) if variant.get("split") == "layer2" else (1, 256, 14, 14)
    assert captured["fused"] == expected


def test_multi_scale_module_is_eq1_cascade():
    torch.manual_seed(1)
    module = MultiScaleModule(32, n=4).eval()
    x = torch.randn(2, 32, 6, 6)
    xs = x.chunk(4, dim=1)
    y1 = module.convs[0](xs[0])
    y2 = module.convs[1](xs[1] + y1)
    y3 = module.convs[2](xs[2] + y2)
    y4 = module.convs[3](xs[3] + y3)
    torch.testing.assert_close(module(x), torch.cat([y1, y2, y3, y4], dim=1))


def test_local_attention_module_is_eq4_cascade_on_quadrants():
    torch.manual_seed(2)
    module = LocalAttentionModule(32, grid=(2, 2), groups=8).eval()
    x = torch.randn(2, 32, 8, 8)
    s = module.conv(x)
    quads = [s[..., :4, :4], s[..., :4, 4:], s[..., 4:, :4], s[..., 4:, 4:]]
    y = []
    for k, (quad, part) in enumerate(zip(quads, module.parts)):
        y.append(part(quad if k == 0 else quad + y[-1]))
    out = module(x)
    torch.testing.assert_close(out[..., :4, :4], y[0])
    torch.testing.assert_close(out[..., :4, 4:], y[1])
    torch.testing.assert_close(out[..., 4:, :4], y[2])
    torch.testing.assert_close(out[..., 4:, 4:], y[3])
    with pytest.raises(ValueError, match="grid"):
        module(torch.randn(1, 32, 7, 7))


def test_fusion_eq5_and_table1_variants():
    torch.manual_seed(3)
    x, y_ms, y_la = (torch.randn(2, 16, 4, 4) for _ in range(3))
    torch.testing.assert_close(FeatureFusion(16, "weighted", 0.6)(x, y_ms, y_la), 0.6 * y_la + 0.4 * y_ms + x)
    torch.testing.assert_close(FeatureFusion(16, "weighted", 0.3)(x, y_ms, y_la), 0.3 * y_la + 0.7 * y_ms + x)
    torch.testing.assert_close(FeatureFusion(16, "add")(x, y_ms, y_la), y_la + y_ms + x)
    concat = FeatureFusion(16, "concat").eval()
    torch.testing.assert_close(concat(x, y_ms, y_la), concat.reduce(torch.cat([y_la, y_ms], 1)) + x)
    # Table 2 ablations: one module left → Y = Y_module + X; none → Y = X
    torch.testing.assert_close(FeatureFusion(16)(x, None, y_la), y_la + x)
    torch.testing.assert_close(FeatureFusion(16)(x, y_ms, None), y_ms + x)
    assert FeatureFusion(16)(x, None, None) is x
    with pytest.raises(ValueError, match="lam"):
        FeatureFusion(16, lam=1.5)


def test_without_both_modules_it_is_resnet18():
    plain = create_model("ffra-net", multi_scale=False, local_attention=False)
    reference = create_model("resnet18")
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in reference.parameters())


def test_loss_is_cross_entropy_by_hand():
    model = create_model("ffra-net")
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5, 0.0, 0.0, 1.0]])
    labels = torch.tensor([6])
    expected = -(1.0 - torch.logsumexp(logits[0], 0))
    torch.testing.assert_close(model.loss(ModelOutput(logits=logits), {"label": labels}), expected)


def test_every_parameter_gets_a_gradient_at_224():
    torch.manual_seed(4)
    model = create_model("ffra-net", fusion="concat")
    out = model(torch.randn(2, 3, 224, 224))
    F.cross_entropy(out.logits, torch.tensor([1, 4])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_parts_cam_targets_and_registered_parameter_count():
    model = create_model("ffra-net")
    assert set(model.parts()) == {"pre_extractor", "multi_scale", "local_attention", "last_stage", "head"}
    assert {"pre_extractor", "fused", "last_stage"} <= set(model.cam_targets())
    total = sum(p.numel() for p in model.parameters())
    assert sum(sum(p.numel() for p in part.parameters()) for part in model.parts().values()) == total
    assert get_card("ffra-net").claims.ferlib_params_7cls == total
