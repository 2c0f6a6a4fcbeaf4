"""``annotations`` backend: the landmarks a dataset ships, behind the same :class:`Detector` interface.

RAF-DB ships five manual points per image, CK+ ships 68 points per frame (converted to five with
:func:`ferlib.data.face_geometry.landmarks68_to_5`), and SynthFER knows its points exactly. The loaders put them in the
sample's ``landmarks5`` (or 68 points in ``landmarks``); this backend reads them, so extraction,
alignment and pose subsets work the same way whichever source the points come from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ferlib.data.face_geometry import box_around_points as box_around_landmarks
from ferlib.data.face_geometry import landmarks68_to_5
from ferlib.landmarks.base import Detector, Face, register_detector


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
