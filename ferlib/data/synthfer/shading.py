"""Per-pixel shading of a SynthFER face: the head and hair as lit surfaces (vectorised numpy on a grid of
half the image size, then bilinearly upsampled).

* **Head.** Every grid pixel is traced onto the posed head ellipsoid (orthographic ray, a quadratic in
  depth), giving its surface point and normal. Lambertian shading ``ambient + diffuse·max(n·l, 0)``
  with a soft Blinn–Phong highlight, light from the front and above (tilted sideways per identity).
* **Relief.** A height field on the face (face units above the ellipsoid) adds what the ellipsoid lacks:
  eye sockets, brow ridge, nose (the same protrusion the landmarks use), the grooves beside the nose,
  cheeks (raised by AU6), nasolabial folds (deepened by AU12, AU9, AU20), the shade under the upper lid,
  the lip protrusion and the groove under the lower lip, the AU4 glabellar furrow, AU1/AU2 forehead
  lines and the AU9 wrinkles on the nose. It shades twice: its slope along the light (bump shading) and
  its depth (ambient occlusion: hollows are darker whatever the light).
* **Hair.** A second, slightly larger ellipsoid carries the hair: everything above the hairline, the
  sides (down to the temples, or past the jaw for long hair) and the back. Being part of the head, it
  turns with it and never detaches; its edges are soft.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ferlib.data.synthfer.expressions import AU_INDEX
from ferlib.data.synthfer.geometry import Projector, nose_extra_z
from ferlib.data.synthfer.shapes import arc, iod

AMBIENT = 0.42
DIFFUSE = 0.66
SPECULAR = 0.06
#: Bump-shading gain (per unit slope of the relief) and ambient-occlusion gain (per face unit of depth).
BUMP = 0.9
OCCLUSION = 7.0
_HAIR_INFLATE = 1.07
_HAIR_OFFSET = np.array([0.0, -0.035, -0.03])


def light_direction(ident: Any) -> np.ndarray:
    """Unit light vector in the camera frame (x right, y down, z to the camera): front-above, tilted
    sideways and up/down by the identity's ``light_angle`` with ``light_strength``."""
    side = ident.light_strength / 0.35
    v = np.array([0.55 * side * np.cos(ident.light_angle), -0.45 + 0.25 * side * np.sin(ident.light_angle), 1.0])
    return v / np.linalg.norm(v)


def _trace(proj: Projector, u: np.ndarray, v: np.ndarray, axes: np.ndarray, offset: np.ndarray):
    """Front intersection of the ray through (u, v) with the ellipsoid of semi-axes ``axes`` centred at
    ``offset`` (head frame). Returns (x, y, z in the head frame, camera-frame unit normal, disc ≥ 0 inside)."""
    r = proj.rot0.astype(np.float32)
    axes = axes.astype(np.float32)
    o = r @ offset.astype(np.float32)
    uu, vv = u - o[0], v - o[1]
    m = r @ np.diag(1.0 / axes**2).astype(np.float32) @ r.T
    b = m[0, 2] * uu + m[1, 2] * vv
    c = m[0, 0] * uu * uu + 2 * m[0, 1] * uu * vv + m[1, 1] * vv * vv - 1.0
    disc = b * b - m[2, 2] * c
    w = (-b + np.sqrt(np.maximum(disc, 0.0))) / m[2, 2]
    x = r[0, 0] * uu + r[1, 0] * vv + r[2, 0] * w
    y = r[0, 1] * uu + r[1, 1] * vv + r[2, 1] * w
    z = r[0, 2] * uu + r[1, 2] * vv + r[2, 2] * w
    gx, gy, gz = x / axes[0] ** 2, y / axes[1] ** 2, z / axes[2] ** 2
    n = np.stack([r[0, 0] * gx + r[0, 1] * gy + r[0, 2] * gz, r[1, 0] * gx + r[1, 1] * gy + r[1, 2] * gz])
    nz = r[2, 0] * gx + r[2, 1] * gy + r[2, 2] * gz
    norm = np.sqrt(n[0] ** 2 + n[1] ** 2 + nz**2) + 1e-9
    return x + offset[0], y + offset[1], z + offset[2], (n[0] / norm, n[1] / norm, nz / norm), disc


def _gauss(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def _groove(x, y, p0, p1, width: float) -> np.ndarray:
    """exp(-d²/2w²) of the distance d from (x, y) to the segment p0–p1."""
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    t = np.clip(((x - p0[0]) * dx + (y - p0[1]) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    ex, ey = x - p0[0] - t * dx, y - p0[1] - t * dy
    return np.exp(-0.5 * (ex * ex + ey * ey) / width**2)


def relief(ident: Any, au: np.ndarray, x: np.ndarray, y: np.ndarray, eyes: list, mouth: dict) -> np.ndarray:
    """Height of the face above its ellipsoid at canonical (x, y), face units (negative: hollows)."""
    a = lambda k, sd: float(au[AU_INDEX[k], sd])  # noqa: E731
    amax = lambda k: float(au[AU_INDEX[k]].max())  # noqa: E731
    d = iod(ident)
    ax = np.abs(x)
    h = (0.45 * nose_extra_z(ident, np.column_stack([x.ravel(), y.ravel()]))).astype(np.float32).reshape(x.shape)
    brow_y = ident.eye_y - ident.brow_gap
    # Beside the nose, from the bridge to the wings.
    gate = np.clip((y - ident.eye_y) / 0.08, 0, 1) * np.clip((ident.nose_y + 0.03 - y) / 0.04, 0, 1)
    h -= 0.02 * gate * np.exp(-0.5 * ((ax - 1.6 * ident.nose_w) / 0.035) ** 2)
    for side, e in enumerate(eyes):
        s = -1.0 if side == 0 else 1.0
        ex, ey = s * ident.eye_sep, ident.eye_y
        a6 = a(6, side)
        h -= 0.035 * _gauss(x, y, ex, ey - 0.02, 0.1, 0.065)  # eye socket
        h += 0.025 * _gauss(x, y, ex, brow_y - 0.01, 0.13, 0.04)  # brow ridge
        h += (0.02 + 0.035 * a6) * _gauss(x, y, s * (ident.eye_sep + 0.03), ey + 0.24 - 0.12 * d * a6, 0.1, 0.07)
        # Shade under the upper lid (the lid and lashes overhang the eyeball) and the lid crease above.
        tt = np.clip((x - ex) / ident.eye_w, -1.0, 1.0)
        inside = np.clip(1.15 - np.abs((x - ex) / ident.eye_w), 0, 0.15) / 0.15
        lid_y = ey - e["h_up"] * arc(tt, 0.7)
        h -= 0.025 * inside * np.exp(-0.5 * ((y - lid_y - 0.012) / 0.015) ** 2)
        h -= 0.015 * inside * np.exp(-0.5 * ((y - (ey - e["h_up"] - 0.04)) / 0.018) ** 2)
        h += 0.015 * a6 * inside * np.exp(-0.5 * ((y - (ey + e["h_lo"] + 0.03)) / 0.02) ** 2)  # lower-lid bulge
        # Nasolabial fold: nose wing → beside the mouth corner.
        corner = mouth["corners"][side]
        depth = 0.008 + 0.035 * max(a(12, side), 0.6 * a(9, side), 0.5 * a(20, side))
        wing = (s * ident.nose_w * 1.7, ident.nose_y + 0.0)
        h -= depth * _groove(x, y, wing, (corner[0] + s * 0.045, corner[1] + 0.05), 0.02)
        if a(14, side) > 0.1:  # dimple
            h -= 0.02 * a(14, side) * _gauss(x, y, corner[0] + s * 0.03, corner[1], 0.015, 0.03)
    # Lips stand out; the groove under the lower lip; the chin.
    my = ident.mouth_y
    h += 0.02 * _gauss(x, y, 0.0, my, ident.mouth_w * 0.9, 0.06)
    h -= 0.012 * _gauss(x, y, 0.0, mouth["bottom_y"] + 0.045, ident.mouth_w * 0.6, 0.02)
    h += 0.02 * _gauss(x, y, 0.0, 0.92, 0.15, 0.07)
    a4, a9, a12 = amax(4), amax(9), max(amax(1), amax(2))
    if a4 > 0.1:  # glabellar furrow
        for s in (-1.0, 1.0):
            h -= 0.025 * a4 * _groove(x, y, (s * 0.035, brow_y - 0.03), (s * 0.03, ident.eye_y - 0.05), 0.015)
    if a12 > 0.2:  # horizontal forehead lines
        for k in range(3):
            yk = brow_y - 0.1 - 0.06 * k
            h -= 0.005 * a12 * np.exp(-0.5 * ((y - yk) / 0.015) ** 2) * np.clip(1 - ax / 0.4, 0, 1)
    if a9 > 0.1:  # wrinkles across the nose bridge
        for k in range(3):
            yk = ident.eye_y + 0.04 + 0.04 * k
            h -= 0.012 * a9 * np.exp(-0.5 * ((y - yk) / 0.012) ** 2) * np.clip(1 - ax / 0.09, 0, 1)
    return h


def shading(p: Any, proj: Projector, au: np.ndarray, eyes: list, mouth: dict, n: int) -> dict[str, np.ndarray]:
    """Shading factors on an n×n grid over the image: ``head`` (multiplies the face where ``cover``),
    ``hair`` (multiplies the hair colour), ``hair_alpha`` (hair coverage), ``specular`` (added, 0–1 of
    full white)."""
    ident = p.identity
    size = p.image_size
    g = (np.arange(n, dtype=np.float32) + 0.5) * (size / n) - 0.5
    px, py = np.meshgrid(g - np.float32(proj.cx), g - np.float32(proj.cy))
    li = proj.lin_inv
    li = li.astype(np.float32)
    u = li[0, 0] * px + li[0, 1] * py
    v = li[1, 0] * px + li[1, 1] * py
    light = light_direction(ident)
    half = light + np.array([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)

    axes = np.array([ident.face_a, 1.0, ident.face_c])
    x, y, _, nrm, disc_head = _trace(proj, u, v, axes, np.zeros(3))
    ndl = nrm[0] * light[0] + nrm[1] * light[1] + nrm[2] * light[2]
    h = relief(ident, au, x, y, eyes, mouth)
    step = (size / n) / proj.px  # face units per grid cell
    gy, gx = np.gradient(h, step)
    # The slope of the relief seen in the image (rolled like the face) tilts the normal.
    r = proj.rot
    lx = light[0] * r[0, 0] + light[1] * r[1, 0]
    ly = light[0] * r[0, 1] + light[1] * r[1, 1]
    bump = np.clip(-BUMP * (gx * lx + gy * ly) * light[2], -0.4, 0.3)
    occl = np.clip(1.0 + OCCLUSION * np.minimum(h, 0.0), 0.45, 1.0)
    head = (AMBIENT + DIFFUSE * np.clip(ndl + bump, 0.0, 1.2)) * occl
    ndh = np.clip(nrm[0] * half[0] + nrm[1] * half[1] + nrm[2] * half[2], 0.0, 1.0)
    spec = SPECULAR * ndh**24 * occl

    # Where the head is: an analytic ramp over ~2 grid cells at the ellipsoid's silhouette (a drawn mask
    # would upsample into staircases).
    cover = np.clip(disc_head / 0.12, 0.0, 1.0)
    out = {
        "head": head.astype(np.float32),
        "cover": cover.astype(np.float32),
        "specular": (spec * cover).astype(np.float32),
    }
    if ident.hair_style == "bald":
        return out
    hx, hy, hz, hn, disc = _trace(proj, u, v, axes * _HAIR_INFLATE, _HAIR_OFFSET)
    xn = np.abs(hx) / (ident.face_a * _HAIR_INFLATE)
    soft = 0.03  # ≥ one grid cell: soft edges without staircases
    top = np.clip((ident.hairline + 0.14 * xn**2 - hy) / soft + 0.5, 0.0, 1.0)
    side_y = 1.25 if ident.hair_style == "long" else ident.eye_y - 0.12
    side_x = 0.87 if ident.hair_style == "long" else 0.9
    sides = np.clip((xn - side_x) / 0.02 + 0.5, 0.0, 1.0) * np.clip((side_y - hy) / 0.03 + 0.5, 0.0, 1.0)
    back = np.clip((-0.05 - hz) / 0.03, 0.0, 1.0) * np.clip((side_y + 0.5 - hy) / 0.05, 0.0, 1.0)
    edge = np.clip(disc / 0.15, 0.0, 1.0)  # soft silhouette (disc grows with the distance inside)
    alpha = np.maximum(np.maximum(top, sides), back) * edge
    hdl = hn[0] * light[0] + hn[1] * light[1] + hn[2] * light[2]
    out["hair_alpha"] = alpha.astype(np.float32)
    out["hair"] = (0.5 + 0.6 * np.clip(hdl, 0.0, 1.0)).astype(np.float32)
    hdh = np.clip(hn[0] * half[0] + hn[1] * half[1] + hn[2] * half[2], 0.0, 1.0)
    out["specular"] = (spec * cover * (1 - alpha) + 0.08 * hdh**12 * alpha).astype(np.float32)
    return out
