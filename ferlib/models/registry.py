"""One registry to build any ferlib model by name (timm-style).

``@register_model("name", paper="...", parts=...)`` on a factory ``fn(num_classes=7, **variant)``;
``create_model(name, num_classes=7, **variant)`` builds it and ``list_models()`` lists names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch.nn as nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable[..., nn.Module]
    paper: str = ""
    description: str = ""
    #: Inputs the forward needs besides images: subset of {"landmarks5", "landmarks8"}.
    inputs: tuple[str, ...] = ()
    #: Published figures to compare with (parameters, GMACs per part...), free-form.
    claims: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    paper: str = "",
    description: str = "",
    inputs: tuple[str, ...] = (),
    claims: dict[str, Any] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering ``factory`` under ``name``. Names are unique."""

    def deco(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelEntry(
            name=name,
            factory=factory,
            paper=paper,
            description=description or (factory.__doc__ or "").strip().split("\n")[0],
            inputs=tuple(inputs),
            claims=dict(claims or {}),
        )
        return factory

    return deco


def _ensure_loaded() -> None:
    # Importing the package registers every model family.
    import ferlib.models  # noqa: F401


def list_models() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}") from None


def create_model(name: str, num_classes: int = 7, **variant: Any) -> nn.Module:
    """Build model ``name`` with ``num_classes`` outputs and ablation ``variant`` keywords.

    Unknown keywords raise ``TypeError`` from the factory, naming the argument.
    """
    entry = model_entry(name)
    model = entry.factory(num_classes=num_classes, **variant)
    model.ferlib_name = name  # type: ignore[attr-defined]
    model.ferlib_variant = dict(variant)  # type: ignore[attr-defined]
    return model
