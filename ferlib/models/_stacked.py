"""Parallel per-region networks run as one batched computation (issue 16: "fast kernels").

MA-Net's four local branches (ma-net.txt §III-C) and AMP-Net's four LP and five AP branches
(amp-net.txt §III-C/D) are R networks of identical structure, one per region, applied to R crops of
the same batch. Run one after another they launch R times as many small kernels as needed;
:func:`run_stacked` runs them as **one** network over a leading region axis with ``torch.func.vmap``
and ``torch.func.functional_call`` (a convolution with a region-batched weight becomes one grouped
convolution, batch norm one call over all regions).

The modules stay what they were — ``regions.{k}`` / ``branches.{k}``, the same parameters and
state-dict keys, so public checkpoints load unchanged. Each call stacks the R modules' parameters with
``torch.stack`` (``torch.func.stack_module_state`` would make detached copies, and the gradients must
reach the modules' own parameters), and after a training-mode call copies the batch-norm running
statistics back into each module. Outputs and gradients equal those of the separate modules to float
rounding (tests/test_region_stacks.py: 1e-5, train and eval mode).

Not batched (the loop runs instead): modules carrying forward/backward hooks (Grad-CAM hooks one
region's layer, which a stacked call would bypass) and ``torch.jit`` scripting.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch.func import functional_call, vmap


def _hooked(modules: Sequence[nn.Module]) -> bool:
    for net in modules:
        for m in net.modules():
            if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks:
                return True
    return False


def can_stack(modules: Sequence[nn.Module]) -> bool:
    """Whether :func:`run_stacked` may batch ``modules`` (no hooks, not scripting, more than one)."""
    return len(modules) > 1 and not torch.jit.is_scripting() and not _hooked(modules)


def use_stacked(flag: bool | None, modules: Sequence[nn.Module], x: torch.Tensor) -> bool:
    """A region module's ``batched_regions`` setting: ``True``/``False``, or ``None`` = batched on
    accelerators and the plain loop on a CPU, where the grouped convolutions measured slower (MA-Net's
    local branch, train step at batch 4: 5.87 s against 4.88 s on a loaded 2-core machine;
    docs/benchmarks.md)."""
    wanted = flag if flag is not None else x.device.type != "cpu"
    return bool(wanted) and can_stack(modules)


def set_batched_regions(model: nn.Module, flag: bool | None) -> int:
    """Set ``batched_regions`` on every region module of ``model``; returns how many there are."""
    count = 0
    for m in model.modules():
        if hasattr(m, "batched_regions"):
            m.batched_regions = flag
            count += 1
    return count


def run_stacked(modules: Sequence[nn.Module], inputs: torch.Tensor):
    """``tuple(modules[k](inputs[k]) for k)`` stacked along a new leading axis, as one batched call.

    ``inputs`` is R×B×…; every output of the modules (a tensor or a tuple of tensors) comes back with a
    leading R axis. The modules must share one structure (same parameter names and shapes).
    """
    template = modules[0]
    names = [n for n, _ in template.named_parameters()]
    per_module = [dict(m.named_parameters()) for m in modules]
    params = {n: torch.stack([p[n] for p in per_module]) for n in names}
    buffer_sets = [dict(m.named_buffers()) for m in modules]
    buffers = {n: torch.stack([b[n] for b in buffer_sets]) for n in buffer_sets[0]}

    def one(p, b, x):
        return functional_call(template, {**p, **b}, (x,))

    out = vmap(one, in_dims=(0, 0, 0), randomness="different")(params, buffers, inputs)
    if template.training:  # batch norm updated the stacked running statistics: give each module its own
        with torch.no_grad():
            for k, own in enumerate(buffer_sets):
                for n, buf in own.items():
                    buf.copy_(buffers[n][k])
    return out


__all__ = ["run_stacked", "can_stack", "use_stacked", "set_batched_regions"]
