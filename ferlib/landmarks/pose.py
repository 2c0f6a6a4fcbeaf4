"""Head pose (yaw, pitch) from the five points, and pose subsets like the RAN lists.

The RAN benchmark lists (Pose-RAF-DB, Pose-AffectNet, Pose-FERPlus; used by AMP-Net, MA-Net and
LAN) select test faces turned by more than 30° or 45°. ferlib estimates the pose of any face
from its five points so such subsets can be built on any dataset.

Geometry. With eye midpoint E, mouth midpoint M, inter-ocular distance d = |left eye − right eye|
and the midline direction u = (M − E)/|M − E| (v ⟂ u, pointing to the image's right):

* yaw feature   f_yaw   = ((N − E) · v) / d       — the nose tip leaves the eye–mouth midline
  sideways by depth·sin(yaw) while d shrinks with cos(yaw), so f_yaw ≈ g_yaw · tan(yaw) + o_yaw;
* pitch feature f_pitch = ((N − E) · u) / |M − E| — where the nose tip sits between the eyes and
  the mouth; nodding moves it by depth·sin(pitch) while |M − E| shrinks with cos(pitch), so
  f_pitch ≈ g_pitch · tan(pitch) + o_pitch.

Both are invariant to in-plane rotation (roll), translation and scale. The gains and offsets
are fitted by least squares (:func:`calibrate_pose`) on SynthFER, whose true pose is known;
:data:`DEFAULT_CALIBRATION` holds that fit and ``docs/landmarks.md`` reports its error. SynthFER is
synthetic: real faces' nose depth differs, so treat the angles as estimates (refit on a dataset
with known pose, e.g. KDEF's angle codes, for a better calibration).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PoseCalibration:
    """Linear maps from the pose features to tan(angle): ``f = gain · tan(angle) + offset``."""

    yaw_gain: float
    yaw_offset: float
    pitch_gain: float
    pitch_offset: float
    source: str = ""


#: Fitted by :func:`calibrate_on_synthfer` (SynthFER train split, seed 0, n = 2000, no occlusion or
#: degradation, yaw uniform in ±55°, pitch in ±25°). SynthFER is synthetic; docs/landmarks.md
#: reports the error, and ``tests/landmarks/test_landmarks_pose.py`` refits and checks these constants.
DEFAULT_CALIBRATION = PoseCalibration(
    yaw_gain=0.5510,
    yaw_offset=-0.0010,
    pitch_gain=0.5202,
    pitch_offset=0.4811,
    source="SynthFER (synthetic) train seed 0 n=2000, yaw ±55°, pitch ±25°",
)

#: Pose ranges of the calibration set: wider than SynthFER's defaults so ≥45° faces are covered.
SYNTHFER_CALIBRATION_RANGES = {"yaw_range": (-55.0, 55.0), "pitch_range": (-25.0, 25.0)}


def synthfer_pose_dataset(n: int, seed: int = 0, split: str = "train", image_size: int = 64) -> Any:
    """SynthFER faces (synthetic) with known pose over :data:`SYNTHFER_CALIBRATION_RANGES`, clean."""
    import dataclasses

    from ferlib.data.synthfer import CLEAN_CONFIG, SynthFERDataset

    cfg = dataclasses.replace(CLEAN_CONFIG, **SYNTHFER_CALIBRATION_RANGES)
    return SynthFERDataset(n=n, seed=seed, split=split, image_size=image_size, config=cfg)


def calibrate_on_synthfer(n: int = 2000, seed: int = 0, image_size: int = 64) -> PoseCalibration:
    """Refit :data:`DEFAULT_CALIBRATION` on SynthFER's training split (takes ~4 s for n = 2000)."""
    ds = synthfer_pose_dataset(n, seed, "train", image_size)
    return calibrate_pose(ds, source=f"SynthFER (synthetic) train seed {seed} n={n}, yaw ±55°, pitch ±25°")


def pose_features(landmarks5: Any) -> tuple[np.ndarray, np.ndarray]:
    """(f_yaw, f_pitch) for 5×2 or N×5×2 points (see the module docstring); NaN where unknown."""
    pts = np.asarray(landmarks5, dtype=np.float64)
    single = pts.ndim == 2
    pts = pts.reshape(-1, 5, 2)
    re, le, nose, rm, lm = (pts[:, i] for i in range(5))
    eyes = (re + le) / 2
    mouth = (rm + lm) / 2
    axis = mouth - eyes
    height = np.linalg.norm(axis, axis=1)
    iod = np.linalg.norm(le - re, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        u = axis / height[:, None]
        v = np.stack([u[:, 1], -u[:, 0]], axis=1)  # ⟂ u; (1, 0) = image right for an upright face
        rel = nose - eyes
        f_yaw = np.einsum("ij,ij->i", rel, v) / iod
        f_pitch = np.einsum("ij,ij->i", rel, u) / height
    if single:
        return f_yaw[0], f_pitch[0]
    return f_yaw, f_pitch


def estimate_pose(landmarks5: Any, calibration: PoseCalibration | None = None) -> tuple[Any, Any]:
    """(yaw_deg, pitch_deg) from 5×2 points (floats) or N×5×2 (arrays); NaN for unknown points.

    Signs follow the calibration data (SynthFER's ``meta['yaw']``/``['pitch']`` convention).
    """
    cal = calibration or DEFAULT_CALIBRATION
    f_yaw, f_pitch = pose_features(landmarks5)
    yaw = np.degrees(np.arctan((np.asarray(f_yaw) - cal.yaw_offset) / cal.yaw_gain))
    pitch = np.degrees(np.arctan((np.asarray(f_pitch) - cal.pitch_offset) / cal.pitch_gain))
    if np.ndim(yaw) == 0:
        return float(yaw), float(pitch)
    return yaw, pitch


def fit_pose_calibration(landmarks5: Any, yaw_deg: Any, pitch_deg: Any, source: str = "") -> PoseCalibration:
    """Least-squares calibration of ``f = gain · tan(angle) + offset`` for yaw and pitch (NaN rows dropped)."""
    f_yaw, f_pitch = pose_features(np.asarray(landmarks5).reshape(-1, 5, 2))
    fits = []
    for feat, angle in ((f_yaw, yaw_deg), (f_pitch, pitch_deg)):
        t = np.tan(np.radians(np.asarray(angle, dtype=np.float64)))
        ok = np.isfinite(feat) & np.isfinite(t)
        if ok.sum() < 3:
            raise ValueError(f"need at least 3 faces with known landmarks and pose to calibrate, got {int(ok.sum())}")
        # Regress tan(angle) on the feature (the direction the estimate is used in: it minimises
        # the estimate's squared error), tan = a·f + b, then express it as f = gain·tan + offset.
        design = np.stack([feat[ok], np.ones(int(ok.sum()))], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, t[ok], rcond=None)
        if abs(a) < 1e-12:
            raise ValueError("pose features do not vary with the given pose; cannot calibrate")
        fits.append((float(1.0 / a), float(-b / a)))
    return PoseCalibration(fits[0][0], fits[0][1], fits[1][0], fits[1][1], source=source)


def _dataset_landmarks_and_pose(dataset: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lms, yaws, pitches = [], [], []
    for i in range(len(dataset)):
        s = dataset[i]
        meta = s.get("meta") or {}
        lms.append(np.asarray(s["landmarks5"], dtype=np.float64).reshape(5, 2))
        yaws.append(float(meta.get("yaw", np.nan)))
        pitches.append(float(meta.get("pitch", np.nan)))
    return np.stack(lms), np.asarray(yaws), np.asarray(pitches)


def calibrate_pose(dataset: Sequence[Mapping[str, Any]], source: str = "") -> PoseCalibration:
    """Fit :class:`PoseCalibration` on a dataset whose samples carry ``landmarks5`` and meta yaw/pitch."""
    lm, yaw, pitch = _dataset_landmarks_and_pose(dataset)
    return fit_pose_calibration(lm, yaw, pitch, source=source)


def pose_errors(dataset: Sequence[Mapping[str, Any]], calibration: PoseCalibration | None = None) -> dict[str, float]:
    """Mean absolute error (degrees) of :func:`estimate_pose` against the dataset's known pose."""
    lm, yaw, pitch = _dataset_landmarks_and_pose(dataset)
    est_yaw, est_pitch = estimate_pose(lm, calibration)
    ok_y = np.isfinite(est_yaw) & np.isfinite(yaw)
    ok_p = np.isfinite(est_pitch) & np.isfinite(pitch)
    return {
        "yaw_mae_deg": float(np.abs(est_yaw - yaw)[ok_y].mean()),
        "pitch_mae_deg": float(np.abs(est_pitch - pitch)[ok_p].mean()),
        "yaw_max_err_deg": float(np.abs(est_yaw - yaw)[ok_y].max()),
        "pitch_max_err_deg": float(np.abs(est_pitch - pitch)[ok_p].max()),
        "n": int(ok_y.sum()),
    }


def pose_subset(
    source: Any,
    min_abs_yaw: float | None = 30.0,
    min_abs_pitch: float | None = None,
    calibration: PoseCalibration | None = None,
) -> list:
    """Select faces turned at least ``min_abs_yaw`` (or nodding at least ``min_abs_pitch``) degrees.

    ``source`` may be:

    * an array N×5×2 of points → list of indices;
    * a landmarks table (:class:`~ferlib.landmarks.extract.LandmarkTable` or the dict of
      :func:`~ferlib.landmarks.extract.load_landmarks_file`) → list of record keys (records without
      real points — ``no_face`` fallbacks, unreadable images — are left out);
    * a dataset of samples with ``landmarks5`` → list of indices.

    A face is selected when ``|yaw| ≥ min_abs_yaw`` or ``|pitch| ≥ min_abs_pitch`` (a ``None``
    threshold is not used), as the RAN pose lists (> 30°, > 45°) select by head pose.
    """
    if min_abs_yaw is None and min_abs_pitch is None:
        raise ValueError("give min_abs_yaw and/or min_abs_pitch")
    keys: list
    if isinstance(source, np.ndarray) or (isinstance(source, (list, tuple)) and source and np.ndim(source[0]) == 2):
        pts = np.asarray(source, dtype=np.float64).reshape(-1, 5, 2)
        keys = list(range(len(pts)))
    elif hasattr(source, "records") or isinstance(source, Mapping):
        records = source.records if hasattr(source, "records") else source
        keys, rows = [], []
        for k, r in records.items():
            if r.get("landmarks5") is None or r.get("fallback"):
                continue
            keys.append(k)
            rows.append(r["landmarks5"])
        pts = np.asarray(rows, dtype=np.float64).reshape(-1, 5, 2)
    else:
        keys = list(range(len(source)))
        pts = (
            np.stack([np.asarray(source[i]["landmarks5"], dtype=np.float64).reshape(5, 2) for i in keys])
            if keys
            else np.zeros((0, 5, 2))
        )
    if len(pts) == 0:
        return []
    yaw, pitch = estimate_pose(pts, calibration)
    yaw, pitch = np.atleast_1d(yaw), np.atleast_1d(pitch)
    chosen = np.zeros(len(pts), dtype=bool)
    if min_abs_yaw is not None:
        chosen |= np.abs(yaw) >= min_abs_yaw
    if min_abs_pitch is not None:
        chosen |= np.abs(pitch) >= min_abs_pitch
    return [k for k, c in zip(keys, chosen) if c]
