"""Thin helpers over pytorch-grad-cam for ferlib models (no CAM method is re-implemented here).

pytorch-grad-cam's user story is three lines — choose target layers, build ``GradCAM(model,
target_layers)``, call it, overlay with ``show_cam_on_image``. ferlib models differ from a plain
classifier in two ways, and this module bridges only those:

* their forward takes landmarks and returns :class:`~ferlib.models.output.ModelOutput`, so
  :class:`LogitsOnly` wraps a model (plus one image's landmarks) as ``images → logits``, the scores
  being the final ``logits`` or one branch's ``branch_logits[name]`` (per-branch CAMs such as
  AMP-Net's GP vs LAP or MA-Net's global vs local decision);
* each model names its per-branch target layers in ``model.cam_targets()`` and its main one in
  ``model.primary_cam_target`` (from its paper card; :class:`ferlib.models.FERModel`).

CAMs are computed one image at a time, so perturbation methods (ScoreCAM, AblationCAM), which run
the model on many copies of one image, see that image's landmarks. A model whose target maps are
not in image layout puts them there itself (``model.place_cams``: AMP-Net pastes its patch-local AP
maps back into the patch boxes with :func:`paste_patch_cam`).

:func:`occluder_cam_mass` measures how much of a CAM falls on an occluder's pixel mask (FFRA-Net §4.5
argues attention should move *away* from occluders).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ferlib.models import FERModel, model_inputs
from ferlib.models.regions import paste_patch_cam
from ferlib.plots import overlay

__all__ = [
    "SLOW_CAM_METHODS",
    "LogitsOnly",
    "branch_cams",
    "branch_targets",
    "cam_method",
    "compute_cams",
    "guided_gradcam",
    "model_inputs",
    "occluder_cam_mass",
    "overlay",
    "paste_patch_cam",
    "predicted_classes",
    "primary_target",
]

#: Methods that run the model once per activation channel: too slow for the smoke/default profiles.
SLOW_CAM_METHODS = ("ScoreCAM", "AblationCAM")


class LogitsOnly(nn.Module):
    """``images → scores`` view of a ferlib model for pytorch-grad-cam.

    ``output``: ``"logits"`` (the model's decision) or a key of ``branch_logits``. Landmarks given
    for one image (1×5×2 / 1×8×2) are repeated to any batch size the CAM method uses.
    """

    def __init__(
        self,
        model: nn.Module,
        landmarks5: torch.Tensor | None = None,
        landmarks8: torch.Tensor | None = None,
        output: str = "logits",
    ):
        super().__init__()
        self.model = model
        self.landmarks5 = landmarks5
        self.landmarks8 = landmarks8
        self.output = output

    @staticmethod
    def _expand(points: torch.Tensor | None, batch: int, device) -> torch.Tensor | None:
        if points is None:
            return None
        points = points.to(device)
        if points.shape[0] == batch:
            return points
        if points.shape[0] != 1:
            raise ValueError(
                f"LogitsOnly holds landmarks for {points.shape[0]} images but the CAM method passed "
                f"{batch}; compute CAMs one image at a time (ferlib.explain.compute_cams does)"
            )
        return points.expand(batch, *points.shape[1:])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b = images.shape[0]
        kwargs = {}
        lm5 = self._expand(self.landmarks5, b, images.device)
        lm8 = self._expand(self.landmarks8, b, images.device)
        if lm5 is not None:
            kwargs["landmarks5"] = lm5
        if lm8 is not None:
            kwargs["landmarks8"] = lm8
        out = self.model(images, **kwargs)
        if self.output == "logits":
            return out.logits
        if self.output not in out.branch_logits:
            raise KeyError(
                f"model has no branch logits {self.output!r}; available: {sorted(out.branch_logits)} (or 'logits')"
            )
        return out.branch_logits[self.output]


def cam_method(name: str):
    """The pytorch-grad-cam class called ``name`` (``GradCAM``, ``HiResCAM``, ``ScoreCAM``, ...)."""
    import pytorch_grad_cam

    cls = getattr(pytorch_grad_cam, name, None)
    if cls is None or not isinstance(cls, type):
        known = [n for n in dir(pytorch_grad_cam) if n.endswith("CAM") or n.endswith("CAMPlusPlus")]
        raise ValueError(f"pytorch-grad-cam has no method {name!r}; choose one of {sorted(known)}")
    return cls


def branch_targets(model: nn.Module, branches: Sequence[str] | None = None) -> dict[str, nn.Module]:
    """``model.cam_targets()``, optionally restricted to ``branches`` (unknown names raise, listing them)."""
    targets = model.cam_targets()
    if branches is None:
        return dict(targets)
    missing = [b for b in branches if b not in targets]
    if missing:
        raise KeyError(
            f"{getattr(model, 'ferlib_name', type(model).__name__)} has no CAM target(s) "
            f"{missing}; cam_targets() names {sorted(targets)}"
        )
    return {b: targets[b] for b in branches}


def compute_cams(
    model: nn.Module,
    images: torch.Tensor,
    target_layer: nn.Module,
    *,
    classes: Sequence[int] | None = None,
    method: str = "GradCAM",
    landmarks5: torch.Tensor | None = None,
    landmarks8: torch.Tensor | None = None,
    output: str = "logits",
    empty_below: float | None = 1e-8,
) -> np.ndarray:
    """CAMs (B×H×W float in [0, 1]) of ``target_layer`` for a batch of normalised images.

    ``classes``: the class to explain per image (None = the predicted class). One pytorch-grad-cam
    call per image, with that image's landmarks (see the module docstring).

    pytorch-grad-cam rescales every map to [0, 1] by its own maximum, so a map whose positive part is
    nothing (ReLU removed everything) or numerically nothing would be stretched into full-scale noise.
    A map whose largest raw value (before that rescaling) is ``≤ empty_below`` is returned as all
    zeros instead: "empty", which :func:`ferlib.plots.draw_cam` labels as such.
    """
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cls = _peak_recording(cam_method(method))
    model.eval()
    cams = []
    for i in range(images.shape[0]):
        lm5 = None if landmarks5 is None else landmarks5[i : i + 1]
        lm8 = None if landmarks8 is None else landmarks8[i : i + 1]
        wrapped = LogitsOnly(model, lm5, lm8, output)
        targets = None if classes is None else [ClassifierOutputTarget(int(classes[i]))]
        with cls(model=wrapped, target_layers=[target_layer]) as cam:
            if hasattr(cam, "batch_size"):
                cam.batch_size = 8
            cam.raw_peaks = []
            out = cam(input_tensor=images[i : i + 1], targets=targets)[0]
            if empty_below is not None and cam.raw_peaks and max(cam.raw_peaks) <= empty_below:
                out = np.zeros_like(out)
            cams.append(out)
    return np.stack(cams).astype(np.float32)


_RECORDING: dict[type, type] = {}


def _peak_recording(cls: type) -> type:
    """``cls`` (a pytorch-grad-cam method) that also keeps each raw map's positive maximum in
    ``raw_peaks``, read before the library rescales the map (nothing else changes)."""
    if cls not in _RECORDING:

        def get_cam_image(self, *args, **kwargs):
            raw = cls.get_cam_image(self, *args, **kwargs)
            self.raw_peaks.append(float(np.max(np.maximum(raw, 0))) if np.size(raw) else 0.0)
            return raw

        _RECORDING[cls] = type(f"PeakRecording{cls.__name__}", (cls,), {"get_cam_image": get_cam_image})
    return _RECORDING[cls]


def guided_gradcam(
    model: nn.Module,
    images: torch.Tensor,
    target_layer: nn.Module,
    *,
    classes: Sequence[int] | None = None,
    landmarks5: torch.Tensor | None = None,
    landmarks8: torch.Tensor | None = None,
) -> list[np.ndarray]:
    """Guided Grad-CAM (Grad-CAM × guided backpropagation), as uint8 H×W×3 images.

    Uses pytorch-grad-cam's ``GuidedBackpropReLUModel`` and ``deprocess_image``; used for the
    Multiple Attention Network's figures (man.txt Fig. 7).
    """
    from pytorch_grad_cam import GuidedBackpropReLUModel
    from pytorch_grad_cam.utils.image import deprocess_image

    cams = compute_cams(model, images, target_layer, classes=classes, landmarks5=landmarks5, landmarks8=landmarks8)
    out = []
    device = images.device
    for i in range(images.shape[0]):
        wrapped = LogitsOnly(
            model,
            None if landmarks5 is None else landmarks5[i : i + 1],
            None if landmarks8 is None else landmarks8[i : i + 1],
        )
        gb_model = GuidedBackpropReLUModel(model=wrapped, device=device)
        target = None if classes is None else int(classes[i])
        gb = gb_model(images[i : i + 1], target_category=target)  # H×W×3
        guided = deprocess_image(cams[i][..., None] * gb)
        out.append(guided)
    return out


def occluder_cam_mass(cam: np.ndarray, mask: Any) -> dict[str, float]:
    """How much of a CAM lies on an occluder.

    ``mass`` = Σ cam·mask / Σ cam (share of attention on occluder pixels); ``area`` = occluder's
    share of the image; ``ratio`` = mass / area (1 = no preference, < 1 = attention avoids the
    occluder, > 1 = attention is drawn to it). A zero CAM gives NaN mass.
    """
    m = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
    m = m.astype(bool)
    c = np.asarray(cam, dtype=np.float64)
    if c.shape != m.shape:
        raise ValueError(f"CAM {c.shape} and occluder mask {m.shape} must have the same H×W")
    total = c.sum()
    area = float(m.mean())
    mass = float((c * m).sum() / total) if total > 0 else float("nan")
    ratio = mass / area if area > 0 and np.isfinite(mass) else float("nan")
    return {"mass": mass, "area": area, "ratio": ratio}


def predicted_classes(model: nn.Module, images: torch.Tensor, landmarks5=None, landmarks8=None) -> np.ndarray:
    """argmax of the model's logits (no gradients)."""
    model.eval()
    kwargs = {}
    if landmarks5 is not None:
        kwargs["landmarks5"] = landmarks5
    if landmarks8 is not None:
        kwargs["landmarks8"] = landmarks8
    with torch.no_grad():
        return model(images, **kwargs).logits.argmax(1).cpu().numpy()


def primary_target(model: nn.Module) -> str:
    """Name of the model's main Grad-CAM layer: ``model.primary_cam_target`` (from its paper card)."""
    if isinstance(model, FERModel):
        return model.primary_cam_target
    return next(iter(model.cam_targets()))


def branch_cams(
    model: nn.Module,
    images: torch.Tensor,
    batch: Mapping[str, Any],
    *,
    classes: Sequence[int] | None = None,
    method: str = "GradCAM",
    branches: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """One CAM stack (B×H×W) per target of ``model.cam_targets()`` (or ``branches``).

    Landmarks the model needs come from ``batch``. Maps that are not in image layout are put there
    by the model (``place_cams``; e.g. AMP-Net's patch-local ``ap_<patch>`` maps are pasted back
    into their patch boxes, amp-net.txt Eq. 6).
    """
    inputs = model_inputs(model, batch)
    size = images.shape[-1]
    out: dict[str, np.ndarray] = {}
    for name, layer in branch_targets(model, branches).items():
        cams = compute_cams(model, images, layer, classes=classes, method=method, **inputs)
        if isinstance(model, FERModel):
            cams = model.place_cams(name, cams, inputs, size)
        out[name] = cams
    return out
