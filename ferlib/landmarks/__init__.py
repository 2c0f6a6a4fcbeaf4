"""Five-point facial landmarks: detection backends, cached extraction, alignment and pose.

The papers detect every face with RetinaFace's five points, align it and resize it to 224×224
(ma-net.txt §IV-B, lan.txt §IV-B, amp-net.txt §IV-B "Implementation details"); AMP-Net's pose-based division and the
Multiple Attention Network also feed landmarks to the network. This package does that offline:

>>> from ferlib.landmarks import detect, align_face, estimate_pose
>>> faces = detect([image])[0]                      # list of Face(box, score, landmarks5)
>>> aligned = align_face(image, faces[0].landmarks5)  # 224×224, points on the canonical template
>>> yaw, pitch = estimate_pose(faces[0].landmarks5)

Backends (``list_detectors()``): ``mtcnn`` (default, weights ship with facenet-pytorch),
``retinaface`` (ferlib's network; needs a user-supplied checkpoint), ``retina-face`` (the PyPI
``retina-face`` package's PyTorch engine, an optional extra; its ``retinaface.pth`` must already be in place)
and ``annotations`` (the points a dataset ships). Extraction over a dataset: :func:`extract_landmarks` /
``ferlib landmarks``; the data layer reads the result with :func:`attach_landmarks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ferlib.data.face_geometry import landmarks68_to_5
from ferlib.landmarks.align import (
    CANONICAL_SIZE,
    CANONICAL_TEMPLATE_224,
    AlignedFace,
    align_face,
    canonical_template,
    similarity_transform,
)
from ferlib.landmarks.base import (
    Detector,
    Face,
    create_detector,
    list_detectors,
    register_detector,
    select_primary_face,
)
from ferlib.landmarks.extract import (
    LandmarkTable,
    attach_landmarks,
    extract_landmarks,
    load_landmarks_file,
)
from ferlib.landmarks.pose import estimate_pose, pose_subset

# The built-in backends register themselves on import (``ferlib.landmarks.base`` never imports them).
# Plain ``import`` statements: ``from ferlib.landmarks import annotations`` would find this module's
# ``from __future__ import annotations`` binding instead of the submodule.
import ferlib.landmarks.annotations  # noqa: E402,F401  isort: skip
import ferlib.landmarks.mtcnn  # noqa: E402,F401  isort: skip
import ferlib.landmarks.retinaface  # noqa: E402,F401  isort: skip
import ferlib.landmarks.retinaface_pypi  # noqa: E402,F401  isort: skip

_DEFAULT_DETECTORS: dict[str, Detector] = {}


def detect(images: Sequence[Any], backend: str = "mtcnn", **options: Any) -> list[list[Face]]:
    """Faces (box, score, 5 points in RetinaFace order) for each image, with the named backend.

    A detector built without options is cached, so repeated calls do not reload weights.
    """
    if options:
        return create_detector(backend, **options).detect(images)
    if backend not in _DEFAULT_DETECTORS:
        _DEFAULT_DETECTORS[backend] = create_detector(backend)
    return _DEFAULT_DETECTORS[backend].detect(images)


__all__ = [
    "AlignedFace",
    "CANONICAL_SIZE",
    "CANONICAL_TEMPLATE_224",
    "Detector",
    "Face",
    "LandmarkTable",
    "align_face",
    "attach_landmarks",
    "canonical_template",
    "create_detector",
    "detect",
    "estimate_pose",
    "extract_landmarks",
    "landmarks68_to_5",
    "list_detectors",
    "load_landmarks_file",
    "pose_subset",
    "register_detector",
    "select_primary_face",
    "similarity_transform",
]
