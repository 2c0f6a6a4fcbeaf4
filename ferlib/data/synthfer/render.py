"""Drawing a SynthFER face from its :class:`~ferlib.data.synthfer.parameters.FaceParams` (:func:`render_face`).

1. **Albedo.** Background (a smooth gradient with low-frequency tint), body, a neck joined to the jaw,
   ears, the head, brows, eyes, nostrils and mouth: filled PIL polygons at ``supersample``× resolution,
   box-reduced (anti-aliased edges). Shapes come from :mod:`.shapes` (AU-driven), positions from
   :mod:`.geometry` (the template-aligned projection).
2. **Shading** (:mod:`.shading`): the head and hair as lit surfaces with the face's relief, upsampled
   and applied per pixel, so that skin tone is modulated by the light; the hair is composited on the
   head's surface.
3. The occluder from :mod:`ferlib.data.occlusion` (placed from the exact landmarks), then lighting and
   degradations.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from ferlib.data.synthfer.expressions import AU_INDEX
from ferlib.data.synthfer.geometry import Projector, nose_extra_z, rotation_matrix
from ferlib.data.synthfer.parameters import FaceParams, Identity, rgb_tuple
from ferlib.data.synthfer.shading import shading
from ferlib.data.synthfer.shapes import brow_shape, eye_shape, mouth_shape

__all__ = ["render_face", "rotation_matrix"]

_ANG10 = np.linspace(0, 2 * np.pi, 10, endpoint=False)
_ANG16 = np.linspace(0, 2 * np.pi, 16, endpoint=False)
_COS14 = np.cos(np.linspace(0, 2 * np.pi, 14))
_SIN14 = np.sin(np.linspace(0, 2 * np.pi, 14))
SCLERA = (218, 212, 204)
_WARM = np.array([1.0, 0.96, 0.92], dtype=np.float32)
_GAIN = 1.3
#: Camera auto-exposure: the face's mean grey level (skin albedo × a typical shading of 0.75) is pulled
#: towards this value, within the gain limits below (dark skin is not rendered underexposed).
_EXPOSURE_TARGET = 120.0
_EXPOSURE_LIMITS = (0.9, 1.9)


def _exposure_lut(skin: tuple[int, int, int]) -> list[int]:
    luma = 0.299 * skin[0] + 0.587 * skin[1] + 0.114 * skin[2]
    gain = _GAIN * min(max(_EXPOSURE_TARGET / (0.75 * luma + 1e-6), _EXPOSURE_LIMITS[0]), _EXPOSURE_LIMITS[1])
    return [min(255, int(round(v * gain))) for v in range(256)] * 3


def _shade(colour: tuple[int, int, int], f: float, add: tuple[float, float, float] = (0, 0, 0)) -> tuple[int, int, int]:
    return rgb_tuple(np.asarray(colour, dtype=np.float64) * f + np.asarray(add))


def _background(ident: Identity, big: int) -> Image.Image:
    """A vertical two-colour gradient times a smooth low-frequency tint (a 3×3 random field, bilinearly
    enlarged): nothing with edges, so it cannot be mistaken for an occluder."""
    ramp = np.linspace(0.0, 1.0, 3)[:, None, None]
    col = np.asarray(ident.background[0]) * (1 - ramp) + np.asarray(ident.background[1]) * ramp
    tint = 1.0 + 0.16 * (np.random.default_rng(ident.clutter_seed).random((3, 3, 1)) - 0.5)
    small = Image.fromarray(np.clip(col * tint, 0, 255).astype(np.uint8))
    return small.resize((big // 2, big // 2), Image.BILINEAR).resize((big, big), Image.NEAREST)


def render_face(params: FaceParams) -> tuple[np.ndarray, dict[str, Any]]:
    """Render one face. Returns ``(image, info)``: uint8 H×W×3 and a dict with float32
    ``landmarks5`` (5×2), ``landmarks8`` (8×2), ``landmarks`` (K×2, :data:`CONTOUR_NAMES`) in pixel
    coordinates of ``image``, and ``occluder_mask`` (bool H×W, all False without occlusion)."""
    p = params
    ident = p.identity
    au = np.asarray(p.au, dtype=np.float64)
    size = int(p.image_size)
    ss = int(p.supersample)
    big = size * ss
    proj = Projector(p)
    # Drawing coordinates: final pixel centre c ↔ supersampled coordinate ss·c + (ss-1)/2. PIL
    # truncates float vertices to integers, so +0.5 turns that into rounding (no half-pixel bias).
    off = (ss - 1) / 2.0 + 0.5

    def to_draw(pts: np.ndarray) -> list[tuple[float, float]]:
        q = pts * ss + off
        return list(map(tuple, q.tolist()))

    img = _background(ident, big)
    draw = ImageDraw.Draw(img)
    skin = ident.skin
    pxs = proj.px
    jaw_eff = ident.jaw
    chin_eff = ident.chin + 0.12 * float(au[AU_INDEX[26]].max())
    outline = proj.silhouette(48, jaw_eff, chin_eff)
    # Shoulders (the body does not turn with the head) and a neck that starts at the jaw.
    cxp = size / 2 + 0.3 * (proj.cx - size / 2)
    bottom = proj.cy + 1.9 * pxs
    draw.ellipse(
        to_draw(np.array([[cxp - 1.6 * pxs, bottom - 0.35 * pxs], [cxp + 1.6 * pxs, bottom + 1.6 * pxs]])),
        fill=ident.clothes,
    )
    jaw_pts = proj.silhouette(0, jaw_eff, chin_eff, t=np.array([0.22 * np.pi, 0.78 * np.pi]))
    neck_w = 0.42 * pxs
    neck = np.array(
        [
            jaw_pts[0],
            jaw_pts[1],
            [min(jaw_pts[1][0], cxp - neck_w), bottom + 0.2 * pxs],
            [max(jaw_pts[0][0], cxp + neck_w), bottom + 0.2 * pxs],
        ]
    )
    draw.polygon(to_draw(neck), fill=_shade(skin, 0.5))

    # Long hair hanging behind the head (turns with it).
    if ident.hair_style == "long":
        back = proj.project(
            np.array(
                [
                    [-1.1 * ident.face_a, -0.2],
                    [1.1 * ident.face_a, -0.2],
                    [1.18 * ident.face_a, 1.3],
                    [-1.18 * ident.face_a, 1.3],
                ]
            ),
            z=np.full(4, -0.3),
        )
        draw.polygon(to_draw(back), fill=_shade(ident.hair, 0.55))
    # Ears: ellipses in the head's side planes, between the eye and nose heights.
    ey0, ey1 = ident.eye_y - 0.03, ident.nose_y + 0.06
    for s in (-1.0, 1.0):
        ring = np.column_stack(
            [
                np.full(16, s * ident.face_a * 1.02),
                (ey0 + ey1) / 2 + (ey1 - ey0) / 2 * np.sin(_ANG16),
                -0.12 * ident.face_c + 0.13 * np.cos(_ANG16),
            ]
        )
        ring[:, 0] += s * 0.07 * np.clip(np.cos(_ANG16), 0, None)  # the rim stands off the head
        pts = ring @ np.asarray(proj.prow).T + [proj.cx, proj.cy]
        draw.polygon(to_draw(pts), fill=_shade(skin, 0.9))
        inner = ring.copy()
        inner[:, 1:] = inner[:, 1:] * 0.55 + np.array([(ey0 + ey1) / 2, -0.12 * ident.face_c]) * 0.45
        inner[:, 0] -= s * 0.02
        draw.polygon(to_draw(inner @ np.asarray(proj.prow).T + [proj.cx, proj.cy]), fill=_shade(skin, 0.72))

    # Head.
    draw.polygon(to_draw(outline), fill=skin)
    for side in (0, 1):  # cheek colour
        s = -1.0 if side == 0 else 1.0
        amount = ident.blush * 0.5 + 0.5 * float(au[AU_INDEX[6], side])
        if amount > 0.15:
            cy = ident.eye_y + 0.24 - 0.06 * float(au[AU_INDEX[6], side])
            cheek = np.column_stack([s * (ident.eye_sep + 0.03) + 0.11 * _COS14, cy + 0.06 * _SIN14])
            draw.polygon(to_draw(proj.project(cheek)), fill=_shade(skin, 0.98, (10 * amount, -8 * amount, -6 * amount)))

    # Brows.
    brow_colour = _shade(ident.hair, 0.7) if ident.hair_style != "bald" else _shade(skin, 0.45)
    brow_pts = []
    for side in (0, 1):
        poly, pts = brow_shape(ident, au, side)
        draw.polygon(to_draw(proj.project(poly)), fill=brow_colour)
        brow_pts.append(pts if side == 1 else pts[::-1])  # image-left brow listed outer → inner

    # Eyes.
    eyes = [eye_shape(ident, au, side) for side in (0, 1)]
    lash = _shade(ident.hair, 0.35) if ident.hair_style != "bald" else (40, 30, 28)
    lash = rgb_tuple(np.clip(np.asarray(lash, dtype=np.float64), 58, 75))  # never as dark as the pupil
    for e in eyes:
        draw.polygon(to_draw(proj.project(e["sclera"], 0.01)), fill=SCLERA)
        draw.polygon(to_draw(proj.project(e["iris"], 0.012)), fill=ident.iris)
        draw.polygon(to_draw(proj.project(e["pupil"], 0.014)), fill=(4, 3, 3))
        draw.line(to_draw(proj.project(e["lid"], 0.012)), fill=lash, width=max(1, int(round(pxs * ss * 0.014))))

    # Nose: nostrils (AU9 lifts and widens them) and the wings.
    a9 = float(au[AU_INDEX[9]].max())
    ny, nw = ident.nose_y, ident.nose_w * (1 + 0.15 * a9)
    nostrils = []
    for s in (-1.0, 1.0):
        c = np.array([s * nw * 0.55, ny + 0.025 - 0.02 * a9])
        nostrils.append(c)
        poly = np.column_stack([c[0] + 0.024 * np.cos(_ANG10), c[1] + 0.011 * np.sin(_ANG10)])
        draw.polygon(to_draw(proj.project(poly, nose_extra_z(ident, poly) * 0.5)), fill=_shade(skin, 0.3))
    tip = np.array([[0.0, ny]])

    # Mouth.
    mouth = mouth_shape(ident, au)
    if mouth["open"]:
        draw.polygon(to_draw(proj.project(mouth["interior"])), fill=(55, 16, 20))
        if mouth["teeth_show"]:
            draw.polygon(to_draw(proj.project(mouth["teeth"])), fill=(225, 222, 212))
    draw.polygon(to_draw(proj.project(mouth["upper_lip"])), fill=_shade(ident.lip, 0.88))
    draw.polygon(to_draw(proj.project(mouth["lower_lip"])), fill=ident.lip)

    if ss > 1:
        img = img.reduce(ss)

    # ---- shading: head and hair as lit surfaces (on a coarse grid, applied with PIL's uint8 routines) ----
    n = max(32, size // 4)
    sh = shading(p, proj, au, eyes, mouth, n)
    factor = 1.0 + sh["cover"] * (sh["head"] - 1.0)
    if "hair_alpha" in sh:
        alpha = sh["hair_alpha"]
        factor += alpha * (sh["hair"] - factor)
        alpha_img = Image.fromarray((alpha * 255.0).astype(np.uint8), "L").resize((size, size), Image.BILINEAR)
        img = Image.composite(Image.new("RGB", (size, size), ident.hair), img, alpha_img)
    if ident.light_strength > 0:
        # Room light falling off across the image: gain 1 - k·(0.5 + cos θ·x + sin θ·y), x, y ∈ [-½, ½].
        ca, sa, kk = math.cos(ident.light_angle), math.sin(ident.light_angle), ident.light_strength
        g = (np.arange(n, dtype=np.float32) + 0.5) / n - 0.5
        factor = factor * (1 - 0.5 * kk - kk * ca * g)[None, :] - factor * (kk * sa * g)[:, None]
    # Shadows on skin turn warmer (less blue, then green); factors are stored /GAIN to keep highlights.
    f3 = factor[..., None] * (_WARM + (1 - _WARM) * factor[..., None]) * (255.0 / _GAIN)
    f_img = Image.fromarray(np.clip(f3, 0, 255).astype(np.uint8), "RGB").resize((size, size), Image.BILINEAR)
    img = ImageChops.multiply(img, f_img).point(_exposure_lut(skin))
    spec = Image.fromarray(np.clip(sh["specular"] * 255.0, 0, 255).astype(np.uint8), "L")
    img = ImageChops.add(img, spec.resize((size, size), Image.BILINEAR).convert("RGB"))
    image = np.asarray(img)

    # ---- landmarks (projections of the same canonical points the polygons use) ----
    nose_tip = proj.project(tip, nose_extra_z(ident, tip))
    centres = np.concatenate([proj.project(e["centre"], 0.014) for e in eyes])
    mouth_c = proj.project(mouth["corners"])
    lm5 = np.concatenate([centres, nose_tip, mouth_c]).astype(np.float32)
    corners_l = proj.project(eyes[0]["corners"], 0.01)  # [image-left outer, inner]
    corners_r = proj.project(eyes[1]["corners"], 0.01)  # [image-right inner, outer]
    below = proj.project(mouth["below"])
    lm8 = np.concatenate([nose_tip, corners_l, corners_r, mouth_c, below]).astype(np.float32)
    jaw_t = np.linspace(np.pi, 0, 17)
    contour = np.concatenate(
        [
            proj.silhouette(0, jaw_eff, chin_eff, t=jaw_t),
            proj.project(brow_pts[0]),
            proj.project(brow_pts[1]),
            proj.project(
                np.array(
                    [eyes[0]["corners"][0], eyes[0]["top_bottom"][0], eyes[0]["corners"][1], eyes[0]["top_bottom"][1]]
                ),
                0.01,
            ),
            proj.project(
                np.array(
                    [eyes[1]["corners"][0], eyes[1]["top_bottom"][0], eyes[1]["corners"][1], eyes[1]["top_bottom"][1]]
                ),
                0.01,
            ),
            nose_tip,
            proj.project(np.array(nostrils), nose_extra_z(ident, np.array(nostrils)) * 0.5),
            proj.project(
                np.array(
                    [
                        mouth["corners"][0],
                        mouth["lip_points"][0],
                        mouth["corners"][1],
                        mouth["lip_points"][1],
                        mouth["lip_points"][2],
                        mouth["lip_points"][3],
                    ]
                )
            ),
        ]
    ).astype(np.float32)

    # ---- occluder (placed from the exact landmarks), lighting and degradations ----
    occ_mask = np.zeros((size, size), dtype=bool)
    if p.occlusion != "none":
        from ferlib.data.occlusion import occlude

        image, occ_mask = occlude(np.ascontiguousarray(image), lm5, p.occlusion, p.occlusion_seed)
    image = _light_and_degrade(image, p)
    return image, {"landmarks5": lm5, "landmarks8": lm8, "landmarks": contour, "occluder_mask": occ_mask}


def _light_and_degrade(image: np.ndarray, p: FaceParams) -> np.ndarray:
    """Brightness/contrast, blur, noise and JPEG, through PIL's C routines (the hot loop of the dataset)."""
    d = p.degradations
    pil = Image.fromarray(image)
    if d.contrast != 1 or d.brightness != 0:
        lut = np.clip((np.arange(256) - 128.0) * d.contrast + 128.0 + d.brightness, 0, 255).astype(np.uint8)
        pil = pil.point(lut.tolist() * 3)
    if d.blur_sigma > 0:
        pil = pil.filter(ImageFilter.GaussianBlur(d.blur_sigma))
    if d.noise_std > 0:
        nrng = np.random.default_rng(p.occlusion_seed + 7)
        arr = np.asarray(pil).astype(np.int16)
        arr += (nrng.standard_normal(arr.shape, dtype=np.float32) * d.noise_std).astype(np.int16)
        pil = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if d.jpeg_quality > 0:
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=int(d.jpeg_quality))
        buf.seek(0)
        pil = Image.open(buf)
        pil.load()
        pil = pil.convert("RGB")
    return np.array(pil)
