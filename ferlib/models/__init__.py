"""The five networks and their baselines, built by name, each with its paper card.

>>> from ferlib.models import create_model, get_card, list_models
>>> model = create_model("ma-net", num_classes=7)
>>> get_card("ma-net").claims.params["total"]

A new family is one file (its blocks, network, ``PaperCard`` and ``@register_model`` factories)
plus one import line below; importing a family module registers its factories.
"""

from __future__ import annotations

# Families, imported once, in the order their cards' ablation grids are listed (kept out of the
# import sorter: the order is meaning, not layout).
# isort: off
from ferlib.models import baselines  # noqa: F401  (first: the others reuse its backbones)
from ferlib.models import amp_net  # noqa: F401
from ferlib.models import ma_net  # noqa: F401
from ferlib.models import lan  # noqa: F401
from ferlib.models import ffra_net  # noqa: F401
from ferlib.models import man  # noqa: F401
# isort: on

from ferlib.models._base import FERModel, model_inputs
from ferlib.models._card import AblationGrid, AblationRow, PaperCard
from ferlib.models.checkpoints import load_checkpoint
from ferlib.models.output import ModelOutput
from ferlib.models.registry import (
    ablation_grids,
    create_model,
    get_card,
    list_models,
    model_entry,
    paper_results,
    recipe_name,
    region_views,
    register_model,
    unregister_model,
)

__all__ = [
    "AblationGrid",
    "AblationRow",
    "FERModel",
    "ModelOutput",
    "PaperCard",
    "ablation_grids",
    "create_model",
    "get_card",
    "list_models",
    "load_checkpoint",
    "model_entry",
    "model_inputs",
    "paper_results",
    "recipe_name",
    "region_views",
    "register_model",
    "unregister_model",
]
