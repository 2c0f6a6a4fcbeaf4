"""Pure face geometry shared by the data loaders, SynthFER, landmarks and occluders: the one 5-point template,
the one similarity fit, the one 68→5 (and 68→8) conversion and the box convention.

It sits on the lowest floor (``ferlib.data``) so that loaders, :mod:`ferlib.landmarks` and
:mod:`ferlib.data.occlusion` all import it without importing each other.

Side convention
---------------
In code ferlib names sides **as the image shows them**: ``image_left`` is the side with the smaller
x. The five points keep RetinaFace's slot order (:data:`ferlib.data.schema.LANDMARK5_NAMES`, whose
names ``right_eye``/``right_mouth`` are the *subject's* right, i.e. the image's left):

====  ====================  ============================
slot  image side            RetinaFace / schema name
====  ====================  ============================
0     image-left eye        ``right_eye`` (subject's)
1     image-right eye       ``left_eye``
2     nose tip              ``nose``
3     image-left mouth      ``right_mouth``
4     image-right mouth     ``left_mouth``
====  ====================  ============================

The iBUG 68-point scheme numbers the image-left eye 36–41 (the subject's right eye) and the image-right eye
42–47; the 8 MAN points (:data:`ferlib.data.schema.LANDMARK8_NAMES`) are already named by image side.

Boxes
-----
Boxes are ``[x1, y1, x2, y2]`` in pixels (torchvision's ``xyxy``); convert other layouts with
``torchvision.ops.box_convert`` (:func:`xywh_to_xyxy` is the one numpy case the loaders need: AffectNet's
``face_x, face_y, face_width, face_height``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# --------------------------------------------------------------------------------------------
# The template
# --------------------------------------------------------------------------------------------

#: ArcFace's 5-point template for a 112×112 crop (Deng et al., CVPR 2019), slot order above
#: (image-left eye first). Every template in ferlib is this one, scaled.
TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)

#: ferlib's model input size and the template at that size.
CANONICAL_SIZE = 224
CANONICAL_TEMPLATE_224 = TEMPLATE_112 * (CANONICAL_SIZE / 112.0)


def canonical_template(size: int | tuple[int, int] = CANONICAL_SIZE) -> np.ndarray:
    """The template scaled to an output of ``size`` (int, or (height, width)): 5×2 float32 pixels.

    Non-square sizes scale x by width/112 and y by height/112. This is also where ferlib puts the
    points of an already aligned crop whose face no detector found (the no-face fallback).
    """
    h, w = (size, size) if isinstance(size, int) else size
    return (TEMPLATE_112 * np.array([w / 112.0, h / 112.0], dtype=np.float32)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# The similarity fit
# --------------------------------------------------------------------------------------------


def fit_similarity(src: Any, dst: Any) -> np.ndarray:
    """Least-squares similarity ``dst ≈ s·R·src + t`` (Umeyama 1991, Eqs. 40–42; no reflection).

    ``src``, ``dst``: N×2 (N ≥ 2). Returns the 2×3 matrix ``[s·R | t]``. With N = 2 the fit is
    exact (two points fix a similarity). Raises ``ValueError`` for NaN points (unknown landmarks)
    or coinciding source points.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"fit_similarity needs two N×2 arrays with N ≥ 2, got {src.shape} and {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError(
            "cannot fit a similarity: landmarks contain NaN (unknown); extract them first (`ferlib landmarks`)"
        )
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    var_s = (a**2).sum() / len(src)
    if var_s <= 0:
        raise ValueError(f"fit_similarity: source points coincide ({src.tolist()}); a similarity cannot be estimated")
    cov = b.T @ a / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    scale = (d * sign).sum() / var_s
    t = mu_d - scale * rot @ mu_s
    return np.concatenate([scale * rot, t[:, None]], axis=1)


def similarity_matrix(src: Any, dst: Any) -> np.ndarray:
    """:func:`fit_similarity` as a 3×3 homogeneous matrix (float64), the form ``skimage.transform.warp`` takes."""
    m = np.eye(3)
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    m[:2] = fit_similarity(src, np.asarray(dst, dtype=np.float64).reshape(-1, 2))
    return m


def apply_affine(matrix: np.ndarray, points: Any) -> np.ndarray:
    """Apply a 2×3 affine (or 3×3 homogeneous) matrix to N×2 points; float64 N×2."""
    m = np.asarray(matrix, dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if m.shape == (3, 3):
        homog = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ m.T
        return homog[:, :2] / homog[:, 2:3]
    return pts @ m[:, :2].T + m[:, 2]


# --------------------------------------------------------------------------------------------
# 68 → 5 and 68 → 8
# --------------------------------------------------------------------------------------------

#: iBUG 300-W 68-point indices (0-based) behind the five points: eye centres are the means of the
#: six eye-contour points; 36–41 is the image-left eye (the subject's right).
IBUG68_EYE_IMAGE_LEFT = tuple(range(36, 42))
IBUG68_EYE_IMAGE_RIGHT = tuple(range(42, 48))
IBUG68_NOSE_TIP = 30
IBUG68_MOUTH_IMAGE_LEFT = 48
IBUG68_MOUTH_IMAGE_RIGHT = 54
#: 68-point indices of the 8 MAN points (man.txt Fig. 4): nose tip; image-left eye outer and inner
#: corners; image-right eye inner and outer corners; mouth corners; the lower-lip centre as the
#: point below the mouth.
IBUG68_TO_LANDMARKS8 = (30, 36, 39, 42, 45, 48, 54, 57)


def landmarks68_to_5(points68: Any) -> np.ndarray:
    """68 iBUG points (68×2, e.g. CK+ ``*_landmarks.txt``) → 5×2 float32 in slot order.

    Eye centres are the means of the six eye-contour points; nose and mouth corners are single
    points (tip 30, corners 48 and 54). Also accepts a batch ``N×68×2`` → ``N×5×2`` and a flat 136-vector.
    Computed in float32, as the loaders always did (their samples stay bit-identical).
    """
    pts = np.asarray(points68, dtype=np.float32)
    if pts.shape[-2:] != (68, 2):
        if pts.size == 136:
            pts = pts.reshape(68, 2)
        else:
            raise ValueError(f"expected 68×2 iBUG landmarks (e.g. CK+ Landmarks files), got shape {pts.shape}")
    out = np.stack(
        [
            pts[..., IBUG68_EYE_IMAGE_LEFT, :].mean(axis=-2),
            pts[..., IBUG68_EYE_IMAGE_RIGHT, :].mean(axis=-2),
            pts[..., IBUG68_NOSE_TIP, :],
            pts[..., IBUG68_MOUTH_IMAGE_LEFT, :],
            pts[..., IBUG68_MOUTH_IMAGE_RIGHT, :],
        ],
        axis=-2,
    )
    return out.astype(np.float32)


def landmarks68_to_8(points68: Any) -> np.ndarray:
    """The 8 MAN points (:data:`ferlib.data.schema.LANDMARK8_NAMES`) from 68 iBUG points."""
    p = np.asarray(points68, dtype=np.float32).reshape(68, 2)
    return p[list(IBUG68_TO_LANDMARKS8)].astype(np.float32)


def order_landmarks5_by_x(points: Any) -> np.ndarray:
    """Put each eye pair and mouth-corner pair in image-left, image-right order (the slot order)."""
    p = np.asarray(points, dtype=np.float32).reshape(5, 2).copy()
    if p[0, 0] > p[1, 0]:
        p[[0, 1]] = p[[1, 0]]
    if p[3, 0] > p[4, 0]:
        p[[3, 4]] = p[[4, 3]]
    return p


# --------------------------------------------------------------------------------------------
# Boxes (xyxy)
# --------------------------------------------------------------------------------------------


def xywh_to_xyxy(box: Any) -> np.ndarray:
    """``[x, y, w, h]`` → ``[x1, y1, x2, y2]`` float64 (torchvision's ``box_convert(..., "xywh", "xyxy")``)."""
    x, y, w, h = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    return np.array([x, y, x + w, y + h], dtype=np.float64)


def box_around_points(points: Any, margin: float = 0.6) -> np.ndarray:
    """An xyxy face box for 5 points: their extent grown by ``margin`` × the inter-ocular distance."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    iod = float(np.linalg.norm(pts[1] - pts[0])) or 1.0
    lo, hi = pts.min(axis=0) - margin * iod, pts.max(axis=0) + margin * iod
    return np.array([lo[0], lo[1], hi[0], hi[1]], dtype=np.float32)


__all__ = [
    "CANONICAL_SIZE",
    "CANONICAL_TEMPLATE_224",
    "IBUG68_EYE_IMAGE_LEFT",
    "IBUG68_EYE_IMAGE_RIGHT",
    "IBUG68_MOUTH_IMAGE_LEFT",
    "IBUG68_MOUTH_IMAGE_RIGHT",
    "IBUG68_NOSE_TIP",
    "IBUG68_TO_LANDMARKS8",
    "TEMPLATE_112",
    "apply_affine",
    "box_around_points",
    "canonical_template",
    "fit_similarity",
    "landmarks68_to_5",
    "landmarks68_to_8",
    "order_landmarks5_by_x",
    "similarity_matrix",
    "xywh_to_xyxy",
]
