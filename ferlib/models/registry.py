"""One registry to build any ferlib model by name (timm-style), and the look-ups on its paper cards.

``@register_model("name", paper="...", inputs=..., card=PaperCard(...))`` on a factory
``fn(num_classes=7, **variant)``; ``create_model(name, num_classes=7, **variant)`` builds it and
``list_models()`` lists names. The registry never imports a family: ``ferlib/models/__init__.py``
imports each family module once, which registers its factories.

The card look-ups (:func:`get_card`, :func:`ablation_grids`, :func:`paper_results`,
:func:`recipe_name`) replace the tables other modules used to keep about each paper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn as nn

from ferlib.models._card import AblationGrid, PaperCard, RegionView


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable[..., nn.Module]
    paper: str = ""
    description: str = ""
    #: Inputs the default variant's forward needs besides images: subset of {"landmarks5", "landmarks8"}
    #: (a built model says it per variant: ``model.needs_landmarks``).
    inputs: tuple[str, ...] = ()
    #: Everything the paper states about this model (see :mod:`ferlib.models._card`).
    card: PaperCard | None = None


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    paper: str = "",
    description: str = "",
    inputs: tuple[str, ...] = (),
    card: PaperCard | None = None,
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
            card=card,
        )
        return factory

    return deco


def unregister_model(name: str) -> None:
    """Remove ``name`` (for test fixtures that register a model for one test)."""
    _REGISTRY.pop(name, None)


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
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


# -- look-ups on the paper cards -------------------------------------------------------------------


def get_card(model_name: str | None) -> PaperCard | None:
    """The paper card of registered model ``model_name``; ``None`` for an unknown name or no card."""
    entry = _REGISTRY.get(model_name) if model_name else None
    return entry.card if entry is not None else None


def recipe_name(model_name: str) -> str:
    """Training recipe of ``model_name`` (``ferlib/recipes/<name>.yaml``); ``"baseline"`` otherwise."""
    card = get_card(model_name)
    return card.recipe if card is not None else "baseline"


def ablation_grids() -> dict[str, AblationGrid]:
    """Every card's ablation grids by name, families in registration order (notebook 04)."""
    grids: dict[str, AblationGrid] = {}
    for entry in _REGISTRY.values():
        for grid in entry.card.ablations if entry.card is not None else ():
            if grid.name in grids:
                raise ValueError(f"ablation grid {grid.name!r} defined by two cards")
            grids[grid.name] = grid
    return grids


def paper_results(dataset: str = "RAF-DB") -> dict[str, dict[str, Any]]:
    """``{model: {"rafdb": accuracy % or None, "source": ...}}``: each paper's reported RAF-DB
    accuracy for the model ferlib builds under that name, papers first, then the baselines.

    A model is listed when its card reports a ``dataset`` result, or when its card says why it
    has none (``PaperCard.note``, e.g. a plain baseline).
    """
    papers: dict[str, dict[str, Any]] = {}
    baselines: dict[str, dict[str, Any]] = {}
    for name, entry in _REGISTRY.items():
        card = entry.card
        if card is None:
            continue
        result = card.result(dataset)
        target = baselines if card.recipe == "baseline" else papers
        if result is not None:
            target[name] = {"rafdb": result.accuracy, "source": result.source}
        elif card.note:
            target[name] = {"rafdb": None, "source": card.note}
    return {**papers, **baselines}


def region_views() -> dict[str, RegionView]:
    """Every card's region-explorer views by name, families in registration order (notebook 02)."""
    views: dict[str, RegionView] = {}
    for entry in _REGISTRY.values():
        for view in entry.card.region_views if entry.card is not None else ():
            views.setdefault(view.name, view)
    return views
