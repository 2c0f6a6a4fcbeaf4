"""Real face photographs that ship inside scikit-image, for tests, benchmarks and docs (offline).

* :func:`astronaut_image` — ``skimage.data.astronaut()``, 512×512 RGB, one frontal face.
* :func:`lfw_face` — one of the 100 face crops of ``skimage.data.lfw_subset()`` (25×25 grey, from
  Labeled Faces in the Wild), enlarged with bicubic resampling and centred on a grey canvas so a
  detector sees the margin around the face it expects.
* :func:`faces_side_by_side` — two of those faces pasted next to each other (multi-face input).
"""

from __future__ import annotations

import numpy as np

#: Indices of near-frontal faces in ``skimage.data.lfw_subset()`` (the first 100 are faces).
FRONTAL_LFW_FACES = (0, 3, 8, 9)
GREY = 128


def astronaut_image() -> np.ndarray:
    """``skimage.data.astronaut()``: 512×512×3 uint8 with Eileen Collins' face."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def lfw_face(index: int = 0, face_size: int = 128, canvas: int | None = None) -> np.ndarray:
    """Face ``index`` of ``lfw_subset()`` enlarged to ``face_size`` px on a grey ``canvas``² RGB image."""
    from PIL import Image
    from skimage import data

    faces = data.lfw_subset()
    if not 0 <= index < 100:
        raise ValueError(f"lfw_subset() holds faces at indices 0–99 (100–199 are non-faces), got {index}")
    grey = Image.fromarray(np.uint8(np.rint(faces[index] * 255))).resize((face_size, face_size), Image.BICUBIC)
    canvas = canvas or int(round(face_size * 1.5))
    out = np.full((canvas, canvas, 3), GREY, dtype=np.uint8)
    o = (canvas - face_size) // 2
    out[o : o + face_size, o : o + face_size] = np.asarray(grey)[..., None]
    return out


def faces_side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Paste two RGB images next to each other (heights padded to the taller with grey)."""
    h = max(left.shape[0], right.shape[0])
    out = np.full((h, left.shape[1] + right.shape[1], 3), GREY, dtype=np.uint8)
    out[(h - left.shape[0]) // 2 : (h - left.shape[0]) // 2 + left.shape[0], : left.shape[1]] = left
    out[(h - right.shape[0]) // 2 : (h - right.shape[0]) // 2 + right.shape[0], left.shape[1] :] = right
    return out
