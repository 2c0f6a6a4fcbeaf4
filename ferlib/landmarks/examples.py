"""Real face photographs that ship inside scikit-image, for tests, benchmarks and docs (offline).

* :func:`astronaut_image` — ``skimage.data.astronaut()``, 512×512 RGB, one frontal face.
* :func:`lfw_face` — one of the 100 face crops of ``skimage.data.lfw_subset()`` (25×25 grey, from
  Labeled Faces in the Wild), enlarged with bicubic resampling and centred on a grey canvas so a
  detector sees the margin around the face it expects.
* :func:`faces_side_by_side` — two of those faces pasted next to each other (multi-face input).
* :data:`ASTRONAUT_LANDMARKS5` — five points of the astronaut's face annotated by hand, the one real face
  here with reference points (scikit-image ships none), for the detector NME of ``benchmarks/synthfer_realism.py``.
"""

from __future__ import annotations

import numpy as np

#: Indices of near-frontal faces in ``skimage.data.lfw_subset()`` (the first 100 are faces).
FRONTAL_LFW_FACES = (0, 3, 8, 9)
GREY = 128

#: Five points of ``astronaut_image()``'s face in RetinaFace slot order (image-left eye centre, image-right eye
#: centre, nose tip, image-left and image-right mouth corner), pixel (x, y) with pixel (r, c) centred at
#: (x=c, y=r). Annotated by eye on 8× enlargements with a 5-px grid: eye centres are the iris centres, the nose
#: tip the centre of the nose above the columella, the mouth corners where the lips meet. Uncertainty about
#: ±1.5 px (≈ 3 % of the 44-px inter-ocular distance), so an NME below ~3 % on this face is annotation noise.
ASTRONAUT_LANDMARKS5 = np.array(
    [[202.4, 102.0], [246.6, 103.0], [224.0, 127.0], [203.9, 140.6], [243.3, 141.5]], dtype=np.float32
)


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
