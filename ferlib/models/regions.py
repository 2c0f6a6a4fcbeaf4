"""Landmark → feature-map region geometry of AMP-Net (amp-net.txt §III-C, §III-D, §IV-C Table III).

Pure, batched tensor functions: no per-sample Python loops and no data-dependent Python branching,
so they run under ``torch.compile`` and ``FlopCounterMode``. All geometry is on the pre-extractor's
``r×r`` grid (28×28 for 224-px inputs, stride 8); boxes are ``(x0, y0, x1, y1)`` in grid cells with
exclusive ends (cell ``i`` spans ``[i, i+1)``), integer-valued float tensors.

Landmarks (``landmarks5``, B×5×2 pixel xy, RetinaFace order of :mod:`ferlib.data.schema`: image-left
eye, image-right eye, nose, image-left mouth corner, image-right mouth corner; NaN = unknown) are
mapped to the grid as the public AMP-Net code does: clamp to the image, scale by ``r / W`` and round
half to even (:func:`landmarks_to_grid`); the mean of two grid points is floored.

Local perception (LP) regions, in the order :data:`LP_REGION_NAMES` (left-top, right-top,
left-bottom, right-bottom):

* :func:`pose_based_division` — PBD, Eqs. 2–4 with both special cases ("proposed", Table III
  scheme 4 and the boxes of scheme 1) or the "modified PBD" of scheme 3.
* :func:`equal_split_boxes` — the four equal quadrants (scheme 2, as MA-Net).
* :func:`location_based_padding` — LBP: each box's cells are copied into a ``(r/2)×(r/2)`` map at the
  corner of its division point and zero-padded towards its own direction (Fig. 4(d)).
* :func:`roi_align_regions` — scheme 1: ``torchvision.ops.roi_align`` of the PBD boxes to ``r/2``.

Attention perception (AP) patches: :func:`ap_patch_boxes` (Eq. 6 centres, ``L×L``) and
:func:`extract_patches`.

Missing landmarks (NaN), an extension the paper does not spell out, documented here:

* division points fall back in turn: ``x_top`` to the mouth mean, ``x_bottom`` to the eye mean,
  ``y_center`` to the mean of eye and mouth heights, and finally the grid centre ``r/2``;
* an LP region whose own point (eye or mouth corner) is NaN counts as "not containing its point",
  i.e. PBD special case 2 (Fig. 5 Case 2) enlarges it vertically; with all five points unknown the
  four regions become the four equal quadrants;
* an AP patch whose centre is NaN is all zeros (its box is NaN); ``P_A^3`` uses the known eye when
  only one is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torchvision.ops

#: LP subregions in Eq. 4's order; each is anchored at a division point (Eq. 2).
LP_REGION_NAMES: tuple[str, ...] = ("left_top", "right_top", "left_bottom", "right_bottom")
#: AP patches in Eq. 6's order.
AP_PATCH_NAMES: tuple[str, ...] = ("eye1", "eye2", "eye_middle", "mouth1", "mouth2")
#: LP scheme names of Table III (1-based index = scheme number).
LP_SCHEMES: tuple[str, ...] = ("pbd-roi-align", "equal-split", "modified-pbd-lbp", "pbd-lbp")

# Direction of each LP region from its division point (-1: towards x=0 / y=0).
_SX = (-1.0, 1.0, -1.0, 1.0)
_SY = (-1.0, -1.0, 1.0, 1.0)
# landmarks5 slot each LP region should contain (eye1, eye2, mouth1, mouth2).
_REGION_POINT = (0, 1, 3, 4)
# symmetric partner of each LP region (left <-> right within the top / bottom pair).
_PARTNER = (1, 0, 3, 2)


def lp_scheme_index(scheme: int | str) -> int:
    """Table III scheme number (1–4) from a number or a name in :data:`LP_SCHEMES`."""
    if isinstance(scheme, str):
        if scheme not in LP_SCHEMES:
            raise ValueError(f"unknown LP scheme {scheme!r}; use 1-4 or one of {LP_SCHEMES} (amp-net.txt Table III)")
        return LP_SCHEMES.index(scheme) + 1
    if scheme not in (1, 2, 3, 4):
        raise ValueError(f"LP scheme must be 1-4 (amp-net.txt Table III) or one of {LP_SCHEMES}, got {scheme!r}")
    return int(scheme)


def landmarks_to_grid(landmarks5: torch.Tensor, image_size: tuple[int, int], grid_size: int) -> torch.Tensor:
    """Pixel landmarks B×K×2 of an ``image_size = (H, W)`` input → cells of the ``grid_size`` grid.

    ``round(clamp(p, 0, W) · grid_size / W)`` per axis (round half to even, like the public code's
    ``np.around``). NaN stays NaN.
    """
    if landmarks5.dim() != 3 or landmarks5.shape[-1] != 2:
        raise ValueError(f"landmarks must be B×K×2 pixel (x, y); got shape {tuple(landmarks5.shape)}")
    h, w = image_size
    size = landmarks5.new_tensor([float(w), float(h)])
    p = torch.minimum(torch.clamp(landmarks5.float(), min=0.0), size)
    return torch.round(p * (grid_size / size))


def _nanmean(*values: torch.Tensor) -> torch.Tensor:
    stacked = torch.stack(values, 0)
    valid = ~torch.isnan(stacked)
    total = torch.where(valid, stacked, torch.zeros_like(stacked)).sum(0)
    count = valid.sum(0)
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, math.nan))


def _first_known(*values: torch.Tensor, default: float) -> torch.Tensor:
    out = torch.full_like(values[0], default)
    for v in reversed(values):
        out = torch.where(torch.isnan(v), out, v)
    return out


def division_points(grid_landmarks: torch.Tensor, grid_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 2: ``(x_top, x_bottom, y_center)``, each of shape B, on the grid.

    ``x_top = ⌊(x_eye1 + x_eye2)/2⌋``, ``x_bottom = ⌊(x_mouth1 + x_mouth2)/2⌋``, ``y_center = y_nose``,
    with the NaN fall-backs of the module docstring, clamped to ``[0, r]``.
    """
    g = grid_landmarks
    r = float(grid_size)
    eye_x, mouth_x = _nanmean(g[:, 0, 0], g[:, 1, 0]), _nanmean(g[:, 3, 0], g[:, 4, 0])
    eye_y, mouth_y = _nanmean(g[:, 0, 1], g[:, 1, 1]), _nanmean(g[:, 3, 1], g[:, 4, 1])
    x_top = torch.floor(_first_known(eye_x, mouth_x, default=r / 2))
    x_bottom = torch.floor(_first_known(mouth_x, eye_x, default=r / 2))
    y_center = _first_known(g[:, 2, 1], torch.floor(_nanmean(eye_y, mouth_y)), default=r / 2)
    clamp = lambda t: t.clamp(0.0, r)  # noqa: E731
    return clamp(x_top), clamp(x_bottom), clamp(y_center)


def _boxes_from_extents(px, py, w, h) -> torch.Tensor:
    sx = px.new_tensor(_SX)
    sy = px.new_tensor(_SY)
    x0 = torch.where(sx < 0, px - w, px)
    x1 = torch.where(sx < 0, px, px + w)
    y0 = torch.where(sy < 0, py - h, py)
    y1 = torch.where(sy < 0, py, py + h)
    return torch.stack([x0, y0, x1, y1], dim=-1)


def pose_based_division(grid_landmarks: torch.Tensor, grid_size: int, scheme: str = "proposed") -> torch.Tensor:
    """PBD boxes B×4×4 (``x0, y0, x1, y1``) of the four LP regions on the ``r = grid_size`` grid.

    ``scheme="proposed"`` (Table III schemes 1 and 4), Eqs. 2–4:

    * Eq. 3: ``l_top = min(x_top, y_center, r − x_top)``, ``l_bottom = min(x_bottom, r − y_center,
      r − x_bottom)``; both regions of a pair are squares of side ``l`` anchored at the division point.
    * Special case 1 (``l < r/3``): when the smallest distance is horizontal, the region on the other
      side gets ``l1 = min(its horizontal room, the vertical room, r/2)`` (Fig. 5 Case 1). When the
      vertical room is the smallest, both keep ``l``. Ties pick vertical, then left (public code).
    * Special case 2 (a region does not contain its eye/mouth point, Fig. 5 Case 2): the side that
      misses the point is lengthened to ``l2 = min(room in that direction, r/2)`` (a rectangle
      ``l × l2``); its symmetric partner, if it contains its own point, becomes a square of side
      ``l2`` (clipped to the grid, never shrunk). A NaN point counts as a vertical miss. A point on the
      wrong side of a division line cannot be reached by lengthening and is left as is.

    ``scheme="modified"`` (Table III scheme 3): each region is a square whose side is its own shortest
    distance to the grid border in its direction, capped at ``r/2``; no special cases.
    """
    if scheme not in ("proposed", "modified"):
        raise ValueError(f"pose_based_division scheme must be 'proposed' or 'modified', got {scheme!r}")
    r = float(grid_size)
    half = float(grid_size // 2)
    x_top, x_bottom, y_center = division_points(grid_landmarks, grid_size)
    px = torch.stack([x_top, x_top, x_bottom, x_bottom], dim=1)  # B×4
    py = torch.stack([y_center] * 4, dim=1)
    sx, sy = px.new_tensor(_SX), px.new_tensor(_SY)
    room_h = torch.where(sx < 0, px, r - px)  # room from the division point to the border, own direction
    room_v = torch.where(sy < 0, py, r - py)
    cap = torch.full_like(px, half)

    if scheme == "modified":
        side = torch.minimum(torch.minimum(room_h, room_v), cap)
        return _boxes_from_extents(px, py, side, side)

    # Eq. 3, per pair (top: regions 0/1, bottom: regions 2/3).
    pair_x = torch.stack([x_top, x_bottom], dim=1)  # B×2
    dv = torch.stack([y_center, r - y_center], dim=1)
    dl, dr = pair_x, r - pair_x
    l = torch.minimum(torch.minimum(dv, dl), dr)  # noqa: E741 (the paper's l of Eq. 3)
    # Special case 1.
    small = l < r / 3
    bind_v = dv == l
    bind_left = ~bind_v & (dl == l)
    bind_right = ~bind_v & ~bind_left
    half2 = torch.full_like(l, half)
    s_left = torch.where(small & bind_right, torch.minimum(torch.minimum(dv, dl), half2), l)
    s_right = torch.where(small & bind_left, torch.minimum(torch.minimum(dv, dr), half2), l)
    side = torch.stack([s_left[:, 0], s_right[:, 0], s_left[:, 1], s_right[:, 1]], dim=1)  # B×4

    # Special case 2.
    q = grid_landmarks[:, list(_REGION_POINT)]  # B×4×2
    q_nan = torch.isnan(q).any(dim=-1)
    dx = sx * (q[..., 0] - px)  # distance of the point from the division point, in the region's direction
    dy = sy * (q[..., 1] - py)
    miss_h = ~q_nan & (dx > side)
    miss_v = q_nan | (dy > side)
    l2h = torch.minimum(room_h, cap)
    l2v = torch.minimum(room_v, cap)
    w = torch.where(miss_h, l2h, side)
    h = torch.where(miss_v, l2v, side)
    zero = torch.zeros_like(side)
    l2 = torch.maximum(torch.where(miss_h, l2h, zero), torch.where(miss_v, l2v, zero))
    miss = miss_h | miss_v
    partner = list(_PARTNER)
    apply = miss[:, partner] & ~miss
    square = torch.maximum(side, torch.minimum(torch.minimum(l2[:, partner], room_h), room_v))
    w = torch.where(apply, square, w)
    h = torch.where(apply, square, h)
    return _boxes_from_extents(px, py, w, h)


def equal_split_boxes(batch: int, grid_size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Table III scheme 2: the four equal quadrants (left-top, right-top, left-bottom, right-bottom)."""
    s, r = grid_size // 2, grid_size
    boxes = torch.tensor([[0, 0, s, s], [s, 0, r, s], [0, s, s, r], [s, s, r, r]], device=device, dtype=dtype)
    return boxes.expand(batch, 4, 4)


def location_based_padding(features: torch.Tensor, boxes: torch.Tensor, out_size: int | None = None) -> torch.Tensor:
    """LBP (§III-C-2, Fig. 4(d)): B×C×r×r features and B×4×4 LP boxes → B×4×C×S×S, ``S = r/2``.

    Region *k*'s cells are placed so that its division-point corner sits on the same corner of the
    S×S map (left-top region → bottom-right corner, right-top → bottom-left, left-bottom → top-right,
    right-bottom → top-left); the rest is zero ("padded … in the left-top, right-top, left-bottom,
    right-bottom directions"). Boxes must be integer-valued, at most S per side. Implemented as one
    batched gather plus a mask.
    """
    b, c, rh, rw = features.shape
    if rh != rw:
        raise ValueError(f"location_based_padding expects a square feature map, got {rh}×{rw}")
    r = rh
    s = out_size or r // 2
    boxes = boxes.to(features.device)
    x0, y0, x1, y1 = (boxes[..., i].round().long() for i in range(4))  # B×4
    sx = torch.tensor(_SX, device=features.device)
    sy = torch.tensor(_SY, device=features.device)
    i = torch.arange(s, device=features.device)
    # Source cell of map position (row i, col j): counted from the division point's side.
    src_y = torch.where(sy[None, :, None] < 0, y1[..., None] - s + i, y0[..., None] + i)  # B×4×S
    src_x = torch.where(sx[None, :, None] < 0, x1[..., None] - s + i, x0[..., None] + i)
    valid_y = (src_y >= y0[..., None]) & (src_y < y1[..., None]) & (src_y >= 0) & (src_y < r)
    valid_x = (src_x >= x0[..., None]) & (src_x < x1[..., None]) & (src_x >= 0) & (src_x < r)
    return _gather_cells(features, src_y, src_x, valid_y, valid_x)


def _gather_cells(features, src_y, src_x, valid_y, valid_x) -> torch.Tensor:
    """features B×C×r×r; src_y/src_x B×K×S (rows/cols) → B×K×C×S×S with invalid cells zero."""
    b, c, r, _ = features.shape
    k, s = src_y.shape[1], src_y.shape[2]
    idx = src_y.clamp(0, r - 1)[..., :, None] * r + src_x.clamp(0, r - 1)[..., None, :]  # B×K×S×S
    mask = (valid_y[..., :, None] & valid_x[..., None, :]).to(features.dtype)
    flat = features.flatten(2)  # B×C×r²
    gathered = torch.gather(flat, 2, idx.reshape(b, 1, k * s * s).expand(b, c, k * s * s))
    gathered = gathered.reshape(b, c, k, s, s).transpose(1, 2)  # B×K×C×S×S
    return gathered * mask[:, :, None]


def roi_align_regions(
    features: torch.Tensor, boxes: torch.Tensor, out_size: int | None = None, sampling_ratio: int = 2
) -> torch.Tensor:
    """Table III scheme 1: ROI Align (``torchvision.ops.roi_align``, bilinear, ``aligned=True``) of the
    B×K×4 boxes to B×K×C×S×S. Boxes are in cell-edge coordinates, so ``aligned=True`` samples the
    covered cells exactly."""
    b, c, r, _ = features.shape
    s = out_size or r // 2
    k = boxes.shape[1]
    batch_index = torch.arange(b, device=features.device, dtype=features.dtype).repeat_interleave(k)
    rois = torch.cat([batch_index[:, None], boxes.reshape(b * k, 4).to(features)], dim=1)
    out = torchvision.ops.roi_align(
        features, rois, output_size=(s, s), spatial_scale=1.0, sampling_ratio=sampling_ratio, aligned=True
    )
    return out.reshape(b, k, c, s, s)


def ap_centres(grid_landmarks: torch.Tensor) -> torch.Tensor:
    """Eq. 6 centres B×5×2 on the grid: eye1, eye2, ⌊(eye1 + eye2)/2⌋, mouth1, mouth2."""
    g = grid_landmarks
    middle = torch.floor(torch.stack([_nanmean(g[:, 0, 0], g[:, 1, 0]), _nanmean(g[:, 0, 1], g[:, 1, 1])], dim=-1))
    return torch.stack([g[:, 0], g[:, 1], middle, g[:, 3], g[:, 4]], dim=1)


def ap_patch_boxes(grid_landmarks: torch.Tensor, grid_size: int, patch_size: int = 10) -> torch.Tensor:
    """AP boxes B×5×4 (``x0, y0, x1, y1``): ``L×L`` patches around the Eq. 6 centres.

    ``x0 = clamp(cx − ⌊L/2⌋, 0, r − L)``, ``x1 = x0 + L`` (likewise y): the public code's centre clamp
    to ``[L/2, r − L/2]``. Boxes of unknown (NaN) centres are NaN.
    """
    if not 1 <= patch_size <= grid_size:
        raise ValueError(
            f"AP region size L must be in [1, {grid_size}] for a {grid_size}×{grid_size} map, got {patch_size}"
        )
    c = ap_centres(grid_landmarks)
    start = torch.clamp(c - patch_size // 2, 0.0, float(grid_size - patch_size))  # NaN stays NaN
    return torch.cat([start, start + patch_size], dim=-1)


def extract_patches(features: torch.Tensor, boxes: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut the B×K×4 boxes (``L×L``, inside the grid) out of B×C×r×r → B×K×C×L×L; NaN boxes give zeros."""
    known = ~torch.isnan(boxes).any(dim=-1)  # B×K
    start = torch.nan_to_num(boxes[..., :2], nan=0.0).round().long()
    i = torch.arange(patch_size, device=features.device)
    src_x = start[..., 0, None] + i
    src_y = start[..., 1, None] + i
    valid = known[..., None].expand_as(src_x)
    return _gather_cells(features, src_y, src_x, valid, valid)


def boxes_to_pixels(boxes: torch.Tensor, stride: float) -> torch.Tensor:
    """Grid boxes → input-pixel boxes (for drawing)."""
    return boxes * stride


def paste_patch_cam(cam: Any, box: Sequence[float], image_size: int = 224) -> np.ndarray:
    """Put a patch-local CAM (e.g. an AP branch's, computed over the whole input frame) back into
    its pixel ``box`` ``(x0, y0, x1, y1)`` of an ``image_size`` face; zeros elsewhere. NaN boxes
    give all zeros."""
    from PIL import Image

    out = np.zeros((image_size, image_size), dtype=np.float32)
    if not np.all(np.isfinite(box)):
        return out
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, image_size), min(y1, image_size)
    if x1 <= x0 or y1 <= y0:
        return out
    small = Image.fromarray(np.asarray(cam, dtype=np.float32), mode="F").resize((x1 - x0, y1 - y0), Image.BILINEAR)
    out[y0:y1, x0:x1] = np.asarray(small)
    return out


__all__ = [
    "paste_patch_cam",
    "AP_PATCH_NAMES",
    "LP_REGION_NAMES",
    "LP_SCHEMES",
    "ap_centres",
    "ap_patch_boxes",
    "boxes_to_pixels",
    "division_points",
    "equal_split_boxes",
    "extract_patches",
    "landmarks_to_grid",
    "location_based_padding",
    "lp_scheme_index",
    "pose_based_division",
    "roi_align_regions",
]
