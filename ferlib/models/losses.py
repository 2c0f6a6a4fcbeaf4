"""The classification losses of the five networks, in one place.

* :func:`cross_entropy` — mean cross-entropy of ``output.logits`` against ``batch["label"]``: the
  loss of the baselines, of FFRA-Net (ffra-net.txt §3), of MAN's ERSnet stage (man.txt Eq. 7) and
  the first term of LAN's (lan.txt Eq. 5).
* :func:`decision_fusion_loss` — two classifier heads, each with its own cross-entropy, weighted
  ``λ·CE(z_a) + (1 − λ)·CE(z_b)``: MA-Net's Eq. 6 (λ on the local head) and AMP-Net's Eqs. 7–8
  (λ on the GP head). :func:`decision_fusion_logits` is the same weighting of the logits at test
  time. (FFRA-Net's λ of Eq. 5 weighs feature maps, not losses; its loss is :func:`cross_entropy`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from ferlib.models.output import ModelOutput

__all__ = ["batch_labels", "cross_entropy", "decision_fusion_logits", "decision_fusion_loss"]


def batch_labels(batch: Mapping[str, Any], device: torch.device | str) -> torch.Tensor:
    """``batch["label"]`` as an int64 tensor on ``device``; a clear error when the batch has none."""
    if "label" not in batch:
        raise KeyError(
            "batch has no 'label'; ferlib batches carry labels in batch['label'] (see ferlib/data/schema.py)"
        )
    labels = batch["label"]
    if not torch.is_tensor(labels):
        labels = torch.as_tensor(labels)
    return labels.to(device, torch.long)


def cross_entropy(output: ModelOutput, batch: Mapping[str, Any]) -> torch.Tensor:
    """Mean cross-entropy of ``output.logits`` against ``batch["label"]``."""
    return F.cross_entropy(output.logits, batch_labels(batch, output.logits.device))


def decision_fusion_logits(first: torch.Tensor, second: torch.Tensor, lam: float) -> torch.Tensor:
    """``λ·first + (1 − λ)·second``: the test-time decision of two heads (MA-Net, AMP-Net)."""
    return lam * first + (1.0 - lam) * second


def decision_fusion_loss(
    output: ModelOutput, batch: Mapping[str, Any], first: str, second: str, lam: float
) -> torch.Tensor:
    """``λ·CE(branch_logits[first]) + (1 − λ)·CE(branch_logits[second])``; when either head is
    missing (one-branch ablations, feature-level fusion) the plain :func:`cross_entropy`."""
    heads = output.branch_logits
    if first not in heads or second not in heads:
        return cross_entropy(output, batch)
    labels = batch_labels(batch, output.logits.device)
    return lam * F.cross_entropy(heads[first], labels) + (1.0 - lam) * F.cross_entropy(heads[second], labels)
