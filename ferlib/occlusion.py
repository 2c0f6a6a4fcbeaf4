"""Landmark-placed occluders: the implementation lives on the data floor, :mod:`ferlib.data.occlusion`.

This module keeps ``from ferlib.occlusion import occlude, ...`` working (notebooks, the CLI, user code).
"""

from ferlib.data.face_geometry import apply_affine, fit_similarity
from ferlib.data.occlusion import (
    CANONICAL_LANDMARKS5,
    KIND_ALIASES,
    MANIFEST_COLUMNS,
    OCCLUDER_KINDS,
    canonical_kind,
    format_points,
    materialise_occluded,
    occlude,
    placement_transform,
    safe_id,
    template_landmarks5,
)

__all__ = [
    "CANONICAL_LANDMARKS5",
    "KIND_ALIASES",
    "MANIFEST_COLUMNS",
    "OCCLUDER_KINDS",
    "apply_affine",
    "canonical_kind",
    "fit_similarity",
    "format_points",
    "materialise_occluded",
    "occlude",
    "placement_transform",
    "safe_id",
    "template_landmarks5",
]
