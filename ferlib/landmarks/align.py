"""Face alignment: a similarity transform from the five points to a canonical 224×224 template.

The papers detect each face with RetinaFace, align it by its five points and resize it to
224×224 ("Implementation details", §IV-B of ma-net.txt, lan.txt and amp-net.txt; man.txt aligns
CK+/RAF-DB by an affine transform of the shipped landmarks). ferlib's canonical template is the widely used
ArcFace 5-point template (Deng et al., CVPR 2019; defined for a 112×112 crop) scaled by 2 to
224×224 — see :data:`TEMPLATE_112` and :data:`CANONICAL_TEMPLATE_224`. In RetinaFace order:

==================  ==================
point               (x, y) at 224×224
==================  ==================
right eye (img L)   (76.59, 103.39)
left eye (img R)    (147.06, 103.00)
nose tip            (112.05, 143.47)
right mouth (L)     (83.10, 184.73)
left mouth (R)      (141.46, 184.41)
==================  ==================

The template, the similarity fit and the side convention live in :mod:`ferlib.data.face_geometry` (one home,
shared with the loaders and the occluders). The transform (rotation, uniform scale, translation: 4 degrees of
freedom) is the least-squares fit of Umeyama (1991); the image is resampled with ``skimage.transform.warp``
(bilinear), never with hand-written interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ferlib.data.face_geometry import (  # noqa: F401 - the template lives on the data floor; re-exported here
    CANONICAL_SIZE,
    CANONICAL_TEMPLATE_224,
    TEMPLATE_112,
    apply_affine,
    canonical_template,
    similarity_matrix,
)


def similarity_transform(src: Any, dst: Any) -> np.ndarray:
    """Least-squares similarity (Umeyama) mapping points ``src`` onto ``dst``: a 3×3 matrix.

    The one fit is :func:`ferlib.data.face_geometry.fit_similarity`; this is its homogeneous form.
    """
    return similarity_matrix(src, dst)


def apply_transform(matrix: np.ndarray, points: Any) -> np.ndarray:
    """Apply a 3×3 homogeneous transform to N×2 points (float32)."""
    return apply_affine(matrix, points).astype(np.float32)


@dataclass(frozen=True)
class AlignedFace:
    """Result of :func:`align_face`.

    ``image``      the warped image, same kind as the input (uint8 C×H×W tensor or H×W×C array).
    ``landmarks5`` the input points after the transform (5×2 float32, output pixels).
    ``matrix``     the 3×3 transform from input pixels to output pixels.
    """

    image: Any
    landmarks5: np.ndarray
    matrix: np.ndarray


def align_face(
    image: Any,
    landmarks5: Any,
    output_size: int = CANONICAL_SIZE,
    template: Any | None = None,
    border: str = "constant",
) -> AlignedFace:
    """Warp ``image`` so its five points land as close as possible to the canonical template.

    ``image`` is a uint8 tensor C×H×W (the sample schema) or a numpy H×W×C / H×W array; the
    result has the same kind and dtype. ``template`` defaults to :func:`canonical_template` at
    ``output_size``. ``border`` is skimage's padding mode (``constant`` black, ``edge``, ``reflect``).
    """
    from skimage.transform import warp

    dst = canonical_template(output_size) if template is None else np.asarray(template, dtype=np.float32)
    matrix = similarity_transform(landmarks5, dst)

    is_tensor = isinstance(image, torch.Tensor)
    if is_tensor:
        arr = image.detach().cpu().numpy()
        chw = arr.ndim == 3
        arr = np.moveaxis(arr, 0, -1) if chw else arr
        dtype = image.dtype
    else:
        arr = np.asarray(image)
        dtype = arr.dtype
    # warp() wants the output→input map: the inverse of input→output.
    inverse = np.linalg.inv(matrix)
    warped = warp(
        arr.astype(np.float64),
        inverse_map=inverse,
        output_shape=(output_size, output_size),
        order=1,
        mode=border,
        cval=0.0,
        preserve_range=True,
    )
    if np.issubdtype(np.dtype(str(dtype).replace("torch.", "")), np.integer):
        warped = np.clip(np.rint(warped), 0, 255)
    if is_tensor:
        out = np.moveaxis(warped, -1, 0) if chw else warped
        result: Any = torch.from_numpy(np.ascontiguousarray(out)).to(dtype)
    else:
        result = warped.astype(dtype)
    return AlignedFace(image=result, landmarks5=apply_transform(matrix, landmarks5), matrix=matrix)


def alignment_error(landmarks5: Any, template: Any | None = None, output_size: int = CANONICAL_SIZE) -> float:
    """Mean distance (pixels) between aligned points and the template: how non-rigid the face is."""
    dst = canonical_template(output_size) if template is None else np.asarray(template, dtype=np.float32)
    moved = apply_transform(similarity_transform(landmarks5, dst), landmarks5)
    return float(np.linalg.norm(moved - dst, axis=1).mean())
