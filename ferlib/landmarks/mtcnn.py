"""``mtcnn`` backend (default): facenet-pytorch's MTCNN, whose weights ship inside the wheel.

MTCNN (Zhang et al., 2016) is a three-stage cascade (P-Net, R-Net, O-Net) that outputs a box and
five points. facenet-pytorch returns the points as image-left eye, image-right eye, nose,
image-left mouth corner, image-right mouth corner: that is RetinaFace order (subject's right eye =
image left first), so no permutation is needed — ``tests/landmarks/test_landmarks_detectors.py`` checks the
slots on real faces. facenet-pytorch is installed with ``--no-deps`` (its metadata would change
torch); see ``docs/landmarks.md``.

Its outputs are awkward: object arrays, ``None`` for an image without a face and ``[None]`` for
the scores. :meth:`MTCNNDetector.detect_arrays` converts them to :class:`~ferlib.landmarks.base.Face`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from ferlib.landmarks.base import Detector, Face, register_detector


@register_detector("mtcnn")
class MTCNNDetector(Detector):
    """facenet-pytorch MTCNN behind the :class:`Detector` interface.

    ``min_face_size`` (pixels), ``thresholds`` (the three stages' score thresholds) and ``factor``
    (image-pyramid scale step) are MTCNN's own settings; ``min_score`` drops faces whose final
    O-Net probability is lower. Images of equal size are run as one batch.

    An image whose shorter side is below ``min_face_size`` cannot hold such a face (MTCNN's image
    pyramid would be empty and facenet-pytorch fails with ``torch.cat(): expected a non-empty list``):
    it gets no face, and extraction records it ``too_small`` (``min_image_side``). Images whose long
    side exceeds ``max_size`` (default 1600 px) are downscaled (antialiased) before detection and the
    boxes and points mapped back to the original pixels: a 24-megapixel photo otherwise holds about
    1.2 GB in MTCNN's pyramid; ``max_size=None`` keeps full size.
    """

    def __init__(
        self,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        min_score: float = 0.0,
        device: str = "cpu",
        max_size: int | None = 1600,
    ) -> None:
        try:
            from facenet_pytorch import MTCNN
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the 'mtcnn' landmark backend needs facenet-pytorch 2.5.3, which `make venv` installs; "
                "install it by hand with `.venv/bin/pip install --no-deps facenet-pytorch==2.5.3` "
                "(--no-deps keeps it from replacing torch)"
            ) from exc
        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.min_score = float(min_score)
        self.device = str(device)
        if self.min_face_size < 1:
            raise ValueError(f"min_face_size must be ≥ 1 pixel, got {min_face_size}")
        if max_size is not None and int(max_size) < self.min_face_size:
            raise ValueError(f"max_size ({max_size}) must be at least min_face_size ({self.min_face_size})")
        self.max_size = None if max_size is None else int(max_size)
        self.min_image_side = self.min_face_size
        self._mtcnn = MTCNN(
            keep_all=True,
            select_largest=False,
            post_process=False,
            min_face_size=self.min_face_size,
            thresholds=list(self.thresholds),
            factor=self.factor,
            device=self.device,
        )
        self._mtcnn.eval()

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "min_face_size": self.min_face_size,
            "thresholds": list(self.thresholds),
            "factor": self.factor,
            "min_score": self.min_score,
            "max_size": self.max_size,
        }

    def _downscaled(self, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(image to detect on, x scale, y scale back to the original pixels)."""
        h, w = image.shape[:2]
        if self.max_size is None or max(h, w) <= self.max_size:
            return image, 1.0, 1.0
        from PIL import Image

        s = self.max_size / max(h, w)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        small = np.asarray(Image.fromarray(image).resize((nw, nh), Image.BILINEAR, reducing_gap=None))
        return small, w / nw, h / nh

    def detect_arrays(self, images: list[np.ndarray]) -> list[list[Face]]:
        results: list[list[Face]] = [[] for _ in images]
        by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        prepared: dict[int, tuple[np.ndarray, float, float]] = {}
        for i, im in enumerate(images):
            if min(im.shape[:2]) < self.min_face_size:
                continue  # too small to hold a face of min_face_size: no face (MTCNN itself would crash)
            prepared[i] = self._downscaled(im)
            by_size[prepared[i][0].shape[:2]].append(i)
        for indices in by_size.values():
            batch = np.stack([prepared[i][0] for i in indices])  # B×H×W×3 uint8: MTCNN's batch input
            boxes, probs, points = self._mtcnn.detect(batch, landmarks=True)
            for i, b, p, pts in zip(indices, boxes, probs, points):
                results[i] = self._convert(b, p, pts, *prepared[i][1:])
        return results

    def _convert(self, boxes: Any, probs: Any, points: Any, sx: float = 1.0, sy: float = 1.0) -> list[Face]:
        """facenet-pytorch's per-image (object array | None) triple → list of Face, in original pixels."""
        if boxes is None or points is None:
            return []
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * np.float32([sx, sy, sx, sy])
        probs = np.asarray([np.nan if p is None else p for p in np.atleast_1d(probs)], dtype=np.float32)
        points = np.asarray(points, dtype=np.float32).reshape(-1, 5, 2) * np.float32([sx, sy])
        faces = []
        for box, score, pts in zip(boxes, probs, points):
            if not np.isfinite(score) or score < self.min_score:
                continue
            faces.append(Face(box=box, score=float(score), landmarks5=pts))
        return faces
