"""Baselines (resnet18/34, vgg16, vgg16-se): shapes, torchvision layout, SE placement, CE loss."""

from __future__ import annotations

import pytest
import torch
import torchvision

from ferlib.models import ModelOutput, create_model, get_card, list_models
from ferlib.models.baselines import VGG16_BLOCK5_START

BASELINES = ("resnet18", "resnet34", "vgg16", "vgg16-se")


@pytest.fixture(scope="module")
def models():
    """Each baseline built once (VGG16's 134 M parameters take seconds to initialise on 2 cores)."""
    torch.manual_seed(0)
    return {name: create_model(name) for name in BASELINES}


def test_baselines_are_registered_with_their_parameter_counts(models):
    assert set(BASELINES) <= set(list_models())
    totals = {}
    for name, model in models.items():
        totals[name] = sum(p.numel() for p in model.parameters())
        assert get_card(name).claims.ferlib_params_7cls == totals[name], name
        assert sum(sum(p.numel() for p in part.parameters()) for part in model.parts().values()) == totals[name], name
    assert totals["vgg16-se"] - totals["vgg16"] == (512 * 32 + 32) + (32 * 512 + 512)  # one SE, reduction 16


@pytest.mark.parametrize("name", BASELINES)
def test_shapes_at_224(name, models):
    model = models[name].eval()
    seen = {}
    handles = [
        layer.register_forward_hook(lambda m, i, o, key=key: seen.update({key: o.shape}))
        for key, layer in model.cam_targets().items()
    ]
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    for h in handles:
        h.remove()
    assert out.logits.shape == (1, 7)
    if name.startswith("resnet"):
        assert seen["layer4"] == (1, 512, 7, 7)
    else:
        assert seen["conv5_3"] == (1, 512, 14, 14)  # conv5_3 activation, before pool5
    if name == "vgg16-se":
        assert seen["se"] == (1, 512, 14, 14)  # between conv blocks 4 and 5


def test_resnet_keeps_torchvision_names(models):
    reference = torchvision.models.resnet18(weights=None).state_dict()
    model = models["resnet18"]
    result = model.load_state_dict({k: v for k, v in reference.items() if not k.startswith("fc.")}, strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"]
    assert not result.unexpected_keys


def test_vgg16_split_reproduces_torchvision_features(models):
    torch.manual_seed(1)
    reference = torchvision.models.vgg16(weights=None).eval()
    model = models["vgg16"].eval()
    mapped = {}
    for key, value in reference.features.state_dict().items():
        index, rest = key.split(".", 1)
        k = int(index)
        target = f"blocks1_4.{k}" if k < VGG16_BLOCK5_START else f"block5.{k - VGG16_BLOCK5_START}"
        mapped[f"{target}.{rest}"] = value
    result = model.load_state_dict(mapped, strict=False)
    assert all(k.startswith("classifier.") for k in result.missing_keys) and not result.unexpected_keys
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.block5(model.blocks1_4(x)), reference.features(x))
    dropouts = [m.p for m in model.classifier if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.5, 0.5] and model.classifier[6].out_features == 7


def test_loss_is_cross_entropy_by_hand():
    model = create_model("resnet18")
    logits = torch.tensor([[0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0]])
    labels = torch.tensor([2, 6])
    expected = -((2.0 - torch.logsumexp(logits[0], 0)) + (-1.0 - torch.logsumexp(logits[1], 0))) / 2
    torch.testing.assert_close(model.loss(ModelOutput(logits=logits), {"label": labels}), expected)
