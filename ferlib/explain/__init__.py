"""Explaining ferlib models: Grad-CAM through pytorch-grad-cam, and the attention each network computes.

* :mod:`ferlib.explain.cams` — thin helpers over pytorch-grad-cam (no CAM method is re-implemented);
* :mod:`ferlib.explain.masks` — :func:`mass_on_mask`, the share of a map's mass inside a pixel mask.
"""

from __future__ import annotations

from ferlib.explain.cams import (
    SLOW_CAM_METHODS,
    LogitsOnly,
    branch_cams,
    branch_targets,
    cam_method,
    compute_cams,
    guided_gradcam,
    model_inputs,
    occluder_cam_mass,
    overlay,
    paste_patch_cam,
    predicted_classes,
    primary_target,
)
from ferlib.explain.masks import mass_on_mask

__all__ = [
    "SLOW_CAM_METHODS",
    "LogitsOnly",
    "branch_cams",
    "branch_targets",
    "cam_method",
    "compute_cams",
    "guided_gradcam",
    "mass_on_mask",
    "model_inputs",
    "occluder_cam_mass",
    "overlay",
    "paste_patch_cam",
    "predicted_classes",
    "primary_target",
]
