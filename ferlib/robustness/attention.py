"""Attention under occlusion, measured: the share of each branch's Grad-CAM mass (and of the model's own attention
maps, where it has them) that lies on the occluder's pixels, on the visible face and on the background.

The papers argue it with pictures: FFRA-Net §4.5 (Figure 8) says attention moves away from random occluders,
AMP-Net and MA-Net show their local branches on the visible regions of RAN's occluded faces. Here it is a number
per face, summarised with a bootstrap interval over faces and split by whether the model was right.

:func:`mass_on_masks` is a pure function (any non-negative maps, any masks); the CAMs come from
pytorch-grad-cam through :func:`ferlib.explain.branch_cams`, the own maps from the model's ``aux`` outputs
(:func:`own_attention_maps`, through :func:`ferlib.explain.attention_maps`: every family's own gates and maps).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ferlib.robustness.stats import N_RESAMPLES, paired_mean_interval


def mass_on_masks(maps: Any, occluder: Any, face: Any) -> dict[str, np.ndarray]:
    """Per image, where the mass of a non-negative map lies: ``on_occluder`` = Σ map·occluder / Σ map,
    ``on_visible_face`` = Σ map·(face ∧ ¬occluder) / Σ map, ``on_background`` = the rest; ``occluder_area`` =
    the occluder's share of the image and ``ratio`` = on_occluder / occluder_area (1: no preference, < 1: the
    map avoids the occluder). ``maps`` B×H×W, masks B×H×W; a map with no mass gives NaN (both shares come from
    :func:`ferlib.explain.mass_on_mask`)."""
    from ferlib.explain import mass_on_mask

    m = np.asarray(maps, dtype=np.float64)
    occ = np.asarray(occluder, dtype=bool)
    fc = np.asarray(face, dtype=bool)
    if m.shape != occ.shape or m.shape != fc.shape:
        raise ValueError(f"maps {m.shape}, occluder {occ.shape} and face {fc.shape} masks must have the same shape")
    on_occ = np.atleast_1d(mass_on_mask(m, occ))
    on_face = np.atleast_1d(mass_on_mask(m, fc & ~occ))
    area = np.atleast_1d(occ.mean((-2, -1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(area > 0, on_occ / np.where(area > 0, area, 1.0), np.nan)
    return {
        "on_occluder": on_occ,
        "on_visible_face": on_face,
        "on_background": 1.0 - on_occ - on_face,
        "occluder_area": area,
        "ratio": ratio,
    }


def own_attention_maps(model: torch.nn.Module, images: torch.Tensor, batch: dict[str, Any]) -> dict[str, np.ndarray]:
    """The network's own attention maps in image coordinates (:func:`ferlib.explain.attention_maps`: AMP-Net's LP
    and AP gates, MA-Net's local attention, LAN's ``F_m``, MAN's masks, FFRA-Net's shuffle attention), named
    ``own:<name>``; empty for a network without any."""
    from ferlib.explain import attention_maps

    with torch.no_grad():
        maps = attention_maps(model, images, batch.get("landmarks5"), batch.get("landmarks8"))
    return {f"own:{k}": np.clip(np.asarray(v, dtype=np.float64), 0, None) for k, v in maps.items()}


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

    model.eval()
    sources = dict(
        branch_cams(model, images, batch, classes=[int(c) for c in predictions], method=method, branches=branches)
    )
    sources.update(own_attention_maps(model, images, batch))
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
