"""Occluders placed by landmarks: face mask, sunglasses, hand and random patch, with pixel masks.

FFRA-Net (``ffra-net.txt`` §4.1) builds FM_RAF-DB and SG_RAF-DB by marking the facial key points,
selecting "the key points around the eyes and mouth" and placing a mask or sunglasses image with a
similarity ("bionic") transform computed from them (its Figure 4); §4.5 / Figure 8 tests on the
RAF-DB test set with *random* occlusion added. ferlib reproduces the procedure with occluders drawn
procedurally (no copied images):

* every occluder is a set of polygons in a **canonical occluder frame**, the 5-point template
  :data:`CANONICAL_LANDMARKS5` (eye centres at (∓1, 0), so one unit is half the inter-ocular
  distance, y pointing down);
* a similarity transform (rotation, uniform scale, translation; :func:`ferlib.data.face_geometry.fit_similarity`, the
  least-squares solution of Umeyama 1991) maps the template's points around the eyes (sunglasses)
  or the eyes, nose and mouth (mask, hand) onto the image's ``landmarks5``;
* the polygons are drawn with PIL at image resolution and composited; the occluder's boolean pixel
  mask comes back with the image, so explanation code can measure how much attention falls on it.

``occlude(image, landmarks5, kind, rng)`` is the one entry point; SynthFER (:mod:`ferlib.data.synthfer`)
calls it for its own occlusions. ``materialise_occluded`` writes an occluded copy of any
schema dataset (the ``ferlib data occlude`` command).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from ferlib.data.face_geometry import apply_affine, fit_similarity
from ferlib.data.images import array_to_tensor, tensor_to_array

#: Occluder kinds. SynthFER's ``meta["occlusion"]`` uses these names (plus ``"none"``).
OCCLUDER_KINDS: tuple[str, ...] = ("mask", "sunglasses", "hand", "random")

#: Other spellings accepted by :func:`occlude` (issue text and CLI friendliness).
KIND_ALIASES: dict[str, str] = {
    "face_mask": "mask",
    "facemask": "mask",
    "glasses": "sunglasses",
    "random_patch": "random",
    "patch": "random",
}

#: Anchor points of the occluder drawing frame (the units the shapes below are drawn in), slot order of
#: :mod:`ferlib.data.face_geometry` (image-left eye first). They are a symmetrised, rounded copy of the one face
#: template (:data:`ferlib.data.face_geometry.TEMPLATE_112`: eyes ≈ 35 px apart, nose ≈ 20 px and mouth ≈ 41 px
#: below the eye line) rescaled so the eyes sit at (∓1, 0). They stay separate on purpose: every occluder shape
#: is drawn in these units, and SynthFER's occluded images (and every result trained on them) are bit-identical
#: only with exactly these numbers.
CANONICAL_LANDMARKS5: np.ndarray = np.array(
    [[-1.0, 0.0], [1.0, 0.0], [0.0, 1.15], [-0.83, 2.3], [0.83, 2.3]], dtype=np.float64
)


def canonical_kind(kind: str) -> str:
    """Normalise an occluder name; raise a clear error for unknown ones."""
    k = KIND_ALIASES.get(str(kind).lower(), str(kind).lower())
    if k not in OCCLUDER_KINDS:
        raise ValueError(
            f"unknown occluder kind {kind!r}; expected one of {OCCLUDER_KINDS} (aliases: {sorted(KIND_ALIASES)})"
        )
    return k


# ---------------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------------


def placement_transform(landmarks5: np.ndarray, kind: str) -> np.ndarray:
    """The 2×3 similarity from the canonical occluder frame to the image for ``kind``.

    Sunglasses: exact similarity on the two eye centres (FFRA-Net: "key points around the eyes").
    Mask, hand and random patch: least-squares similarity on all five points, re-anchored so the
    canonical mouth centre lands exactly on the image's mouth centre ("around the mouth").
    """
    lm = np.asarray(landmarks5, dtype=np.float64).reshape(5, 2)
    if not np.isfinite(lm).all():
        raise ValueError("landmarks5 contains NaN; occluders are placed from landmarks (detect them first)")
    kind = canonical_kind(kind)
    if kind == "sunglasses":
        return fit_similarity(CANONICAL_LANDMARKS5[:2], lm[:2])
    m = fit_similarity(CANONICAL_LANDMARKS5, lm)
    mouth_c = CANONICAL_LANDMARKS5[3:].mean(0)
    m[:, 2] += lm[3:].mean(0) - apply_affine(m, mouth_c[None])[0]
    return m


def template_landmarks5(height: int, width: int) -> np.ndarray:
    """Canonical 5 points for an already aligned, centred face crop of size ``height``×``width``.

    Used as a fallback when a sample has no landmarks (issue 3: "fall back to the canonical
    template for an already aligned crop"). Eyes at 36 % / 64 % of the width, 40 % of the height.
    """
    s = 0.14 * width
    cx, cy = width / 2.0, 0.40 * height
    return (CANONICAL_LANDMARKS5 * s + [cx, cy]).astype(np.float32)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _rot(points: np.ndarray, angle: float, centre: Sequence[float]) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    p = np.asarray(points, dtype=np.float64) - centre
    return np.stack([c * p[:, 0] - s * p[:, 1], s * p[:, 0] + c * p[:, 1]], 1) + centre


def _shade(colour: Sequence[int], f: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * f, 0, 255)) for c in colour)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Occluder shapes in the canonical frame: lists of (polygon N×2, fill colour, is_line, width)
# ---------------------------------------------------------------------------------------------

_MASK_COLOURS = [(214, 228, 240), (245, 245, 245), (40, 40, 45), (120, 170, 210), (200, 210, 200)]
_SKIN_TONES = [(255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 58, 30)]


def _mask_shapes(rng: np.random.Generator) -> list[tuple]:
    colour = _MASK_COLOURS[int(rng.integers(len(_MASK_COLOURS)))]
    top = 0.62 + 0.08 * rng.random()  # below the eyes (eye band ends ≈ 0.4), above the nose tip
    bottom = 3.55 + 0.25 * rng.random()  # under the chin
    w = 1.75 + 0.2 * rng.random()
    # Surgical-mask outline: straight-ish top over the nose, wide sides, rounded chin.
    ys = np.linspace(0, 1, 9)
    right = np.stack([w * (0.78 + 0.22 * np.sin(np.pi * np.clip(ys * 1.25, 0, 1))), top + (bottom - top) * ys], 1)
    right[-1, 0] *= 0.55
    chin = _ellipse(0.0, bottom - 0.1, w * 0.55, 0.35, 16)
    chin = chin[chin[:, 1] > bottom - 0.1]
    chin = chin[np.argsort(-chin[:, 0])]
    outline = np.concatenate([right, chin, right[::-1] * [-1, 1]], 0)
    shapes: list[tuple] = [(outline, colour, False, 0)]
    # Pleats and ear loops (loops are thin lines that still count as occluder pixels).
    for k in range(3):
        y = top + (bottom - top) * (0.3 + 0.18 * k)
        shapes.append((np.array([[-w * 0.92, y], [w * 0.92, y]]), _shade(colour, 0.8), True, 0.06))
    for side in (-1, 1):
        shapes.append((np.array([[side * w * 0.8, top + 0.1], [side * 2.25, 0.35]]), _shade(colour, 0.9), True, 0.07))
        shapes.append(
            (np.array([[side * w * 0.75, bottom - 0.6], [side * 2.25, 0.9]]), _shade(colour, 0.9), True, 0.07)
        )
    return shapes


def _sunglasses_shapes(rng: np.random.Generator) -> list[tuple]:
    lens = (int(rng.integers(10, 60)), int(rng.integers(10, 60)), int(rng.integers(10, 70)))
    frame = (int(rng.integers(0, 60)),) * 3
    rx = 0.62 + 0.1 * rng.random()
    ry = 0.45 + 0.1 * rng.random()
    shapes: list[tuple] = []
    for cx in (-1.0, 1.0):
        shapes.append((_ellipse(cx, 0.03, rx + 0.07, ry + 0.07, 28), frame, False, 0))
        shapes.append((_ellipse(cx, 0.03, rx, ry, 28), lens, False, 0))
        # A reflection streak keeps the lenses from being a flat colour.
        shapes.append(
            (np.array([[cx - 0.3 * rx, -0.5 * ry], [cx + 0.1 * rx, -0.1 * ry]]), _shade(lens, 2.2), True, 0.06)
        )
    shapes.append((np.array([[-1 + rx, -0.1], [1 - rx, -0.1]]), frame, True, 0.1))  # bridge
    for side in (-1, 1):
        shapes.append((np.array([[side * (1 + rx), -0.1], [side * 2.2, -0.2]]), frame, True, 0.1))  # temples
    return shapes


def _hand_shapes(rng: np.random.Generator) -> list[tuple]:
    skin = _SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))]
    # Where the hand rests: over the mouth, over one eye, on a cheek or on the chin.
    targets = [(0.0, 2.2), (-1.0, 0.1), (1.0, 0.1), (-1.3, 1.5), (1.3, 1.5), (0.0, 3.0)]
    tx, ty = targets[int(rng.integers(len(targets)))]
    size = 0.8 + 0.3 * rng.random()
    angle = rng.uniform(-0.6, 0.6) + (math.pi if rng.random() < 0.5 else 0.0)
    palm = _ellipse(0, 0, 0.75 * size, 0.9 * size, 20)
    shapes: list[tuple] = [(palm, skin, False, 0)]
    for fx, length in [(-0.52, 1.0), (-0.17, 1.15), (0.18, 1.1), (0.5, 0.9)]:
        x0 = fx * size
        finger = np.array(
            [
                [x0 - 0.15 * size, -0.5 * size],
                [x0 + 0.15 * size, -0.5 * size],
                [x0 + 0.13 * size, -(0.5 + length) * size],
                [x0 - 0.13 * size, -(0.5 + length) * size],
            ]
        )
        shapes.append((finger, skin, False, 0))
        shapes.append((_ellipse(x0, -(0.5 + length) * size, 0.13 * size, 0.13 * size, 10), skin, False, 0))
    thumb = np.array(
        [[0.55 * size, 0.1 * size], [0.75 * size, 0.4 * size], [1.45 * size, -0.3 * size], [1.3 * size, -0.5 * size]]
    )
    shapes.append((thumb, _shade(skin, 0.95), False, 0))
    for fx in (-0.35, 0.0, 0.34):  # creases between fingers
        shapes.append((np.array([[fx * size, -0.55 * size], [fx * size, -1.0 * size]]), _shade(skin, 0.75), True, 0.04))
    out = []
    for poly, col, is_line, width in shapes:
        poly = _rot(poly, angle, (0, 0)) + [tx, ty]
        out.append((poly, col, is_line, width * 1.0))
    return out


def _draw_shapes(layer: Image.Image, mask: Image.Image, shapes: list[tuple], matrix: np.ndarray) -> None:
    draw_c = ImageDraw.Draw(layer)
    draw_m = ImageDraw.Draw(mask)
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    for poly, colour, is_line, width in shapes:
        # +0.5: PIL truncates float vertices; this makes it round (pixel centres at integers).
        pts = [tuple(p) for p in (apply_affine(matrix, poly) + 0.5).tolist()]
        if is_line:
            w = max(1, int(round(width * scale)))
            draw_c.line(pts, fill=colour, width=w)
            draw_m.line(pts, fill=255, width=w)
        else:
            draw_c.polygon(pts, fill=colour)
            draw_m.polygon(pts, fill=255)


def _random_patch(img: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random rectangle of random texture over the face (FFRA-Net §4.5, Figure 8)."""
    h, w = img.shape[:2]
    m = placement_transform(lm, "random")
    unit = math.sqrt(abs(np.linalg.det(m[:, :2])))  # half inter-ocular distance in pixels
    # Centre: anywhere in the face box of the canonical frame.
    cx, cy = apply_affine(m, np.array([[rng.uniform(-1.5, 1.5), rng.uniform(-0.8, 3.2)]]))[0]
    side_w = unit * rng.uniform(1.2, 2.6)
    side_h = unit * rng.uniform(1.2, 2.6)
    x0, x1 = int(round(cx - side_w / 2)), int(round(cx + side_w / 2))
    y0, y1 = int(round(cy - side_h / 2)), int(round(cy + side_h / 2))
    x0, x1 = max(0, x0), min(w, max(x1, x0 + 1))
    y0, y1 = max(0, y0), min(h, max(y1, y0 + 1))
    mask = np.zeros((h, w), dtype=bool)
    if x1 <= x0 or y1 <= y0:
        return img.copy(), mask
    mask[y0:y1, x0:x1] = True
    out = img.copy()
    style = rng.integers(3)
    ph, pw = y1 - y0, x1 - x0
    if style == 0:  # flat colour
        patch = np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (ph, pw, 3))
    elif style == 1:  # uniform noise
        patch = rng.integers(0, 256, (ph, pw, 3), dtype=np.uint8)
    else:  # coarse blocks, like a piece of an unrelated picture
        blocks = rng.integers(0, 256, (max(1, ph // 8 + 1), max(1, pw // 8 + 1), 3), dtype=np.uint8)
        patch = np.repeat(np.repeat(blocks, 8, 0), 8, 1)[:ph, :pw]
    out[y0:y1, x0:x1] = patch
    return out, mask


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def occlude(
    image: Any,
    landmarks5: Any,
    kind: str,
    rng: np.random.Generator | int | None = 0,
) -> tuple[Any, Any]:
    """Draw an occluder of ``kind`` on ``image``, placed from ``landmarks5``.

    ``image``: uint8 numpy H×W×3 or torch uint8 3×H×W (the sample schema's layout).
    ``landmarks5``: 5×2 pixel (x, y) in RetinaFace order (numpy or torch).
    ``kind``: ``mask`` | ``sunglasses`` | ``hand`` | ``random`` (aliases in :data:`KIND_ALIASES`).
    ``rng``: a ``numpy.random.Generator`` or an int seed; the same seed gives the same occluder.

    Returns ``(occluded_image, mask)`` in the input's type: numpy H×W×3 and bool H×W, or torch
    3×H×W uint8 and torch bool H×W. ``mask`` is True on every pixel the occluder covers.
    """
    kind = canonical_kind(kind)
    is_torch = isinstance(image, torch.Tensor)
    if is_torch:
        arr = tensor_to_array(image)
    else:
        arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(
            f"occlude expects a uint8 H×W×3 array or 3×H×W tensor, got shape {tuple(np.shape(image))} "
            f"dtype {getattr(image, 'dtype', None)}"
        )
    lm = landmarks5.detach().cpu().numpy() if hasattr(landmarks5, "detach") else np.asarray(landmarks5)
    lm = np.asarray(lm, dtype=np.float64).reshape(5, 2)
    gen = _as_rng(rng)
    if kind == "random":
        out, mask = _random_patch(np.ascontiguousarray(arr), lm, gen)
    else:
        shapes = {"mask": _mask_shapes, "sunglasses": _sunglasses_shapes, "hand": _hand_shapes}[kind](gen)
        matrix = placement_transform(lm, kind)
        h, w = arr.shape[:2]
        layer = Image.new("RGB", (w, h))
        mask_img = Image.new("L", (w, h), 0)
        _draw_shapes(layer, mask_img, shapes, matrix)
        mask = np.asarray(mask_img) > 127
        out = np.where(mask[..., None], np.asarray(layer), arr)
    if is_torch:
        return array_to_tensor(out), torch.from_numpy(mask)
    return out, mask


# ---------------------------------------------------------------------------------------------
# Occluded copy of a dataset
# ---------------------------------------------------------------------------------------------

MANIFEST_COLUMNS: tuple[str, ...] = (
    "id",
    "path",
    "split",
    "label",
    "subject",
    "yaw",
    "pitch",
    "roll",
    "occlusion",
    "lm5",
    "lm8",
)


def format_points(points: Any, n: int) -> str:
    """``x1 y1 x2 y2 …`` with 3 decimals (``nan`` where unknown); empty string when absent."""
    if points is None:
        return ""
    arr = points.detach().cpu().numpy() if hasattr(points, "detach") else np.asarray(points)
    arr = np.asarray(arr, dtype=np.float64).reshape(n, 2)
    return " ".join("nan" if not np.isfinite(v) else f"{v:.3f}" for v in arr.ravel())


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def safe_id(sample_id: Any) -> str:
    """A file-name-safe version of a sample id (path separators become ``__``)."""
    s = str(sample_id)
    for ch in ("/", "\\", ":"):
        s = s.replace(ch, "__")
    return s


def materialise_occluded(
    dataset: Sequence[dict],
    kind: str,
    out_dir: str | Path,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Write an occluded copy of any schema dataset: ``out_dir/images/<split>/<id>.png`` + manifest.

    ``manifest.csv`` has the columns of :func:`ferlib.data.synthfer.materialise` (id, path, split,
    label, subject, yaw, pitch, roll, occlusion, lm5, lm8; ``occlusion`` is ``kind``, or
    ``<previous>+<kind>`` when the sample's meta already named an occlusion) plus ``occluder_area`` (fraction of the
    image the occluder covers) and ``placement`` (``landmarks``, or ``template`` when the sample had
    no landmarks and the canonical template for an aligned crop was used; the count is printed).
    Sample ``i`` is occluded with seed ``(seed, i)``, so a rerun writes the same files. The manifest
    is written last and atomically (``ferlib.fileio``): a directory without one is incomplete.
    """
    from tqdm.auto import tqdm

    from ferlib.fileio import atomic_write_bytes, atomic_write_text

    kind = canonical_kind(kind)
    out_dir = Path(out_dir)
    rows: list[list[str]] = []
    n_template = 0
    for i in tqdm(range(len(dataset)), desc=f"occlude ({kind})", disable=not progress):
        sample = dataset[i]
        meta = dict(sample.get("meta") or {})
        image = sample["image"]
        arr = tensor_to_array(image) if isinstance(image, torch.Tensor) else np.asarray(image)
        lm5 = sample.get("landmarks5")
        lm5 = None if lm5 is None else np.asarray(lm5.numpy() if hasattr(lm5, "numpy") else lm5, dtype=np.float32)
        placement = "landmarks"
        if lm5 is None or not np.isfinite(lm5).all():
            lm5_use = template_landmarks5(arr.shape[0], arr.shape[1])
            placement = "template"
            n_template += 1
        else:
            lm5_use = lm5
        out, mask = occlude(np.ascontiguousarray(arr), lm5_use, kind, np.random.default_rng([seed, i]))
        # Keep an occlusion the source already had (e.g. SynthFER's own): "sunglasses+mask".
        before = meta.get("occlusion")
        occlusion_label = kind if before in (None, "", "none") else f"{before}+{kind}"
        split = str(meta.get("split") or "test")
        sid = safe_id(meta.get("id", f"{i:06d}"))
        rel = Path("images") / split / f"{sid}.png"
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="PNG", compress_level=1)
        atomic_write_bytes(out_dir / rel, buf.getvalue())
        rows.append(
            [
                str(meta.get("id", i)),
                rel.as_posix(),
                split,
                str(int(sample["label"])),
                _fmt(meta.get("subject")),
                _fmt(meta.get("yaw")),
                _fmt(meta.get("pitch")),
                _fmt(meta.get("roll")),
                occlusion_label,
                format_points(lm5, 5),
                format_points(sample.get("landmarks8"), 8),
                f"{mask.mean():.5f}",
                placement,
            ]
        )
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(list(MANIFEST_COLUMNS) + ["occluder_area", "placement"])
    writer.writerows(rows)
    manifest = atomic_write_text(out_dir / "manifest.csv", text.getvalue())
    if n_template and progress:
        print(
            f"materialise_occluded: {n_template} of {len(dataset)} samples had no landmarks5; "
            "the occluder was placed on the canonical aligned-crop template (placement=template)"
        )
    return manifest
