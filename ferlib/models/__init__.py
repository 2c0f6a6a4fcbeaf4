"""The five networks and their baselines, built by name.

>>> from ferlib.models import create_model, list_models
>>> model = create_model("ma-net", num_classes=7)

Each family module registers its factories with :func:`ferlib.models.registry.register_model`
when imported; add new families to ``_FAMILIES``.
"""

from __future__ import annotations

import importlib

from ferlib.models.checkpoints import load_checkpoint
from ferlib.models.output import ModelOutput
from ferlib.models.registry import create_model, list_models, model_entry, register_model

_FAMILIES = ("baselines", "amp_net", "ma_net", "lan", "ffra_net", "man")

for _family in _FAMILIES:
    importlib.import_module(f"ferlib.models.{_family}")

__all__ = ["ModelOutput", "create_model", "load_checkpoint", "list_models", "model_entry", "register_model"]
