"""Eyes, nose and mouth as pixel masks from five landmarks, and the share of a map's mass on each.

:func:`face_part_masks` is pure geometry: the parts are boxes in the frame of the ArcFace 5-point
template (112×112, Deng et al., CVPR 2019, doi:10.1109/CVPR.2019.00482; ``ferlib.data.face_geometry``),
carried onto each face by the least-squares similarity that maps the face's five points onto the
template (Umeyama 1991, doi:10.1109/34.88573). A rolled or scaled face therefore gets rolled or
scaled boxes. The box sizes are ferlib's choice (in template pixels, inter-ocular distance ≈ 35):
each eye ±12 px wide, from 10 px above to 7 px below the pupil; the nose 18 px wide, from below the
eyes to 6 px below the tip; the mouth from 6 px outside each corner, 8 px above to 9 px below them.
They do not overlap, so the shares of one map add up to at most 1. On SynthFER the five points are
exact (the renderer's own), so the masks fall on the drawn parts; elsewhere they are as good as the
landmarks.

:func:`region_attention_share` turns maps (Grad-CAMs or the networks' own attention) into a table:
the mean share of each map's mass per part, per class when labels are given, beside the part's area
share (what a uniform map would give).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ferlib.data.face_geometry import TEMPLATE_112, fit_similarity
from ferlib.explain.masks import mass_on_mask

__all__ = ["FACE_PARTS_112", "face_part_masks", "region_attention_share"]

_EYE_Y = float(TEMPLATE_112[:2, 1].mean())
_MOUTH_Y = float(TEMPLATE_112[3:, 1].mean())
_NOSE = TEMPLATE_112[2]

#: Parts as lists of boxes ``(x0, y0, x1, y1)`` in ArcFace-template (112×112) pixels (module docstring).
FACE_PARTS_112: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "eyes": tuple(
        (float(x) - 12.0, _EYE_Y - 10.0, float(x) + 12.0, _EYE_Y + 7.0)
        for x in (TEMPLATE_112[0, 0], TEMPLATE_112[1, 0])
    ),
    "nose": ((float(_NOSE[0]) - 9.0, _EYE_Y + 7.0, float(_NOSE[0]) + 9.0, float(_NOSE[1]) + 6.0),),
    "mouth": ((float(TEMPLATE_112[3, 0]) - 6.0, _MOUTH_Y - 8.0, float(TEMPLATE_112[4, 0]) + 6.0, _MOUTH_Y + 9.0),),
}


def _points(landmarks5: Any) -> np.ndarray:
    if isinstance(landmarks5, Mapping):
        landmarks5 = landmarks5["landmarks5"]
    if hasattr(landmarks5, "detach"):
        landmarks5 = landmarks5.detach().cpu().numpy()
    pts = np.asarray(landmarks5, dtype=np.float64)
    return pts.reshape(-1, 5, 2)


def face_part_masks(
    landmarks5: Any, image_size: int | tuple[int, int], parts: Sequence[str] = ("eyes", "nose", "mouth")
) -> dict[str, np.ndarray]:
    """Boolean N×H×W masks of each part (:data:`FACE_PARTS_112`) for N faces' five points.

    ``landmarks5``: N×5×2 (or 5×2) pixel xy in RetinaFace order, or a sample/batch dict holding
    ``"landmarks5"``. Pixel (row r, column c) is at (x=c, y=r). A face with unknown (NaN) points
    gets empty masks.
    """
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    unknown = [p for p in parts if p not in FACE_PARTS_112]
    if unknown:
        raise KeyError(f"unknown face part(s) {unknown}; known: {sorted(FACE_PARTS_112)}")
    pts = _points(landmarks5)
    ys, xs = np.mgrid[0:h, 0:w]
    pix = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    out = {p: np.zeros((len(pts), h, w), bool) for p in parts}
    for i, face in enumerate(pts):
        if not np.isfinite(face).all():
            continue
        m = fit_similarity(face, TEMPLATE_112)  # image → template
        t = pix @ m[:, :2].T + m[:, 2]
        for p in parts:
            inside = np.zeros(len(t), bool)
            for x0, y0, x1, y1 in FACE_PARTS_112[p]:
                inside |= (t[:, 0] >= x0) & (t[:, 0] < x1) & (t[:, 1] >= y0) & (t[:, 1] < y1)
            out[p][i] = inside.reshape(h, w)
    return out


def region_attention_share(
    maps: Mapping[str, Any] | Any,
    landmarks5: Any,
    regions: Sequence[str] = ("eyes", "nose", "mouth"),
    *,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
):
    """Share of each map's mass on each face part, as a tidy ``pandas.DataFrame``.

    ``maps``: name → N×H×W (or one N×H×W stack, named ``"map"``); ``landmarks5``: the N faces'
    points (or the batch dict). Columns: ``map``, ``class`` (``"all"`` and, when ``labels`` are given,
    one row block per class), ``region``, ``share`` (mean over faces of Σ map·mask / Σ map; empty
    maps are left out), ``sd``, ``n`` (faces counted), ``area`` (mean share of the image the part
    covers: the share a uniform map would give) and ``ratio`` = share / area (> 1: the map prefers
    the part).
    """
    import pandas as pd

    named = dict(maps) if isinstance(maps, Mapping) else {"map": maps}
    if not named:
        return pd.DataFrame(columns=["map", "class", "region", "share", "sd", "n", "area", "ratio"])
    first = np.asarray(next(iter(named.values())))
    n, h, w = first.shape
    masks = face_part_masks(landmarks5, (h, w), regions)
    y = None if labels is None else np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels).reshape(-1)
    if y is not None and len(y) != n:
        raise ValueError(f"labels has {len(y)} entries for {n} maps")
    groups: list[tuple[str, np.ndarray]] = [("all", np.ones(n, bool))]
    if y is not None:
        for c in np.unique(y):
            name = class_names[int(c)] if class_names is not None else str(int(c))
            groups.append((name, y == c))
    rows = []
    for map_name, stack in named.items():
        stack = np.asarray(stack)
        if stack.shape != (n, h, w):
            raise ValueError(f"map {map_name!r} has shape {stack.shape}; all maps must be {(n, h, w)}")
        for region in regions:
            share = mass_on_mask(stack, masks[region])
            area = masks[region].mean(axis=(1, 2))
            for group, sel in groups:
                vals = share[sel]
                vals = vals[np.isfinite(vals)]
                mean_share = float(vals.mean()) if len(vals) else float("nan")
                mean_area = float(area[sel].mean()) if sel.any() else float("nan")
                rows.append(
                    {
                        "map": map_name,
                        "class": group,
                        "region": region,
                        "share": mean_share,
                        "sd": float(vals.std(ddof=1)) if len(vals) > 1 else float("nan"),
                        "n": int(len(vals)),
                        "area": mean_area,
                        "ratio": mean_share / mean_area if mean_area > 0 else float("nan"),
                    }
                )
    return pd.DataFrame(rows)
