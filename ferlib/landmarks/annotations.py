"""``annotations`` backend: the landmarks a dataset ships, behind the same :class:`Detector` interface.

RAF-DB ships five manual points per image, CK+ ships 68 points per frame (converted to five with
:func:`landmarks68_to_5`), and SynthFER knows its points exactly. The loaders put them in the
sample's ``landmarks5`` (or 68 points in ``landmarks``); this backend reads them, so extraction,
alignment and pose subsets work the same way whichever source the points come from.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ferlib.landmarks.base import Detector, Face, register_detector

#: iBUG 300-W 68-point indices (0-based) forming the five RetinaFace points. The 68-point scheme
#: numbers the subject's right eye (image left) 36–41 and the left eye 42–47; 30 is the nose tip;
#: 48 and 54 are the subject's right and left mouth corners.
IBUG68_RIGHT_EYE = tuple(range(36, 42))
IBUG68_LEFT_EYE = tuple(range(42, 48))
IBUG68_NOSE_TIP = 30
IBUG68_RIGHT_MOUTH = 48
IBUG68_LEFT_MOUTH = 54


def landmarks68_to_5(points68: Any) -> np.ndarray:
    """68 iBUG points (68×2, e.g. CK+ ``*_landmarks.txt``) → 5×2 float32 in RetinaFace order.

    Eye centres are the means of the six eye-contour points; nose and mouth corners are single
    points (tip 30, corners 48 and 54). Also accepts a batch ``N×68×2`` → ``N×5×2``.
    """
    pts = np.asarray(points68, dtype=np.float64)
    if pts.shape[-2:] != (68, 2):
        raise ValueError(f"expected 68×2 iBUG landmarks (e.g. CK+ Landmarks files), got shape {pts.shape}")
    out = np.stack(
        [
            pts[..., IBUG68_RIGHT_EYE, :].mean(axis=-2),
            pts[..., IBUG68_LEFT_EYE, :].mean(axis=-2),
            pts[..., IBUG68_NOSE_TIP, :],
            pts[..., IBUG68_RIGHT_MOUTH, :],
            pts[..., IBUG68_LEFT_MOUTH, :],
        ],
        axis=-2,
    )
    return out.astype(np.float32)


def box_around_landmarks(points5: np.ndarray, margin: float = 0.6) -> np.ndarray:
    """A face box for annotated points: their extent grown by ``margin`` × inter-ocular distance."""
    pts = np.asarray(points5, dtype=np.float32)
    iod = float(np.linalg.norm(pts[1] - pts[0])) or 1.0
    lo, hi = pts.min(axis=0) - margin * iod, pts.max(axis=0) + margin * iod
    return np.array([lo[0], lo[1], hi[0], hi[1]], dtype=np.float32)


def sample_landmarks5(sample: Mapping[str, Any]) -> np.ndarray | None:
    """The 5 points a sample carries (``landmarks5``, else 68 ``landmarks`` converted); None if unknown."""
    lm5 = sample.get("landmarks5")
    if lm5 is not None:
        arr = np.asarray(lm5, dtype=np.float32).reshape(5, 2)
        if np.isfinite(arr).all():
            return arr
    lm = sample.get("landmarks")
    if lm is not None:
        arr = np.asarray(lm, dtype=np.float32)
        if arr.shape == (68, 2) and np.isfinite(arr).all():
            return landmarks68_to_5(arr)
    return None


@register_detector("annotations")
class AnnotationsDetector(Detector):
    """Returns the sample's own landmarks as one face (score 1); no face when they are unknown (NaN).

    Works on samples (dicts of the ferlib sample schema), not on bare images: use
    :meth:`detect_samples`, which :func:`ferlib.landmarks.extract.extract_landmarks` calls.
    """

    needs_samples = True

    def __init__(self, margin: float = 0.6) -> None:
        self.margin = float(margin)

    def detect_samples(self, samples: Sequence[Mapping[str, Any]]) -> list[list[Face]]:
        out: list[list[Face]] = []
        for s in samples:
            pts = sample_landmarks5(s)
            out.append([] if pts is None else [Face(box_around_landmarks(pts, self.margin), 1.0, pts)])
        return out

    def detect_arrays(self, images: list[np.ndarray]) -> list[list[Face]]:
        raise TypeError(
            "the 'annotations' backend reads landmarks that a dataset ships, so it needs samples, not bare "
            "images: call detect_samples(samples) or `ferlib landmarks <dataset> --backend annotations`; "
            "for image files use --backend mtcnn or retinaface"
        )
