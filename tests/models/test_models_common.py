"""Contract tests run over EVERY registered model (docs/DEVELOPING.md, "Model API").

New families are picked up automatically through ``list_models()``. Per model, on one fixed
random batch of two 224×224 images (plus synthetic landmarks when the registry entry's
``inputs`` ask for them): output type and shapes, a finite scalar loss, a gradient for every
parameter after one backward pass (no dead modules), Grad-CAM targets and parts that belong to
the model, and a loss that falls over a few SGD steps.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from ferlib.models import ModelOutput, create_model, list_models, model_entry
from ferlib.models.complexity import example_inputs, synthetic_landmarks5, synthetic_landmarks8

MODELS = list_models()
NUM_CLASSES = 7
BATCH = 2
STEPS = 2


def _batch(name: str, seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    inputs = example_inputs(name, batch=BATCH, size=224, generator=generator)
    # The collated batch always carries landmarks (the sample schema has landmarks5, and
    # landmarks8 where known): losses may need them even when the forward does not.
    batch = {
        "image": inputs["images"],
        "label": torch.tensor([1, 4]),
        "landmarks5": inputs.get("landmarks5", synthetic_landmarks5(BATCH, 224, generator=generator)),
        "landmarks8": inputs.get("landmarks8", synthetic_landmarks8(BATCH, 224, generator=generator)),
    }
    return inputs, batch


def _train_mode_without_dropout(model: nn.Module) -> None:
    # Dropout would make the loss on a fixed batch noisy from step to step.
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.eval()


def test_registry_lists_models_with_valid_inputs():
    assert "ma-net" in MODELS
    for name in MODELS:
        entry = model_entry(name)
        assert set(entry.inputs) <= {"landmarks5", "landmarks8"}, f"{name}: unknown inputs {entry.inputs}"


@pytest.mark.parametrize("name", MODELS)
def test_model_contract_gradients_and_training(name: str):
    torch.manual_seed(0)
    model = create_model(name, num_classes=NUM_CLASSES)
    inputs, batch = _batch(name)
    _train_mode_without_dropout(model)

    # -- forward contract ----------------------------------------------------------------
    out = model(**inputs)
    assert isinstance(out, ModelOutput), f"{name}: forward returned {type(out).__name__}, not ModelOutput"
    assert out.logits.shape == (BATCH, NUM_CLASSES), f"{name}: logits {tuple(out.logits.shape)}"
    assert torch.isfinite(out.logits).all(), f"{name}: non-finite logits"
    for branch, logits in out.branch_logits.items():
        assert logits.shape == (BATCH, NUM_CLASSES), f"{name}: branch {branch} logits {tuple(logits.shape)}"
    for key, value in out.aux.items():
        assert torch.is_tensor(value), f"{name}: aux[{key!r}] is {type(value).__name__}, not a tensor"

    # -- loss and gradients ------------------------------------------------------------------
    loss = model.loss(out, batch)
    assert torch.is_tensor(loss) and loss.dim() == 0, f"{name}: loss must be a scalar tensor"
    assert torch.isfinite(loss), f"{name}: loss {loss.item()} is not finite"
    model.zero_grad(set_to_none=True)
    loss.backward()
    dead = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not dead, f"{name}: parameters without gradient after backward (dead modules): {dead[:10]}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"{name}: non-finite gradients in {bad[:10]}"

    # -- Grad-CAM targets and parts belong to the model -------------------------------------------
    own = {id(m) for m in model.modules()}
    targets = model.cam_targets()
    assert targets, f"{name}: cam_targets() is empty"
    for key, layer in targets.items():
        assert isinstance(layer, nn.Module) and id(layer) in own, f"{name}: cam target {key!r} is not a submodule"
    parts = model.parts()
    assert parts, f"{name}: parts() is empty"
    params = {id(p) for p in model.parameters()}
    for key, part in parts.items():
        assert isinstance(part, nn.Module), f"{name}: part {key!r} is not a module"
        assert all(id(p) in params for p in part.parameters()), f"{name}: part {key!r} holds foreign parameters"

    # -- a few SGD steps on the same batch lower the loss ----------------------------------------
    first = loss.item()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    optimizer.step()
    for _ in range(STEPS - 1):
        optimizer.zero_grad(set_to_none=True)
        step_loss = model.loss(model(**inputs), batch)
        step_loss.backward()
        optimizer.step()
    with torch.no_grad():
        last = model.loss(model(**inputs), batch).item()
    assert math.isfinite(last) and last < first, (
        f"{name}: loss did not fall over {STEPS} SGD steps ({first:.4f} -> {last:.4f})"
    )


@pytest.mark.parametrize("name", [n for n in MODELS if model_entry(n).inputs])
def test_models_needing_landmarks_say_so(name: str):
    model = create_model(name, num_classes=NUM_CLASSES).eval()
    with pytest.raises(ValueError, match="landmark"):
        model(torch.randn(1, 3, 224, 224))
