"""The attention each network computes itself, as maps on the face and region weights per face.

:func:`attention_maps` runs a model once and returns, per name, an N×H×W NumPy stack on the input
image's pixel grid; which maps a family has, and how they are put back from the network's own
canvases into image coordinates, is the family's fact, read by its card's ``attention`` reader
(:mod:`ferlib.models._attention`): AMP-Net's CBAM spatial attention per LP region and AP patch, MA-Net's
local attention per region, LAN's attention map and its guidance map, MAN's RASnet masks, FFRA-Net's
shuffle attention (spatial half). :func:`attention_weights` gives the per-face region weights
(MAN's ERSnet ``q``, man.txt Eq. 6) with :func:`attention_weight_names`. A model without attention
of its own (the ResNet-18 baseline) gives empty dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ferlib.models import FERModel

__all__ = ["OwnAttentionArrays", "attention_maps", "attention_weight_names", "attention_weights", "own_attention"]


class OwnAttentionArrays(dict):
    """``own_attention``'s answer: ``maps``, ``weights``, ``weight_names`` and ``logits`` (NumPy)."""


def _reader(model: nn.Module) -> Callable | None:
    card = model.card if isinstance(model, FERModel) else None
    return None if card is None else card.attention


@torch.no_grad()
def own_attention(
    model: nn.Module,
    images: torch.Tensor,
    landmarks5: torch.Tensor | None = None,
    landmarks8: torch.Tensor | None = None,
    guidance: Any = None,
) -> OwnAttentionArrays:
    """One forward pass: the model's own attention maps (name → N×H×W float32, image coordinates),
    region weights (name → N×R), their region names and the logits (N×C).

    ``landmarks5``/``landmarks8`` as the model's forward takes them; ``guidance`` (LAN only): a
    B×h×w tensor of guidance maps or a callable ``images → maps`` such as the run's
    ``GuidanceAnnotator`` (lan.txt §III-C); without it LAN returns its attention map alone.
    """
    was_training = model.training
    model.eval()
    inputs: dict[str, Any] = {}
    needs = model.needs_landmarks if isinstance(model, FERModel) else ()
    for key, value in (("landmarks5", landmarks5), ("landmarks8", landmarks8)):
        if value is not None and key in needs:
            inputs[key] = value.to(images.device)
    if guidance is not None:
        inputs["guidance"] = guidance
    try:
        reader = _reader(model)
        if reader is None:
            out = model(images, **inputs)
            maps, weights, names = {}, {}, {}
        else:
            out, maps, weights, names = reader(model, images, inputs)
    finally:
        model.train(was_training)
    result = OwnAttentionArrays(
        maps={k: v.detach().float().cpu().numpy() for k, v in maps.items()},
        weights={k: v.detach().float().cpu().numpy() for k, v in weights.items()},
        weight_names=dict(names),
        logits=out.logits.detach().float().cpu().numpy(),
    )
    return result


def attention_maps(
    model: nn.Module,
    images: torch.Tensor,
    landmarks5: torch.Tensor | None = None,
    landmarks8: torch.Tensor | None = None,
    guidance: Any = None,
) -> dict[str, np.ndarray]:
    """The attention maps the network computes, mapped back to image coordinates: name → N×H×W.

    Names per family (see :mod:`ferlib.models._attention`): AMP-Net ``lp_<region>``, ``ap_<patch>``;
    MA-Net ``local_<region>``; LAN ``attention`` (and ``guidance`` when given); MAN
    ``mask_<region>``; FFRA-Net ``shuffle_spatial``. Values are non-negative (sigmoid gates in
    (0, 1)), zero outside a region's box.
    """
    return own_attention(model, images, landmarks5, landmarks8, guidance)["maps"]


def attention_weights(
    model: nn.Module,
    images: torch.Tensor,
    landmarks5: torch.Tensor | None = None,
    landmarks8: torch.Tensor | None = None,
) -> dict[str, np.ndarray]:
    """Per-face region weights: name → N×R (MAN: ``region_weights``, ERSnet's softmax q, Eq. 6)."""
    return own_attention(model, images, landmarks5, landmarks8)["weights"]


def attention_weight_names(model: nn.Module) -> dict[str, tuple[str, ...]]:
    """The region names of :func:`attention_weights`' columns, without running the model on data."""
    size = getattr(model, "image_size", 224)
    dummy = torch.zeros(1, 3, size, size, device=next(model.parameters()).device)
    lm5 = torch.tensor([[[80.0, 100], [144, 100], [112, 130], [88, 165], [136, 165]]])
    return own_attention(model, dummy, lm5)["weight_names"]
