"""The AU-driven shapes of a SynthFER face in the canonical (frontal) plane: eyes, brows, mouth.

Lengths are face units (head half-height = 1). Action-unit magnitudes are written as fractions of the
inter-ocular distance (IOD, pupil to pupil; ``2·eye_sep`` ≈ 0.55 face units) at full intensity (FACS
intensity E). The *directions* of every movement follow the appearance changes that the FACS manual
describes for each action unit (Ekman, Friesen & Hager, *Facial Action Coding System*, 2002); FACS
scores intensity on the A–E scale and gives no millimetre values, so the magnitudes are ferlib's
choices, sized so that a full-intensity action is as visible at 64 px as in posed photographs:

====  ======================================================  ====================================
AU    appearance change (FACS description, paraphrased)       full-intensity magnitude (× IOD)
====  ======================================================  ====================================
1     inner brow raised; brow becomes oblique                 inner end up 0.22, middle 0.08
2     outer brow raised                                       outer end up 0.2, middle 0.1
4     brows lowered and drawn together; vertical furrow       down 0.14, inner ends 0.09 inward
5     upper lid raised, sclera shows above the iris           upper-lid aperture × 1.9
6     cheeks raised; lower lid pushed up; eye narrows         cheek up 0.12, lower lid × 0.45
7     lids tightened, lower lid straightened                  upper × 0.7, lower × 0.55
9     nose wrinkled, nostrils and upper lip raised, brows     upper lip up 0.06, nostrils up 0.04,
      pulled down at the inner end                            inner brow down 0.1
12    lip corners pulled up and out; nasolabial deepens       up 0.18, out 0.14
14    corners tightened, dimple                               inward 0.04, up 0.06
15    lip corners pulled down                                 down 0.16
16    lower lip pulled down                                   lower lip down 0.05
20    lips stretched sideways                                 out 0.18, down 0.04
23    lips tightened, red part narrowed                       inward 0.09, lips × 0.55
26    jaw dropped, lips parted                                opening 0.48
====  ======================================================  ====================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ferlib.data.synthfer.expressions import AU_INDEX
from ferlib.data.synthfer.parameters import Identity

_T11 = np.linspace(-1, 1, 11)
_T13 = np.linspace(-1, 1, 13)
_CIRCLE16 = np.column_stack(
    [np.cos(np.linspace(0, 2 * np.pi, 16, endpoint=False)), np.sin(np.linspace(0, 2 * np.pi, 16, endpoint=False))]
)


def arc(t: np.ndarray, power: float) -> np.ndarray:
    """(1 - t²)^power for t in [-1, 1]: the profile of lids and lips."""
    return np.power(np.maximum(1 - t * t, 0.0), power)


def iod(ident: Identity) -> float:
    """Inter-ocular distance (pupil to pupil) in face units."""
    return 2.0 * ident.eye_sep


def eye_shape(ident: Identity, au: np.ndarray, side: int) -> dict[str, Any]:
    """Sclera outline, iris, pupil and upper lid of one eye in the canonical plane.

    side 0 = subject's right eye (image left, x < 0), 1 = subject's left eye (image right)."""
    a = lambda k: float(au[AU_INDEX[k], side])  # noqa: E731
    s = -1.0 if side == 0 else 1.0
    cx, cy = s * ident.eye_sep, ident.eye_y
    w = ident.eye_w
    pupil_r = ident.iris_r * 0.42
    # AU5 raises the upper lid, AU7 tightens both lids, AU6 pushes the lower lid up and narrows the eye,
    # AU4 lowers the upper lid a little.
    h_up = ident.eye_h * (1 + 0.9 * a(5) - 0.3 * a(7) - 0.25 * a(4) - 0.2 * a(6))
    h_lo = 0.75 * ident.eye_h * (1 + 0.25 * a(5) - 0.55 * a(6) - 0.45 * a(7))
    h_up = max(h_up, 1.3 * pupil_r)
    h_lo = max(h_lo, 1.1 * pupil_r)
    t = _T11
    upper = np.column_stack([cx + w * t, cy - h_up * arc(t, 0.7)])
    lower = np.column_stack([cx + w * t[::-1], cy + h_lo * arc(t[::-1], 0.8)])
    sclera = np.concatenate([upper, lower[1:-1]])

    def clip_to_eye(pts: np.ndarray) -> np.ndarray:
        tt = np.clip((pts[:, 0] - cx) / w, -1, 1)
        x = cx + w * tt
        y = np.clip(pts[:, 1], cy - h_up * arc(tt, 0.7), cy + h_lo * arc(tt, 0.8))
        return np.column_stack([x, y])

    return {
        "sclera": sclera,
        "iris": clip_to_eye(_CIRCLE16 * ident.iris_r + [cx, cy]),
        "pupil": clip_to_eye(_CIRCLE16 * pupil_r + [cx, cy]),
        "lid": upper,
        "centre": np.array([[cx, cy]]),
        "corners": np.array([[cx - w, cy], [cx + w, cy]]),
        "top_bottom": np.array([[cx, cy - h_up], [cx, cy + h_lo]]),
        "h_up": h_up,
        "h_lo": h_lo,
    }


def brow_shape(ident: Identity, au: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Brow polygon and its (inner, mid, outer) points."""
    a = lambda k: float(au[AU_INDEX[k], side])  # noqa: E731
    s = -1.0 if side == 0 else 1.0
    d = iod(ident)
    base_y = ident.eye_y - ident.brow_gap
    inner = np.array([s * (ident.eye_sep - ident.eye_w * 0.95), base_y + 0.012])
    mid = np.array([s * (ident.eye_sep + 0.1 * ident.eye_w), base_y - 0.02])
    outer = np.array([s * (ident.eye_sep + ident.eye_w * 1.3), base_y + 0.012])
    # In the AU1+4 combination AU1 holds the inner end up while AU4 pulls it together and lowers the
    # rest: the oblique "sad" brow.
    a1, a2, a4, a9 = a(1), a(2), a(4), a(9)
    lower4 = 0.14 * d * a4
    inner = inner + [-s * 0.09 * d * a4, -0.22 * d * a1 + lower4 * (1 - 0.85 * a1) + 0.1 * d * a9]
    mid = mid + [-s * 0.03 * d * a4, -0.08 * d * a1 - 0.1 * d * a2 + lower4 + 0.06 * d * a9]
    outer = outer + [0.0, -0.2 * d * a2 + 0.6 * lower4]
    pts = np.stack([inner, mid, outer])
    th = ident.brow_th * np.array([1.0, 0.9, 0.5])
    poly = np.concatenate(
        [pts - np.column_stack([np.zeros(3), th / 2]), (pts + np.column_stack([np.zeros(3), th / 2]))[::-1]]
    )
    return poly, pts


def mouth_shape(ident: Identity, au: np.ndarray) -> dict[str, Any]:
    """Lips, mouth interior, teeth (only with AU12 or a wide AU26 opening), corners and lip points."""
    a = lambda k, sd: float(au[AU_INDEX[k], sd])  # noqa: E731
    d = iod(ident)
    corners = []
    for side in (0, 1):
        s = -1.0 if side == 0 else 1.0
        dx = d * (0.14 * a(12, side) + 0.18 * a(20, side) - 0.09 * a(23, side) - 0.04 * a(14, side))
        dy = d * (-0.18 * a(12, side) + 0.16 * a(15, side) + 0.04 * a(20, side) - 0.06 * a(14, side))
        corners.append([s * (ident.mouth_w + dx), ident.mouth_y + dy])
    (xl, yl), (xr, yr) = corners
    amax = lambda k: float(au[AU_INDEX[k]].max())  # noqa: E731
    a9, a12, a15, a16, a20, a23, a26 = (amax(k) for k in (9, 12, 15, 16, 20, 23, 26))
    t = _T13
    x = xl + (xr - xl) * (t + 1) / 2
    # Lip line through both corners; a smile curves it up at the corners (centre stays low), AU15 the other way.
    curv = d * (0.13 * a12 - 0.07 * a15) + 0.004
    y_line = yl + (yr - yl) * (t + 1) / 2 + curv * arc(t, 1.0)
    opening = d * (0.38 * a26 + 0.02 * a16 + 0.08 * a12 + 0.03 * a20 - 0.04 * a23)
    opening = max(opening, 0.0)
    thin = 1 - 0.45 * a23
    up_th = ident.lip_up * thin * (1 - 0.3 * a12)
    lo_th = ident.lip_lo * thin * (1 - 0.2 * a12)
    raise9 = 0.06 * d * a9  # AU9 raises the upper lip (centre), not the corners
    inner_top = y_line - 0.3 * opening * arc(t, 0.7) - raise9 * arc(t, 1.5)
    inner_bot = y_line + 0.7 * opening * arc(t, 0.7) + 0.05 * d * a16 * arc(t, 1.0)
    bow = 0.3 * up_th * np.exp(-((t / 0.18) ** 2))
    top = inner_top - up_th * arc(t, 0.6) + bow * arc(t, 0.6)
    bottom = inner_bot + lo_th * arc(t, 0.6)
    upper_lip = np.concatenate([np.column_stack([x, top]), np.column_stack([x, inner_top])[::-1]])
    lower_lip = np.concatenate([np.column_stack([x, inner_bot]), np.column_stack([x, bottom])[::-1]])
    interior = np.concatenate([np.column_stack([x, inner_top]), np.column_stack([x, inner_bot])[::-1]])
    # Upper teeth show in a smile (AU12 parts the lips: AU25) and under a wide jaw drop; not in disgust.
    teeth_h = np.minimum(inner_bot - inner_top, 0.03 + 0.02 * a12)
    teeth = np.concatenate([np.column_stack([x, inner_top]), np.column_stack([x, inner_top + teeth_h * 0.9])[::-1]])
    c = len(t) // 2
    return {
        "upper_lip": upper_lip,
        "lower_lip": lower_lip,
        "interior": interior,
        "teeth": teeth,
        "open": opening > 0.012,
        "teeth_show": a12 > 0.35 or a26 > 0.6,
        "corners": np.array(corners),
        "lip_points": np.array([[x[c], top[c]], [x[c], bottom[c]], [x[c], inner_top[c]], [x[c], inner_bot[c]]]),
        "below": np.array([[0.0, bottom[c] + 0.09]]),
        "bottom_y": float(bottom[c]),
    }
