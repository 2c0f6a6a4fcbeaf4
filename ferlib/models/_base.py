"""The model contract every registered ferlib model follows, with its defaults.

:class:`FERModel` is an ``nn.Module`` whose forward is ``forward(images, landmarks5=None,
landmarks8=None) -> ModelOutput`` and which answers, without ``hasattr`` probes:

* ``loss(output, batch)`` — cross-entropy of ``batch["label"]`` unless the paper says otherwise;
* ``stages()`` / ``set_stage(name)`` — training stages in order (``("main",)``; MAN has two);
* ``needs_landmarks`` — which of ``landmarks5``/``landmarks8`` *this variant's* forward needs;
* ``cam_targets()`` / ``primary_cam_target`` — named Grad-CAM layers, and the one to show alone;
  ``place_cams`` puts a target's CAMs into image layout (AMP-Net's patch-local AP maps);
* ``parts()`` — named sub-modules for parameter/MAC counts;
* ``card`` — the paper card of the registered model it was built as;
* ``torchvision_stages`` / ``torchvision_prefix`` — where torchvision-layout weights load.

:func:`model_inputs` takes the keyword inputs a model needs from a collated batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn as nn

from ferlib.models._card import PaperCard
from ferlib.models.losses import cross_entropy
from ferlib.models.output import ModelOutput
from ferlib.models.registry import get_card, model_entry

__all__ = ["FERModel", "model_inputs"]

LANDMARK_INPUTS = ("landmarks5", "landmarks8")


class FERModel(nn.Module):
    """Base class of ferlib's models; see the module docstring for the contract."""

    #: Registered name whose card applies when the model was built without ``create_model``.
    card_name: ClassVar[str] = ""
    #: The registered name ``create_model`` built this as (set on the instance; "" otherwise).
    ferlib_name: str = ""
    #: torchvision top-level module name → ferlib module path (``load_checkpoint(source="torchvision")``).
    torchvision_stages: ClassVar[Mapping[str, str] | None] = None
    #: Prefix that places torchvision names, when no ``torchvision_stages`` are given (None: guess).
    torchvision_prefix: ClassVar[str | None] = None

    def loss(self, output: ModelOutput, batch: Mapping[str, Any]) -> torch.Tensor:
        """Cross-entropy of ``output.logits`` against ``batch["label"]``."""
        return cross_entropy(output, batch)

    def stages(self) -> tuple[str, ...]:
        """Training stages in order; one (``"main"``) unless the paper trains in stages."""
        return ("main",)

    def set_stage(self, stage: str) -> FERModel:
        """Make ``stage`` the current one (what trains, what :meth:`loss` returns)."""
        if stage not in self.stages():
            raise ValueError(f"{type(self).__name__}.set_stage: stage must be one of {self.stages()}, got {stage!r}")
        return self

    def data_init(self, batches: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
        """Initialisation that needs the training set (MAN: RASnet's mean-mask prior).

        The trainer calls it once before the first step of a fresh run with a lazy iterable of
        collated training batches; returns a summary for the run folder, or ``None`` (the default:
        nothing to do, nothing is read).
        """
        return None

    @property
    def needs_landmarks(self) -> tuple[str, ...]:
        """The landmark inputs this variant's forward needs (empty: images only)."""
        return ()

    def cam_targets(self) -> dict[str, nn.Module]:
        """Grad-CAM target layers by branch name."""
        raise NotImplementedError(f"{type(self).__name__} names no cam_targets()")

    def parts(self) -> dict[str, nn.Module]:
        """Named parts for parameter/MAC counts (empty: the model as a whole)."""
        return {}

    def place_cams(self, target: str, cams: np.ndarray, inputs: Mapping[str, Any], image_size: int) -> np.ndarray:
        """Put CAMs (B×H×W over the input frame) of ``target`` into image layout; most maps already are.

        ``inputs`` are the landmark inputs the CAMs were computed with (:func:`model_inputs`).
        """
        return cams

    @property
    def card(self) -> PaperCard | None:
        """The paper card of the registered model this was built as (``create_model`` name)."""
        return get_card(self.ferlib_name or self.card_name)

    @property
    def primary_cam_target(self) -> str:
        """The card's primary Grad-CAM target when this variant has it, else the first target."""
        targets = self.cam_targets()
        card = self.card
        if card is not None and card.primary_cam_target in targets:
            return card.primary_cam_target
        return next(iter(targets))


def model_inputs(model: nn.Module, batch: Mapping[str, Any]) -> dict[str, Any]:
    """The landmark keyword arguments ``model``'s forward needs, taken from a collated ``batch``.

    A :class:`FERModel` says it per variant (``needs_landmarks``); any other module built by
    ``create_model`` (e.g. a test model) falls back to its registry entry's ``inputs``.
    """
    if isinstance(model, FERModel):
        needs = model.needs_landmarks
    else:
        name = model.__dict__.get("ferlib_name")
        needs = model_entry(name).inputs if name else ()
    return {k: batch[k] for k in needs if k in batch}
