"""Parameter and multiply-accumulate counts per model part, beside the papers' claims.

``model_complexity(name, **variant)`` builds a registered model, runs one 224×224 image through it
under :class:`torch.utils.flop_counter.FlopCounterMode` and reports, in total and for every part
named by ``model.parts()``:

* ``params`` — number of parameters (BN running statistics are buffers and are not counted,
  which is how papers and the public codes count);
* ``gmacs`` — giga multiply-accumulates, i.e. FlopCounterMode's FLOPs / 2 / 1e9. FlopCounterMode
  counts matrix products and convolutions only (not BN, activations, pooling), which matches how
  FER papers report "FLOPs".

Whatever the parts do not cover (a fusion classifier, a helper) is reported as ``"other"``. The
paper card's :class:`~ferlib.models._card.Claims` come alongside (``"claims"``: the paper's
figures per part, and reference figures such as the public code's), which ``ferlib models`` lines
up part by part.

Landmark inputs are synthesised (:func:`synthetic_landmarks5`, :func:`synthetic_landmarks8`) when
the registry entry's ``inputs`` ask for them: a frontal face template with a little jitter.

(This module counts model complexity; "profile" in ferlib means a training budget.)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from ferlib.models._card import Claims
from ferlib.models.registry import create_model, model_entry

__all__ = [
    "count_parameters",
    "example_inputs",
    "claims_dict",
    "model_complexity",
    "synthetic_landmarks5",
    "synthetic_landmarks8",
]

# Frontal-face templates on a 224×224 aligned crop (pixel x, y).
# RetinaFace order: left eye, right eye, nose tip, left mouth corner, right mouth corner.
_TEMPLATE5 = ((76.0, 95.0), (148.0, 95.0), (112.0, 130.0), (84.0, 165.0), (140.0, 165.0))
# MAN's eight points l1..l8 (man.txt Fig. 4, Table 2): nose tip, left-eye outer/inner corner,
# right-eye inner/outer corner, left/right mouth corner, lower lip centre.
_TEMPLATE8 = (
    (112.0, 130.0),
    (62.0, 95.0),
    (95.0, 95.0),
    (129.0, 95.0),
    (162.0, 95.0),
    (84.0, 165.0),
    (140.0, 165.0),
    (112.0, 178.0),
)


def _synthetic(template, batch: int, size: int, jitter: float, generator: torch.Generator | None) -> torch.Tensor:
    base = torch.tensor(template, dtype=torch.float32) * (size / 224.0)
    noise = (torch.rand(batch, len(template), 2, generator=generator) * 2 - 1) * jitter * (size / 224.0)
    shift = (torch.rand(batch, 1, 2, generator=generator) * 2 - 1) * jitter * (size / 224.0)
    return (base.unsqueeze(0) + noise + shift).clamp(0, size - 1)


def synthetic_landmarks5(
    batch: int, size: int = 224, jitter: float = 4.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """B×5×2 plausible face landmarks (pixel xy, RetinaFace order) for a ``size``² aligned face."""
    return _synthetic(_TEMPLATE5, batch, size, jitter, generator)


def synthetic_landmarks8(
    batch: int, size: int = 224, jitter: float = 4.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """B×8×2 plausible MAN landmarks l1..l8 (pixel xy) for a ``size``² aligned face."""
    return _synthetic(_TEMPLATE8, batch, size, jitter, generator)


def example_inputs(
    name: str, batch: int = 1, size: int = 224, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Keyword inputs for ``model(**inputs)``: ``images`` plus the landmarks the entry declares."""
    entry = model_entry(name)
    inputs = {"images": torch.randn(batch, 3, size, size, generator=generator)}
    if "landmarks5" in entry.inputs:
        inputs["landmarks5"] = synthetic_landmarks5(batch, size, generator=generator)
    if "landmarks8" in entry.inputs:
        inputs["landmarks8"] = synthetic_landmarks8(batch, size, generator=generator)
    return inputs


def count_parameters(module: nn.Module) -> int:
    """Number of parameters of ``module`` (shared tensors once; buffers excluded)."""
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())


def _module_names(model: nn.Module) -> dict[int, str]:
    return {id(m): name for name, m in model.named_modules()}


def model_complexity(name: str, num_classes: int = 7, image_size: int = 224, **variant: Any) -> dict[str, Any]:
    """Parameters and GMACs of model ``name`` (variant keywords as for ``create_model``), in total
    and per part, at one ``image_size``² image, plus the registry entry's paper and claims.

    Returns ``{"name", "variant", "num_classes", "image_size", "params": {"total", <part>...,
    ["other"]}, "gmacs": {...same keys...}, "paper", "claims"}``.
    """
    entry = model_entry(name)
    model = create_model(name, num_classes=num_classes, **variant).eval()
    parts = model.parts()
    names = _module_names(model)
    root = type(model).__name__

    params: dict[str, int] = {"total": count_parameters(model)}
    for part, module in parts.items():
        params[part] = count_parameters(module)

    generator = torch.Generator().manual_seed(0)
    inputs = example_inputs(name, batch=1, size=image_size, generator=generator)
    counter = FlopCounterMode(display=False, depth=None)
    with torch.no_grad(), counter:
        model(**inputs)
    counts = counter.get_flop_counts()

    def gmacs_of(key: str) -> float:
        return sum(counts.get(key, {}).values()) / 2.0 / 1e9

    def module_gmacs(module: nn.Module) -> float:
        # A called submodule's count includes its children; containers that are never called
        # (ModuleList, ad-hoc groupings) are the sum of their children.
        qual = names.get(id(module))
        if qual is not None:
            key = f"{root}.{qual}" if qual else root
            if key in counts:
                return gmacs_of(key)
        return sum(module_gmacs(child) for child in module.children())

    gmacs: dict[str, float] = {"total": gmacs_of("Global")}
    for part, module in parts.items():
        gmacs[part] = module_gmacs(module)

    if parts:
        # Parts may not partition the model (heads, fusion layers); report the remainder honestly.
        union = {id(p): p for m in parts.values() for p in m.parameters()}
        other_params = params["total"] - sum(p.numel() for p in union.values())
        other_gmacs = gmacs["total"] - sum(gmacs[p] for p in parts)
        if other_params or other_gmacs > 5e-4:
            params["other"] = other_params
            gmacs["other"] = max(other_gmacs, 0.0)

    return {
        "name": name,
        "variant": dict(variant),
        "num_classes": num_classes,
        "image_size": image_size,
        "params": params,
        "gmacs": {k: round(v, 4) for k, v in gmacs.items()},
        "paper": entry.paper,
        "claims": claims_dict(entry.card.claims if entry.card is not None else Claims()),
    }


def claims_dict(claims: Claims) -> dict[str, Any]:
    """A card's claims as plain JSON-able data (``ferlib models --json``)."""
    return {
        "params": dict(claims.params),
        "gmacs": dict(claims.gmacs),
        "reference_params": dict(claims.reference_params),
        "reference_gmacs": dict(claims.reference_gmacs),
        "ferlib_params_7cls": claims.ferlib_params_7cls,
        "notes": list(claims.notes),
        "facts": dict(claims.facts),
    }
