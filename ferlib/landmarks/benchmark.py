"""How well a five-point detector finds faces whose true points are known, by condition (pose bin, occluder, class).

SynthFER renders every face with its exact five points (:mod:`ferlib.data.synthfer`), so a detector trained on
photographs (MTCNN) can be scored on it: how often it finds the face, and how far its points fall from the true
ones. ``benchmarks/synthfer_realism.py`` and notebook 01 use these functions; ``docs/synthfer.md`` records the
numbers ("Measured realism").

>>> from ferlib.data.synthfer import SynthFERDataset
>>> from ferlib.landmarks import create_detector
>>> table = detection_by_condition(SynthFERDataset(200, split="test"), create_detector("mtcnn"))
>>> table                       # one row per (yaw_bin, occluder): n, detected, rate, nme

Definitions (one home for each)
-------------------------------
* **Detected**: the detector returned a face whose box contains the true nose tip (slot 2); of several such
  faces the highest-scoring one is kept. A face found elsewhere in the image (a false positive on the
  background) does not count.
* **NME** (:func:`normalised_mean_error`): the mean Euclidean distance of the five detected points from the true
  ones, divided by the distance between the two true eye centres (slots 0 and 1) — the inter-ocular
  normalisation of the 300-W benchmark (Sagonas et al., Image and Vision Computing 47, 2016,
  doi:10.1016/j.imavis.2016.01.002), which for five points whose eye points are eye *centres* is the
  inter-pupil distance. A fraction (0.05 = 5 % of the inter-ocular distance); averaged over detected faces only.
* **Yaw bin** (:data:`YAW_BINS`): ``|yaw|`` in 15° steps, ``"0-15"``, ``"15-30"``, ``"30-45"``, ``"45-60"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ferlib.data.face_geometry import canonical_template
from ferlib.landmarks.base import Detector, Face, create_detector

#: Edges (degrees of |yaw|) of the pose bins; SynthFER's yaw never exceeds 60°.
YAW_BINS: tuple[float, ...] = (0.0, 15.0, 30.0, 45.0, 60.0)
YAW_BIN_LABELS: tuple[str, ...] = tuple(f"{a:.0f}-{b:.0f}" for a, b in zip(YAW_BINS[:-1], YAW_BINS[1:]))

#: Columns of :func:`detection_records` one may group by.
GROUP_KEYS = ("yaw_bin", "occluder", "label", "class_name", "split")


def inter_ocular_distance(points5: Any) -> np.ndarray:
    """Distance between the two eye points (slots 0 and 1) of 5×2 (or N×5×2) points, in pixels."""
    p = np.asarray(points5, dtype=np.float64)
    return np.linalg.norm(p[..., 0, :] - p[..., 1, :], axis=-1)


def normalised_mean_error(predicted: Any, truth: Any) -> np.ndarray:
    """NME of 5×2 (or N×5×2) predicted points against the true ones: the mean point distance divided by
    the true inter-ocular distance (see the module docstring). A float array (0-d for one face)."""
    pred = np.asarray(predicted, dtype=np.float64)
    true = np.asarray(truth, dtype=np.float64)
    if pred.shape != true.shape or pred.shape[-2:] != (5, 2):
        raise ValueError(f"normalised_mean_error needs matching …×5×2 arrays, got {pred.shape} and {true.shape}")
    iod = inter_ocular_distance(true)
    if np.any(iod <= 0):
        raise ValueError("normalised_mean_error: the true eye points coincide (inter-ocular distance 0)")
    return np.linalg.norm(pred - true, axis=-1).mean(axis=-1) / iod


def yaw_bin(yaw: float) -> str:
    """The :data:`YAW_BIN_LABELS` entry of a yaw angle in degrees (by ``|yaw|``; 60° falls in the last bin)."""
    a = abs(float(yaw))
    for lo, hi, label in zip(YAW_BINS[:-1], YAW_BINS[1:], YAW_BIN_LABELS):
        if lo <= a < hi:
            return label
    if a == YAW_BINS[-1]:
        return YAW_BIN_LABELS[-1]
    raise ValueError(f"yaw {yaw}° is outside the binned range ±{YAW_BINS[-1]:.0f}°")


def matching_face(faces: Sequence[Face], truth5: Any) -> Face | None:
    """The highest-scoring face whose box contains the true nose tip (slot 2 of ``truth5``), or None."""
    nose = np.asarray(truth5, dtype=np.float64).reshape(5, 2)[2]
    inside = [f for f in faces if f.box[0] <= nose[0] <= f.box[2] and f.box[1] <= nose[1] <= f.box[3]]
    return max(inside, key=lambda f: f.score) if inside else None


def _resolve_detector(detector: Detector | str) -> Detector:
    return create_detector(detector) if isinstance(detector, str) else detector


def detection_records(
    dataset: Any,
    detector: Detector | str = "mtcnn",
    indices: Sequence[int] | None = None,
    batch_size: int = 16,
) -> pd.DataFrame:
    """One row per sample: ``index, label, class_name, split, yaw, pitch, yaw_bin, occluder, detected, score, nme``.

    ``dataset`` yields ferlib sample dicts with ``image``, ``landmarks5`` (the truth) and ``meta`` (``yaw``,
    ``pitch``, ``occlusion``); SynthFER does. ``nme`` is NaN where the face was not detected.
    """
    det = _resolve_detector(detector)
    idx = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    names = getattr(dataset, "class_names", None)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(idx), batch_size):
        chunk = idx[start : start + batch_size]
        samples = [dataset[i] for i in chunk]
        found = det.detect([s["image"] for s in samples])
        for i, s, faces in zip(chunk, samples, found):
            truth = np.asarray(s["landmarks5"], dtype=np.float64).reshape(5, 2)
            meta = s.get("meta", {})
            face = matching_face(faces, truth)
            label = int(s["label"]) if "label" in s else -1
            rows.append(
                {
                    "index": i,
                    "label": label,
                    "class_name": names[label] if names is not None and 0 <= label < len(names) else str(label),
                    "split": meta.get("split", ""),
                    "yaw": float(meta.get("yaw", 0.0)),
                    "pitch": float(meta.get("pitch", 0.0)),
                    "yaw_bin": yaw_bin(meta.get("yaw", 0.0)),
                    "occluder": str(meta.get("occlusion", "none")),
                    "detected": face is not None,
                    "score": face.score if face is not None else float("nan"),
                    "nme": float(normalised_mean_error(face.landmarks5, truth)) if face is not None else float("nan"),
                }
            )
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["yaw_bin"] = pd.Categorical(frame["yaw_bin"], categories=list(YAW_BIN_LABELS), ordered=True)
    return frame


def summarise_detection(records: pd.DataFrame, by: Sequence[str] | str = ("yaw_bin", "occluder")) -> pd.DataFrame:
    """Group :func:`detection_records` rows by ``by``: columns ``*by, n, detected, rate, nme``.

    ``rate`` = detected / n; ``nme`` = mean NME of the detected faces (NaN where none was detected). Empty
    groups are left out; ``by=()`` gives one row for all samples.
    """
    keys = [by] if isinstance(by, str) else list(by)
    unknown = [k for k in keys if k not in records.columns]
    if unknown:
        raise ValueError(f"cannot group detections by {unknown}; columns are {list(records.columns)}")
    if not keys:
        records = records.assign(_all="all")
        keys_ = ["_all"]
    else:
        keys_ = keys
    grouped = records.groupby(keys_, observed=True, sort=True)
    out = pd.DataFrame(
        {
            "n": grouped.size(),
            "detected": grouped["detected"].sum().astype(int),
            "nme": grouped["nme"].mean(),
        }
    ).reset_index()
    out["rate"] = out["detected"] / out["n"]
    out = out[[*keys_, "n", "detected", "rate", "nme"]]
    return out.drop(columns="_all") if not keys else out


def detection_by_condition(
    dataset: Any,
    detector: Detector | str = "mtcnn",
    indices: Sequence[int] | None = None,
    by: Sequence[str] | str = ("yaw_bin", "occluder"),
) -> pd.DataFrame:
    """Detection rate and NME per condition: :func:`summarise_detection` of :func:`detection_records`.

    Columns: the ``by`` keys (any of :data:`GROUP_KEYS`), ``n``, ``detected``, ``rate`` (fraction) and ``nme``
    (fraction of the inter-ocular distance, detected faces only). To group one detection pass several ways,
    call :func:`detection_records` once and :func:`summarise_detection` per grouping.
    """
    return summarise_detection(detection_records(dataset, detector, indices), by)


def template_offset(
    dataset: Any,
    indices: Sequence[int] | None = None,
    max_abs_yaw: float | None = 10.0,
    max_abs_pitch: float | None = 10.0,
) -> dict[str, Any]:
    """How far the true 5 points of (near-)frontal faces sit from the ArcFace template scaled to the image.

    The papers align every face so its five points land on ArcFace's template (Deng et al., CVPR 2019,
    doi:10.1109/CVPR.2019.00482; :data:`ferlib.data.face_geometry.TEMPLATE_112`), so an aligned-photo-like
    dataset's frontal faces should have their mean points on it with a few pixels of spread. Faces with
    ``|yaw| > max_abs_yaw`` or ``|pitch| > max_abs_pitch`` (from ``meta``; None = no limit) are left out.

    Returns a JSON-ready dict: ``n``, ``image_size`` (H, W), ``template`` and ``mean_points`` (5×2 px),
    ``offset`` (mean − template, 5×2 px), ``mean_offset_px`` (mean over the 5 points of ``|offset|``),
    ``spread_px`` (root-mean-square distance of the points from their per-point mean), ``mean_distance_px``
    (the mean over faces and points of the distance from the template), ``inter_ocular_px`` and
    ``eye_to_mouth_px`` of the mean points beside the template's.
    """
    idx = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    points, size = [], None
    for i in idx:
        s = dataset[i]
        meta = s.get("meta", {})
        if max_abs_yaw is not None and abs(float(meta.get("yaw", 0.0))) > max_abs_yaw:
            continue
        if max_abs_pitch is not None and abs(float(meta.get("pitch", 0.0))) > max_abs_pitch:
            continue
        h, w = tuple(np.asarray(s["image"]).shape[-2:])
        if size is not None and size != (h, w):
            raise ValueError(f"template_offset needs one image size, got {size} and {(h, w)}")
        size = (h, w)
        points.append(np.asarray(s["landmarks5"], dtype=np.float64).reshape(5, 2))
    if not points:
        raise ValueError("template_offset: no sample within the pose limits; widen max_abs_yaw/max_abs_pitch")
    pts = np.stack(points)
    template = canonical_template(size).astype(np.float64)
    mean = pts.mean(axis=0)
    offset = mean - template

    def eye_mouth(p: np.ndarray) -> float:
        return float(np.linalg.norm((p[3] + p[4]) / 2 - (p[0] + p[1]) / 2))

    return {
        "n": len(pts),
        "image_size": list(size),
        "template": template.round(3).tolist(),
        "mean_points": mean.round(3).tolist(),
        "offset": offset.round(3).tolist(),
        "mean_offset_px": float(np.linalg.norm(offset, axis=1).mean()),
        "spread_px": float(np.sqrt((np.linalg.norm(pts - mean, axis=2) ** 2).mean())),
        "mean_distance_px": float(np.linalg.norm(pts - template, axis=2).mean()),
        "inter_ocular_px": float(inter_ocular_distance(mean)),
        "template_inter_ocular_px": float(inter_ocular_distance(template)),
        "eye_to_mouth_px": eye_mouth(mean),
        "template_eye_to_mouth_px": eye_mouth(template),
    }


__all__ = [
    "GROUP_KEYS",
    "YAW_BINS",
    "YAW_BIN_LABELS",
    "detection_by_condition",
    "detection_records",
    "inter_ocular_distance",
    "matching_face",
    "normalised_mean_error",
    "summarise_detection",
    "template_offset",
    "yaw_bin",
]
