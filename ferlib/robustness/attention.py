"""Attention under occlusion, measured: the share of each branch's Grad-CAM mass (and of the model's own attention
maps, where it has them) that lies on the occluder's pixels, on the visible face and on the background.

The papers argue it with pictures: FFRA-Net §4.5 (Figure 8) says attention moves away from random occluders,
AMP-Net and MA-Net show their local branches on the visible regions of RAN's occluded faces. Here it is a number
per face, summarised with a bootstrap interval over faces and split by whether the model was right.

:func:`mass_on_masks` is a pure function (any non-negative maps, any masks); the CAMs come from
pytorch-grad-cam through :func:`ferlib.explain.branch_cams`, the own maps from the model's ``aux`` outputs
(:func:`own_attention_maps`: LAN's attention map ``F_m``, MAN's region masks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ferlib.robustness.stats import N_RESAMPLES, paired_mean_interval

#: ``aux`` outputs that are a model's own spatial attention (B×h×w or B×N×h×w, non-negative): LAN's
#: ``attention_map`` (lan.txt, F_m in (0, 1)) and MAN's RASnet ``masks`` (man.txt; the mean over regions).
OWN_ATTENTION_KEYS: tuple[str, ...] = ("attention_map", "masks")


def mass_on_masks(maps: Any, occluder: Any, face: Any) -> dict[str, np.ndarray]:
    """Per image, where the mass of a non-negative map lies: ``on_occluder`` = Σ map·occluder / Σ map,
    ``on_visible_face`` = Σ map·(face ∧ ¬occluder) / Σ map, ``on_background`` = the rest; ``occluder_area`` =
    the occluder's share of the image and ``ratio`` = on_occluder / occluder_area (1: no preference, < 1: the
    map avoids the occluder). ``maps`` B×H×W (or H×W), masks of the same shape; a zero map gives NaN."""
    m = np.asarray(maps, dtype=np.float64)
    occ = np.asarray(occluder, dtype=bool)
    fc = np.asarray(face, dtype=bool)
    if m.shape != occ.shape or m.shape != fc.shape:
        raise ValueError(f"maps {m.shape}, occluder {occ.shape} and face {fc.shape} masks must have the same shape")
    if np.any(m < 0):
        raise ValueError("attention mass needs non-negative maps (CAMs after ReLU, attention weights)")
    axes = (-2, -1)
    total = m.sum(axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        on_occ = (m * occ).sum(axes) / total
        on_face = (m * (fc & ~occ)).sum(axes) / total
        area = occ.mean(axes)
        ratio = np.where(area > 0, on_occ / area, np.nan)
    return {
        "on_occluder": on_occ,
        "on_visible_face": on_face,
        "on_background": 1.0 - on_occ - on_face,
        "occluder_area": area,
        "ratio": ratio,
    }


@torch.no_grad()
def own_attention_maps(model: torch.nn.Module, images: torch.Tensor, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    """The model's own attention maps (:data:`OWN_ATTENTION_KEYS` of its ``aux``), up-sampled bilinearly to the
    image size: ``{"own:<key>": B×H×W}``; empty for a model without any."""
    out = model(images, **inputs)
    aux = getattr(out, "aux", None) or {}
    size = images.shape[-2:]
    maps = {}
    for key in OWN_ATTENTION_KEYS:
        a = aux.get(key)
        if not isinstance(a, torch.Tensor) or a.ndim not in (3, 4):
            continue
        a = a.float()
        if a.ndim == 4:
            a = a.mean(1)
        up = F.interpolate(a[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
        maps[f"own:{key}"] = up.clamp_min(0).cpu().numpy()
    return maps


def attention_records(
    model: torch.nn.Module,
    images: torch.Tensor,
    batch: dict[str, Any],
    predictions: np.ndarray,
    labels: np.ndarray,
    occluder: np.ndarray,
    face: np.ndarray,
    *,
    method: str = "GradCAM",
    branches: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """One record per face and map source (every CAM target of the model, each own attention map): the shares of
    :func:`mass_on_masks`, whether the prediction was correct. CAMs explain the predicted class.
    ``images``: normalised B×3×H×W; ``batch``: the landmarks the model needs."""
    from ferlib.explain import branch_cams
    from ferlib.models import model_inputs

    model.eval()
    sources = dict(
        branch_cams(model, images, batch, classes=[int(c) for c in predictions], method=method, branches=branches)
    )
    sources.update(own_attention_maps(model, images, model_inputs(model, batch)))
    records = []
    for source, maps in sources.items():
        shares = mass_on_masks(maps, occluder, face)
        for i in range(len(images)):
            records.append(
                {
                    "source": source,
                    "face": i,
                    "correct": bool(predictions[i] == labels[i]),
                    **{k: float(v[i]) for k, v in shares.items()},
                }
            )
    return records


def summarise_attention(
    records: Sequence[dict[str, Any]], keys: Sequence[str], *, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> list[dict[str, Any]]:
    """Mean share on the occluder and on the visible face, with bootstrap intervals over faces, per group of
    ``keys`` (e.g. model, condition, source) and for all / correct / wrong predictions."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    rows = []
    for key, rs in groups.items():
        for split, sel in (
            ("all", rs),
            ("correct", [r for r in rs if r["correct"]]),
            ("wrong", [r for r in rs if not r["correct"]]),
        ):
            row: dict[str, Any] = dict(zip(keys, key))
            row["predictions"] = split
            row["n"] = len(sel)
            for what in ("on_occluder", "on_visible_face", "ratio"):
                v = np.array([r[what] for r in sel], dtype=np.float64)
                v = v[np.isfinite(v)]
                row[what], row[f"{what}_low"], row[f"{what}_high"] = paired_mean_interval(
                    v, n_resamples=n_resamples, seed=seed
                )
            row["occluder_area"] = float(np.mean([r["occluder_area"] for r in sel])) if sel else float("nan")
            rows.append(row)
    return rows
