"""The one sample schema every ferlib dataset returns, and its batch collation.

A sample is a ``dict``:

``image``       uint8 tensor C×H×W (RGB).
``label``       int in ferlib's canonical order (:data:`ferlib.data.labels.CANONICAL_CLASSES`).
``landmarks5``  float32 tensor 5×2 of pixel (x, y) in RetinaFace order (see :data:`LANDMARK5_NAMES`);
                NaN where unknown.
``landmarks8``  optional float32 tensor 8×2 (Multiple Attention Network points, :data:`LANDMARK8_NAMES`).
``landmarks``   optional float32 tensor K×2 of richer points (contours, 68 points, ...).
``meta``        dict: ``id``, ``path``, ``subject`` (for person-independent splits), ``yaw``/``pitch``/``roll``
                in degrees and ``occlusion`` when known, plus anything dataset-specific.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypedDict

import torch

#: RetinaFace 5-point order. "right" is the *subject's* right, which is on the image's left.
LANDMARK5_NAMES: tuple[str, ...] = (
    "right_eye",  # subject's right eye = image left
    "left_eye",  # subject's left eye = image right
    "nose",
    "right_mouth",  # subject's right mouth corner = image left
    "left_mouth",  # subject's left mouth corner = image right
)

#: Slot permutation that a horizontal flip applies to 5-point landmarks (left/right swap).
LANDMARK5_FLIP_PERM: tuple[int, ...] = (1, 0, 2, 4, 3)

#: The 8 points of the Multiple Attention Network (man.txt, Table 2 and Fig. 4), image-left to right
#: for the eyes: nose; left eye outer and inner corners; right eye inner and outer corners (here
#: "left"/"right" are as the *image* shows them, following the paper's figure); two mouth corners
#: (image left, image right); a point below the mouth.
LANDMARK8_NAMES: tuple[str, ...] = (
    "nose",
    "image_left_eye_outer",
    "image_left_eye_inner",
    "image_right_eye_inner",
    "image_right_eye_outer",
    "image_left_mouth",
    "image_right_mouth",
    "below_mouth",
)

#: Slot permutation that a horizontal flip applies to the 8 points.
LANDMARK8_FLIP_PERM: tuple[int, ...] = (0, 4, 3, 2, 1, 6, 5, 7)


class Sample(TypedDict, total=False):
    image: torch.Tensor
    label: int
    landmarks5: torch.Tensor
    landmarks8: torch.Tensor
    landmarks: torch.Tensor
    meta: dict[str, Any]


def unknown_landmarks5() -> torch.Tensor:
    """A 5×2 tensor of NaN: landmarks not known for this sample."""
    return torch.full((5, 2), math.nan, dtype=torch.float32)


def collate_samples(samples: Sequence[Sample]) -> dict[str, Any]:
    """Stack a list of samples into a batch dict.

    Tensors are stacked (``image`` B×C×H×W uint8, ``label`` B int64, ``landmarks5`` B×5×2, ...);
    ``meta`` becomes a list of dicts. Optional keys are kept only when every sample has them.
    """
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    batch: dict[str, Any] = {}
    keys = set(samples[0])
    for s in samples[1:]:
        keys &= set(s)
    for key in sorted(keys):
        values = [s[key] for s in samples]
        if key == "meta":
            batch[key] = list(values)
        elif key == "label":
            batch[key] = torch.as_tensor(values, dtype=torch.long)
        elif isinstance(values[0], torch.Tensor):
            batch[key] = torch.stack(values)
        else:
            batch[key] = values
    return batch
