"""The one output type every ferlib model returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ModelOutput:
    """What a forward pass returns.

    ``logits``         B×C, the model's final decision (what accuracy is computed on).
    ``branch_logits``  per-branch logits by name (e.g. ``{"gp": ..., "lap": ...}`` for AMP-Net).
    ``aux``            auxiliary tensors by name: attention maps, predicted masks, region boxes,
                       guidance targets... (used by losses, plots and explanations).
    """

    logits: torch.Tensor
    branch_logits: dict[str, torch.Tensor] = field(default_factory=dict)
    aux: dict[str, torch.Tensor] = field(default_factory=dict)
