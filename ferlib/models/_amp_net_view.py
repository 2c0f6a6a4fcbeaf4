"""AMP-Net's region view: the geometry of one face (pose-based division, LBP, AP patches) and the
explorer's panels, from the pure functions of :mod:`ferlib.models.regions` (amp-net.txt Eqs. 2–6)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ferlib.models._card import LANDMARK5_LABELS, BoxLayer, RegionPanel, RegionView
from ferlib.models.regions import (
    LP_REGION_NAMES,
    ap_patch_boxes,
    division_points,
    landmarks_to_grid,
    location_based_padding,
    pose_based_division,
)


def amp_net_geometry(
    landmarks5: Any, image_size: int = 224, grid_size: int = 28, *, scheme: str = "proposed", patch_size: int = 10
) -> dict[str, np.ndarray]:
    """AMP-Net's geometry for one face: grid landmarks, division points, LP and AP boxes (grid cells).

    Calls :func:`~ferlib.models.regions.landmarks_to_grid`, ``division_points``,
    ``pose_based_division`` (Eqs. 2–4) and ``ap_patch_boxes`` (Eq. 6) on a batch of one.
    """
    points = landmarks5.detach().cpu().numpy() if torch.is_tensor(landmarks5) else np.asarray(landmarks5)
    lm = torch.as_tensor(np.asarray(points, dtype=np.float64).reshape(-1, 2), dtype=torch.float32)[None]
    grid = landmarks_to_grid(lm, (image_size, image_size), grid_size)
    x_top, x_bottom, y_center = division_points(grid, grid_size)
    lp = pose_based_division(grid, grid_size, scheme=scheme)
    ap = ap_patch_boxes(grid, grid_size, patch_size)
    return {
        "grid_landmarks": grid[0].numpy(),
        "division": np.array([float(x_top[0]), float(x_bottom[0]), float(y_center[0])]),
        "lp": lp[0].numpy(),
        "ap": ap[0].numpy(),
    }


#: Colours of the four LP regions in the padding mosaic (the explorer's palette, colour-blind friendly).
_LP_COLOURS = ((0.0, 0.447, 0.698), (0.902, 0.624, 0.0), (0.0, 0.620, 0.451), (0.8, 0.475, 0.655))


def _padding_mosaic(lp_boxes: np.ndarray, grid_size: int) -> np.ndarray:
    """Which cells of each (r/2)×(r/2) map location-based padding fills (Fig. 4(d)), as an RGB mosaic."""
    occupancy = torch.ones(1, 1, grid_size, grid_size)
    padded = location_based_padding(occupancy, torch.as_tensor(lp_boxes)[None])[0, :, 0].numpy()
    s = padded.shape[-1]
    mosaic = np.ones((2 * s + 1, 2 * s + 1, 3))
    for k in range(4):
        r0, c0 = (k // 2) * (s + 1), (k % 2) * (s + 1)
        mosaic[r0 : r0 + s, c0 : c0 + s] = np.where(padded[k][..., None] > 0, np.array(_LP_COLOURS[k]), 0.92)
    return mosaic


def amp_net_panels(geo: Mapping[str, Any], landmarks5: Any, image_size: int, grid_size: int) -> tuple[RegionPanel, ...]:
    """Three panels: the face with LP (solid) and AP (dashed) boxes, the pose-based division on the
    grid, and the location-based padding of each LP region into its (r/2)×(r/2) map."""
    stride = image_size / grid_size
    xt, xb, yc = (float(v) - 0.5 for v in geo["division"])
    g = geo["grid_landmarks"]
    edge = grid_size - 0.5
    padded_side = grid_size // 2
    return (
        RegionPanel(
            "face",
            "face: LP (solid), AP (dashed)",
            boxes=(
                BoxLayer(geo["lp"], LP_REGION_NAMES, stride),
                BoxLayer(geo["ap"], None, stride, "dashed", colour_offset=4),
            ),
            points=((landmarks5, LANDMARK5_LABELS, "#FF2D2D"),),
        ),
        RegionPanel(
            "grid",
            f"{grid_size}×{grid_size} grid: pose-based division",
            boxes=(BoxLayer(geo["lp"], None, 1.0, "filled"),),
            points=((g - 0.5, None, "#FF2D2D"),),
            lines=(((xt, -0.5), (xt, yc)), ((xb, yc), (xb, edge)), ((-0.5, yc), (edge, yc))),
        ),
        RegionPanel(
            "image",
            f"location-based padding into {padded_side}×{padded_side} maps",
            image=_padding_mosaic(geo["lp"], grid_size),
            width=1.05,
        ),
    )


def _amp_net_regions(landmarks5: Any, image_size: int, grid_size: int, patch_size: int) -> dict[str, np.ndarray]:
    return amp_net_geometry(landmarks5, image_size, grid_size, patch_size=patch_size)


def _lp_info(geo: Mapping[str, Any]) -> str:
    rows = ", ".join(f"{n}: {tuple(int(v) for v in b)}" for n, b in zip(("LT", "RT", "LB", "RB"), geo["lp"]))
    return f"LP boxes on the grid (x0, y0, x1, y1): {rows}"


AMP_NET_VIEW = RegionView("AMP-Net: PBD + LBP + AP", _amp_net_regions, amp_net_panels, _lp_info)
