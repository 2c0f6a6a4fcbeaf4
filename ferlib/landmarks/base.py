"""The detector interface every landmark backend implements, and the registry of backends.

A backend turns a list of RGB images into, per image, zero or more :class:`Face` objects: a box,
a confidence score and five points in RetinaFace order (:data:`ferlib.data.schema.LANDMARK5_NAMES`):

0. subject's right eye (on the image's left),
1. subject's left eye (image right),
2. nose tip,
3. subject's right mouth corner (image left),
4. subject's left mouth corner (image right).

Adding a backend is one small class::

    @register_detector("mybackend")
    class MyDetector(Detector):
        def detect_arrays(self, images):          # list of H×W×3 uint8 numpy arrays
            return [[Face(box, score, points)] for ...]

and ``create_detector("mybackend", **options)`` builds it (``ferlib landmarks --backend mybackend``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ferlib.data.images import to_rgb_array

_REGISTRY: dict[str, type[Detector]] = {}


@dataclass(frozen=True)
class Face:
    """One detected face.

    ``box``        float32 [x1, y1, x2, y2] in pixels of the image given to the detector.
    ``score``      detection confidence in [0, 1].
    ``landmarks5`` float32 5×2 pixel (x, y) in RetinaFace order (see the module docstring).
    """

    box: np.ndarray
    score: float
    landmarks5: np.ndarray

    def __post_init__(self) -> None:
        box = np.asarray(self.box, dtype=np.float32).reshape(4)
        pts = np.asarray(self.landmarks5, dtype=np.float32).reshape(5, 2)
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "landmarks5", pts)
        object.__setattr__(self, "score", float(self.score))

    @property
    def area(self) -> float:
        w = max(float(self.box[2] - self.box[0]), 0.0)
        h = max(float(self.box[3] - self.box[1]), 0.0)
        return w * h

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2], dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(float(v), 3) for v in self.box],
            "score": round(self.score, 6),
            "landmarks5": [[round(float(x), 3), round(float(y), 3)] for x, y in self.landmarks5],
        }


class Detector:
    """Base class of landmark backends: subclasses implement :meth:`detect_arrays`.

    ``detect(images)`` accepts any mix of tensors, arrays and PIL images and returns one list of
    :class:`Face` per image (possibly empty), sorted by descending score.
    """

    name: str = "base"
    #: Whether the backend needs the sample itself (``annotations`` reads the sample's landmarks).
    needs_samples: bool = False

    def detect(self, images: Sequence[Any]) -> list[list[Face]]:
        arrays = [to_rgb_array(im) for im in images]
        if not arrays:
            return []
        out = self.detect_arrays(arrays)
        if len(out) != len(arrays):  # a backend bug, not a user error
            raise RuntimeError(f"{type(self).__name__} returned {len(out)} results for {len(arrays)} images")
        return [sorted(faces, key=lambda f: -f.score) for faces in out]

    def detect_arrays(self, images: list[np.ndarray]) -> list[list[Face]]:  # pragma: no cover
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Settings that decide the output (stored in the landmarks file header)."""
        return {"backend": self.name}


def register_detector(name: str) -> Callable[[type[Detector]], type[Detector]]:
    """Class decorator: make a :class:`Detector` subclass available as ``create_detector(name)``."""

    def deco(cls: type[Detector]) -> type[Detector]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"landmark backend {name!r} is already registered by {_REGISTRY[name]!r}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def list_detectors() -> list[str]:
    """Names accepted by :func:`create_detector` (and ``ferlib landmarks --backend``).

    The built-in backends are registered by importing :mod:`ferlib.landmarks` (its ``__init__``
    imports them); this module never imports a backend.
    """
    return sorted(_REGISTRY)


def detector_class(name: str) -> type[Detector]:
    """The :class:`Detector` subclass registered as ``name``; a clear error naming the others."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown landmark backend {name!r}; available: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def create_detector(name: str = "mtcnn", **options: Any) -> Detector:
    """Build the backend registered as ``name`` with its keyword ``options``."""
    return detector_class(name)(**options)


def select_primary_face(faces: Iterable[Face], image_size: tuple[int, int], tie: float = 0.8) -> Face | None:
    """The face a FER pipeline keeps when a detector finds several: the largest, most central one.

    Faces whose box area is at least ``tie`` × the largest area count as equally large; among
    those the one whose box centre is nearest the image centre wins (a crowd photo's subject is
    usually both big and central). ``image_size`` is ``(height, width)``.
    """
    faces = list(faces)
    if not faces:
        return None
    largest = max(f.area for f in faces)
    candidates = [f for f in faces if f.area >= tie * largest]
    h, w = image_size
    centre = np.array([w / 2.0, h / 2.0], dtype=np.float32)
    return min(candidates, key=lambda f: (float(np.linalg.norm(f.center - centre)), -f.area))
