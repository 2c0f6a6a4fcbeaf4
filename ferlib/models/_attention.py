"""The attention each network computes, read out and put back into image coordinates.

Every family's card names its reader (``PaperCard.attention``); :func:`ferlib.explain.attention_maps`
calls it. A reader runs the model once (under the caller's ``no_grad``) and returns
:class:`OwnAttention`: the model output, the maps (name → B×H×W tensor on the input image's pixel
grid, zero where the map says nothing) and per-face region weights (name → B×R, with the region
names). Maps come from the model's ``aux`` outputs where the model already returns them, otherwise
from forward hooks, so no model computes anything differently for being read.

* AMP-Net (amp-net.txt §III-C/D): the CBAM spatial attention ``M_s`` of the last attention block of
  each LP region branch (``lp_<region>``) and AP patch branch (``ap_<patch>``). An LP branch sees its
  region on a padded S×S canvas (location-based padding, Fig. 4(d)); :func:`lbp_canvas_to_image`
  crops the region back out of the canvas and pastes it at the region's place on the face. GP has
  no spatial attention (its gate-OSA blocks gate channels), so there is no ``gp`` map.
* MA-Net (ma-net.txt §III-C, Eq. 4): ``M_s`` of the last attentive block of each local region's
  network (``local_<k>``, row-major), pasted into its region box.
* LAN (lan.txt §III-B/C): the attention map ``F_m`` (``attention``) and, when the caller gives
  ``guidance`` (a B×h×w tensor or a callable on the images, e.g. the run's ``GuidanceAnnotator``), the
  guidance map it was trained towards (``guidance``), both upsampled over the whole face.
* MAN (man.txt §III-A/B): RASnet's masks ``M_r`` (``mask_<region>``, Table 2's regions) upsampled
  over the face, and ERSnet's region weights ``q`` (Eq. 6) as ``weights["region_weights"]``.
* FFRA-Net (ffra-net.txt §3.2, Eqs. 2–3): the spatial half of each shuffle attention,
  ``sigmoid(W_s·GN(x) + b_s)`` averaged over groups and channels, tiled at the places of the local
  maps ``S_i`` (``shuffle_spatial``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ferlib.models.output import ModelOutput

__all__ = [
    "OwnAttention",
    "amp_net_attention",
    "amp_net_lp_regions_to_image",
    "capture_outputs",
    "ffra_net_attention",
    "lan_attention",
    "lbp_canvas_to_image",
    "ma_net_attention",
    "man_attention",
    "paste_into_boxes",
    "upsample_to_image",
]


class OwnAttention(NamedTuple):
    """What a family's attention reader returns (see the module docstring)."""

    output: ModelOutput
    maps: dict[str, torch.Tensor]  # name → B×H×W, image coordinates
    weights: dict[str, torch.Tensor]  # name → B×R
    weight_names: dict[str, tuple[str, ...]]  # name → the R region names


@contextmanager
def capture_outputs(modules: Sequence[nn.Module]) -> Iterator[list[torch.Tensor | None]]:
    """Forward hooks that keep the last output of each module (``None`` until it runs).

    A hooked region network is run in the plain loop, not batched (``_stacked._hooked``), so the
    captured tensors are the ones the model used.
    """
    seen: list[torch.Tensor | None] = [None] * len(modules)
    handles = []
    for i, module in enumerate(modules):

        def hook(_m, _inputs, output, i=i):
            seen[i] = output.detach()

        handles.append(module.register_forward_hook(hook))
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def upsample_to_image(maps: torch.Tensor, image_size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """B×h×w maps covering the whole image → B×H×W (bilinear; ``"nearest"`` for 0/1 maps)."""
    x = maps.float()[:, None]
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(x, size=tuple(image_size), mode=mode, **kwargs)[:, 0]


def _int_box(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int] | None:
    values = [float(v) for v in box]
    if not all(v == v for v in values):  # NaN: unknown region
        return None
    x0, y0, x1, y1 = (int(round(v)) for v in values)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)


def paste_into_boxes(maps: torch.Tensor, boxes: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Each B×h×w map resized (bilinear) into its pixel box (B×4, ``x0, y0, x1, y1``) of an H×W
    image; zero elsewhere, all zero for a NaN or empty box."""
    h, w = image_size
    out = maps.new_zeros((maps.shape[0], h, w), dtype=torch.float32)
    for b in range(maps.shape[0]):
        box = _int_box(boxes[b].tolist(), w, h)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        out[b, y0:y1, x0:x1] = F.interpolate(
            maps[b][None, None].float(), size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False
        )[0, 0]
    return out


#: Side of the division point each LP region lies on (amp-net.txt Fig. 4(d)): -1 = the region ends
#: at the point (left/top regions), +1 = it starts there. Same order as ``LP_REGION_NAMES``.
_LBP_SX = (-1, 1, -1, 1)
_LBP_SY = (-1, -1, 1, 1)


def _lbp_span(lo: int, hi: int, side: int, canvas: int, grid: int) -> tuple[int, int, int] | None:
    """Grid cells [a, b) of a region that are on its canvas, and the canvas cell of ``a``."""
    anchor = hi - canvas if side < 0 else lo  # canvas cell j shows grid cell anchor + j
    a, b = max(lo, 0, anchor), min(hi, grid, anchor + canvas)
    return None if b <= a else (a, b, a - anchor)


def lbp_canvas_to_image(
    canvas: torch.Tensor, boxes: torch.Tensor, grid_size: int, image_size: int, canvas_cells: int | None = None
) -> torch.Tensor:
    """Undo location-based padding for maps: B×4×h×w maps over each LP region's S×S canvas → B×4×H×W.

    ``boxes`` are the LP boxes in grid cells (B×4×4, integer-valued, as ``location_based_padding``
    takes them); ``canvas_cells`` is S (default ``grid_size // 2``). Canvas cell ``j`` of region *k*
    shows grid cell ``x1 − S + j`` for a left region and ``x0 + j`` for a right one (likewise in y:
    :func:`ferlib.models.regions.location_based_padding`); the map is resized to S·stride pixels,
    the part over the region's cells is cut out and pasted at the region's pixels (stride =
    ``image_size / grid_size``). Padding cells are dropped; everything outside the box is zero.
    """
    s = canvas_cells or grid_size // 2
    stride = image_size / grid_size
    px = int(round(s * stride))
    b, k = canvas.shape[:2]
    big = F.interpolate(canvas.float().reshape(b * k, 1, *canvas.shape[2:]), size=(px, px), mode="bilinear")
    big = big.reshape(b, k, px, px)
    out = canvas.new_zeros((b, k, image_size, image_size), dtype=torch.float32)
    for i in range(b):
        for r in range(k):
            x0, y0, x1, y1 = (int(round(float(v))) for v in boxes[i, r])
            sx = _lbp_span(x0, x1, _LBP_SX[r], s, grid_size)
            sy = _lbp_span(y0, y1, _LBP_SY[r], s, grid_size)
            if sx is None or sy is None:
                continue
            (ax, bx, jx), (ay, by, jy) = sx, sy
            cx0, cy0 = round(jx * stride), round(jy * stride)
            w, h = round((bx - ax) * stride), round((by - ay) * stride)
            ix0, iy0 = round(ax * stride), round(ay * stride)
            out[i, r, iy0 : iy0 + h, ix0 : ix0 + w] = big[i, r, cy0 : cy0 + h, cx0 : cx0 + w]
    return out


def _forward(model: nn.Module, images: torch.Tensor, inputs: Mapping[str, Any]) -> ModelOutput:
    return model(images, **{k: v for k, v in inputs.items() if k in ("landmarks5", "landmarks8")})


def amp_net_attention(model: nn.Module, images: torch.Tensor, inputs: Mapping[str, Any]) -> OwnAttention:
    """AMP-Net: ``lp_<region>`` (LBP canvas → face) and ``ap_<patch>`` (patch → its box)."""
    from ferlib.models.regions import AP_PATCH_NAMES, LP_REGION_NAMES

    out = _forward(model, images, inputs)
    size = images.shape[-1]
    grid = size // 8  # the pre-extractor's stride (conv3 of ResNet)
    stride = size / grid
    maps: dict[str, torch.Tensor] = {}
    if "lp_attention" in out.aux:
        att, boxes = out.aux["lp_attention"], out.aux["lp_boxes"]
        if model.lp.scheme == 1:  # ROI Align: each region is resampled onto the whole canvas
            placed = torch.stack([paste_into_boxes(att[:, k], boxes[:, k] * stride, (size, size)) for k in range(4)], 1)
        else:
            placed = lbp_canvas_to_image(att, boxes, grid, size)
        for k, name in enumerate(LP_REGION_NAMES):
            maps[f"lp_{name}"] = placed[:, k]
    if "ap_attention" in out.aux:
        att, boxes = out.aux["ap_attention"], out.aux["ap_boxes"]
        for k, name in enumerate(AP_PATCH_NAMES):
            maps[f"ap_{name}"] = paste_into_boxes(att[:, k], boxes[:, k] * stride, (size, size))
    return OwnAttention(out, maps, {}, {})


_MA_NET_2X2 = ("top_left", "top_right", "bottom_left", "bottom_right")


def ma_net_attention(model: nn.Module, images: torch.Tensor, inputs: Mapping[str, Any]) -> OwnAttention:
    """MA-Net: ``local_<region>``, the last attentive block's ``M_s`` per region, in its box."""
    local = getattr(model.local_branch, "features", None) if model.local_branch is not None else None
    regions = getattr(local, "regions", None)
    gates = [] if regions is None else [net.layer4[-1].cbam for net in regions]
    if not gates or any(g is None or g.SpatialGate is None for g in gates):  # no local attention in this variant
        return OwnAttention(_forward(model, images, inputs), {}, {}, {})
    with capture_outputs([g.SpatialGate.spatial for g in gates]) as seen:
        out = _forward(model, images, inputs)
    boxes = out.aux["region_boxes"]  # B×R×4 pixels
    names = _MA_NET_2X2 if len(gates) == 4 else tuple(f"region{k}" for k in range(len(gates)))
    size = tuple(images.shape[-2:])
    maps = {
        f"local_{name}": paste_into_boxes(torch.sigmoid(pre)[:, 0], boxes[:, k], size)
        for k, (name, pre) in enumerate(zip(names, seen))
    }
    return OwnAttention(out, maps, {}, {})


def lan_attention(model: nn.Module, images: torch.Tensor, inputs: Mapping[str, Any]) -> OwnAttention:
    """LAN: ``attention`` (F_m) and, when ``inputs["guidance"]`` is given, ``guidance``."""
    out = _forward(model, images, inputs)
    size = tuple(images.shape[-2:])
    maps: dict[str, torch.Tensor] = {}
    if "attention_map" in out.aux:
        maps["attention"] = upsample_to_image(out.aux["attention_map"], size)
    guidance: Callable | torch.Tensor | None = inputs.get("guidance")
    if callable(guidance) and not torch.is_tensor(guidance):
        guidance = guidance(images)
    if guidance is not None:
        maps["guidance"] = upsample_to_image(torch.as_tensor(guidance).to(images.device), size, mode="nearest")
    return OwnAttention(out, maps, {}, {})


def man_attention(model: nn.Module, images: torch.Tensor, inputs: Mapping[str, Any]) -> OwnAttention:
    """MAN: ``mask_<region>`` (RASnet) and ``weights["region_weights"]`` (ERSnet's q)."""
    from ferlib.models.man_masks import MAN_REGION_NAMES

    out = _forward(model, images, inputs)
    size = tuple(images.shape[-2:])
    masks = out.aux["masks"]
    names = (
        MAN_REGION_NAMES
        if masks.shape[1] == len(MAN_REGION_NAMES)
        else tuple(f"region{k}" for k in range(masks.shape[1]))
    )
    maps = {f"mask_{name}": upsample_to_image(masks[:, k], size) for k, name in enumerate(names)}
    weights, weight_names = {}, {}
    if "region_weights" in out.aux:
        weights["region_weights"] = out.aux["region_weights"].float()
        weight_names["region_weights"] = tuple(names)
    return OwnAttention(out, maps, weights, weight_names)


def ffra_net_attention(model: nn.Module, images: torch.Tensor, inputs: Mapping[str, Any]) -> OwnAttention:
    """FFRA-Net: ``shuffle_spatial``, the spatial half of each local map's shuffle attention, tiled."""
    module = model.local_attention
    if module is None:
        return OwnAttention(_forward(model, images, inputs), {}, {}, {})
    sas = [part[-1] for part in module.parts]
    with capture_outputs([sa.gn for sa in sas]) as seen:
        out = _forward(model, images, inputs)
    b = images.shape[0]
    pieces = []
    for sa, gn in zip(sas, seen):
        att = torch.sigmoid(sa.sweight * gn + sa.sbias)  # (B·G)×(C/2G)×h×w, Eq. 3's spatial gate
        pieces.append(att.reshape(b, -1, *att.shape[-2:]).mean(1))
    rows, cols = module.grid
    tiled = torch.cat([torch.cat(pieces[r * cols : (r + 1) * cols], dim=2) for r in range(rows)], dim=1)
    return OwnAttention(out, {"shuffle_spatial": upsample_to_image(tiled, tuple(images.shape[-2:]))}, {}, {})


def amp_net_lp_regions_to_image(
    model: nn.Module, canvas_maps: torch.Tensor, landmarks5: torch.Tensor | None, image_size: int
) -> torch.Tensor:
    """Maps over AMP-Net's LP canvas (the four padded S×S region canvases tiled 2×2, B×h×w with the
    canvas's layout: left-top, right-top / left-bottom, right-bottom) → B×4×H×W, each region's part
    pasted at the region's place on the face (the inverse of location-based padding, or of ROI Align
    for scheme 1). Used for the ``lp`` Grad-CAM, whose target is that tiled canvas."""
    from ferlib.models.regions import landmarks_to_grid

    b = canvas_maps.shape[0]
    grid = image_size // 8
    grid_landmarks = None
    if landmarks5 is not None and model.lp.needs_landmarks:
        grid_landmarks = landmarks_to_grid(landmarks5.float(), (image_size, image_size), grid)
    boxes = model.lp.region_boxes(grid_landmarks, b, grid, canvas_maps.device).float()
    h, w = canvas_maps.shape[-2:]
    quads = torch.stack(
        [canvas_maps[:, r * h // 2 : (r + 1) * h // 2, c * w // 2 : (c + 1) * w // 2] for r in (0, 1) for c in (0, 1)],
        dim=1,
    )
    if model.lp.scheme == 1:
        size = (image_size, image_size)
        return torch.stack([paste_into_boxes(quads[:, k], boxes[:, k] * 8, size) for k in range(4)], 1)
    return lbp_canvas_to_image(quads, boxes, grid, image_size)
