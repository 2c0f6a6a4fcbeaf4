"""Explaining ferlib models: Grad-CAM through pytorch-grad-cam, and the attention each network computes.

* :mod:`ferlib.explain.cams` — thin helpers over pytorch-grad-cam (no CAM method is re-implemented);
* :mod:`ferlib.explain.masks` — :func:`mass_on_mask`, the share of a map's mass inside a pixel mask;
* :mod:`ferlib.explain.attention` — :func:`attention_maps` / :func:`attention_weights`, the attention
  each network computes itself, in image coordinates;
* :mod:`ferlib.explain.regions` — eyes / nose / mouth masks from five landmarks and
  :func:`region_attention_share`;
* :mod:`ferlib.explain.sanity` — :func:`cascading_randomization`, the model-randomisation sanity check
  for CAMs (Adebayo et al., NeurIPS 2018).
"""

from __future__ import annotations

from ferlib.explain.attention import attention_maps, attention_weight_names, attention_weights, own_attention
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
from ferlib.explain.regions import FACE_PARTS_112, face_part_masks, region_attention_share
from ferlib.explain.sanity import cascading_randomization, spearman_per_map

__all__ = [
    "FACE_PARTS_112",
    "attention_maps",
    "attention_weight_names",
    "attention_weights",
    "face_part_masks",
    "own_attention",
    "region_attention_share",
    "spearman_per_map",
    "SLOW_CAM_METHODS",
    "LogitsOnly",
    "branch_cams",
    "branch_targets",
    "cascading_randomization",
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
