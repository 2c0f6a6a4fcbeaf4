"""How much of a map's mass lies inside a pixel mask (attention on an occluder, on the mouth...).

One measure, two callers: the robustness study's attention-on-occluder table (issue 15) and the
eyes / nose / mouth shares of :func:`ferlib.explain.region_attention_share`. A map is any non-negative
H×W array (a Grad-CAM, an attention map pasted back into image coordinates); its mass is its sum.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["mass_on_mask"]


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def mass_on_mask(maps: Any, pixel_mask: Any) -> np.ndarray:
    """Share of each map's mass inside ``pixel_mask``: Σ map·mask / Σ map, one value per map.

    ``maps``: one H×W map or a stack N×H×W (array or tensor, non-negative); ``pixel_mask``: a boolean
    H×W mask shared by all maps or one N×H×W mask per map (e.g. each face's own occluder). Returns a
    float64 array of shape (N,) (shape () for a single map). A map with no mass (all zeros) gives NaN:
    it says nothing about where attention lies, and averaging it as 0 would bias a table.
    """
    m = np.asarray(_numpy(maps), dtype=np.float64)
    mask = _numpy(pixel_mask).astype(bool)
    single = m.ndim == 2
    if single:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"maps must be H×W or N×H×W, got shape {m.shape}")
    if mask.shape not in (m.shape[1:], m.shape):
        raise ValueError(
            f"pixel_mask {mask.shape} must be H×W {m.shape[1:]} or one mask per map {m.shape}; "
            "resize the mask (or the maps) to the same image size"
        )
    if np.any(m < 0) or not np.all(np.isfinite(m)):
        raise ValueError("maps must be finite and non-negative (attention or CAM mass)")
    total = m.sum(axis=(1, 2))
    inside = (m * mask).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)
    return share[0] if single else share
