"""Per-region networks as one batched call (ferlib/models/_stacked.py) equal the separate modules.

MA-Net's four local branches and AMP-Net's four LP and five AP branches: the same outputs (1e-5 in
float32), the same gradients for every parameter and the same batch-norm running statistics, in train
and eval mode. Gradients are compared in float64: at random initialisation a train-mode batch norm
over a few 7×7 maps amplifies float32 rounding to percent-level gradient differences between *any*
two summation orders (the loop itself is ~8 % from float64 there), which would hide a wrong formula.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from ferlib.models import create_model
from ferlib.models._stacked import set_batched_regions
from ferlib.models.amp_net import AttentionPerception, LocalPerception
from ferlib.models.ma_net import LocalAttentionModule


def _pair(module: nn.Module, dtype=torch.float32) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    loop = module.to(dtype)
    stacked = copy.deepcopy(loop)
    set_batched_regions(loop, False)
    assert set_batched_regions(stacked, True) >= 1
    return loop, stacked


def _ma_local(x):
    return LocalAttentionModule(), (x,)


def _amp_lp(x):
    return LocalPerception(scheme=2), (x, None)


def _amp_ap(x):
    grid = torch.tensor([[8.0, 9.0], [19.0, 9.0], [14.0, 14.0], [9.0, 20.0], [19.0, 20.0]])
    return AttentionPerception(), (x, grid.expand(x.shape[0], 5, 2).to(x.dtype))


def _tensors(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for t in out if isinstance(t, torch.Tensor) and t.is_floating_point()]


CASES = {"ma-net local": _ma_local, "amp-net LP": _amp_lp, "amp-net AP": _amp_ap}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("train", [True, False])
def test_batched_regions_give_the_separate_modules_outputs(case, train):
    torch.manual_seed(1)
    x = torch.randn(2, 128, 28, 28)
    module, args = CASES[case](x)
    loop, stacked = _pair(module)
    loop.train(train), stacked.train(train)
    with torch.no_grad():
        ref, out = _tensors(loop(*args)), _tensors(stacked(*args))
    assert len(ref) == len(out) >= 1
    for a, b in zip(ref, out):
        assert a.shape == b.shape
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    for (name, a), b in zip(loop.state_dict().items(), stacked.state_dict().values()):  # running statistics
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-6, msg=name)


@pytest.mark.parametrize("case", CASES)
def test_batched_regions_give_the_same_gradients(case):
    torch.manual_seed(2)
    x = torch.randn(2, 128, 28, 28, dtype=torch.float64)
    module, args = CASES[case](x)
    loop, stacked = _pair(module, torch.float64)
    loop.train(), stacked.train()
    ref, out = _tensors(loop(*args)), _tensors(stacked(*args))
    weights = [torch.randn_like(t) for t in ref]
    sum((t * w).sum() for t, w in zip(ref, weights)).backward()
    sum((t * w).sum() for t, w in zip(out, weights)).backward()
    for (name, p), q in zip(loop.named_parameters(), stacked.parameters()):
        assert q.grad is not None, name
        scale = max(1.0, float(p.grad.abs().max()))
        torch.testing.assert_close(q.grad, p.grad, atol=1e-5 * scale, rtol=1e-5, msg=name)


def test_whole_ma_net_keeps_its_state_dict_and_logits():
    torch.manual_seed(3)
    model = create_model("ma-net", num_classes=7).eval()
    keys = list(model.state_dict())
    x = torch.randn(2, 3, 112, 112)
    set_batched_regions(model, False)
    with torch.no_grad():
        ref = model(x).logits
    assert set_batched_regions(model, True) == 1
    with torch.no_grad():
        out = model(x).logits
    assert list(model.state_dict()) == keys  # public checkpoints map onto the same keys
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_a_hooked_branch_falls_back_to_the_loop():
    torch.manual_seed(4)
    x = torch.randn(2, 128, 28, 28)
    module, args = _amp_ap(x)
    set_batched_regions(module, True)
    seen = []
    module.branches[3].output.register_forward_hook(lambda m, i, o: seen.append(o.shape))  # as Grad-CAM does
    module.eval()(*args)
    assert seen == [torch.Size([2, 256, 5, 5])]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("case", CASES)
def test_cuda_batched_regions_under_bf16_autocast(case):
    torch.manual_seed(5)
    x = torch.randn(8, 128, 28, 28, device="cuda")
    module, args = CASES[case](x)
    args = tuple(a.cuda() if isinstance(a, torch.Tensor) else a for a in args)
    loop, stacked = _pair(module.cuda())
    loop.eval(), stacked.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        ref, out = _tensors(loop(*args)), _tensors(stacked(*args))
    for a, b in zip(ref, out):
        scale = float(a.float().abs().max())
        torch.testing.assert_close(b.float(), a.float(), atol=3e-2 * max(scale, 1.0), rtol=3e-2)
