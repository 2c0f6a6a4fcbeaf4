"""Drawing a SynthFER face from its :class:`~ferlib.data.synthfer.parameters.FaceParams`: the canonical shapes,
the 3D lift and pose, the PIL polygons, lighting, the occluder and degradations (:func:`render_face`).
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from ferlib.data.face_geometry import canonical_template, fit_similarity
from ferlib.data.synthfer.expressions import AU_INDEX
from ferlib.data.synthfer.parameters import FaceParams, Identity, rgb_tuple

# ---------------------------------------------------------------------------------------------
# Geometry: canonical shapes → 3D → pose → image
# ---------------------------------------------------------------------------------------------


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = R_roll · R_yaw · R_pitch (degrees) in the frame x right, y down, z to the camera."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rp = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    rr = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rr @ ry @ rp


def _surface_z(ident: Identity, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    q = 1.0 - (x / ident.face_a) ** 2 - y**2
    return ident.face_c * np.sqrt(np.maximum(q, 0.02))


#: Where :func:`render_face` puts a face: the ArcFace 5-point template (``TEMPLATE_112`` of
#: :mod:`ferlib.data.face_geometry`, Deng et al. 2019) scaled to the image. ``FaceParams.centre`` and
#: ``FaceParams.scale`` are the alignment's jitter around it; these nominal values mean "exactly on it".
NOMINAL_CENTRE = (0.5, 0.47)
NOMINAL_SCALE = 0.36


def neutral_points5(ident: Identity) -> np.ndarray:
    """The identity's expressionless 5 points in the 3D face frame (5×3; slot order of ``landmarks5``):
    pupil centres, nose tip, mouth corners. The alignment is fitted to these (like a detector on the
    neutral face), so that an expression moves the points relative to the template as it does in a
    photograph's aligned crop."""
    xy = np.array(
        [
            [-ident.eye_sep, ident.eye_y],
            [ident.eye_sep, ident.eye_y],
            [0.0, ident.nose_y],
            [-ident.mouth_w, ident.mouth_y],
            [ident.mouth_w, ident.mouth_y],
        ]
    )
    z = _surface_z(ident, xy[:, 0], xy[:, 1])
    z[:2] += 0.014
    z[2] += _nose_extra_z(ident, xy[2:3])[0]
    return np.column_stack([xy, z])


def alignment(p: FaceParams) -> tuple[np.ndarray, np.ndarray, float]:
    """The 2×3 pixel projection ``P`` and offset ``t`` of face-frame points (``pixel = P·X + t``) and
    the pixels per face unit.

    A render-then-align model of a detector-plus-alignment crop: the head is rotated by pitch and yaw
    and projected orthographically; a similarity (:func:`~ferlib.data.face_geometry.fit_similarity`)
    then maps its neutral 5 points onto the template (jittered by ``centre``/``scale``), and roll is
    applied last, about the template's centre, as the residual in-plane rotation of the crop.
    """
    size = p.image_size
    rot0 = rotation_matrix(p.yaw, p.pitch, 0.0)
    q = neutral_points5(p.identity) @ rot0[:2].T
    tmpl = canonical_template(size).astype(np.float64)
    c = tmpl.mean(0)
    c_j = c + (np.asarray(p.centre, dtype=np.float64) - NOMINAL_CENTRE) * size
    target = c_j + (tmpl - c) * (p.scale / NOMINAL_SCALE)
    m = fit_similarity(q, target)
    r = math.radians(p.roll)
    rr = np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])
    lin = rr @ m[:, :2]
    t = rr @ (m[:, 2] - c_j) + c_j
    return lin @ rot0[:2], t, float(math.sqrt(abs(np.linalg.det(lin))))


class _Projector:
    def __init__(self, p: FaceParams) -> None:
        self.p = p
        self.rot = rotation_matrix(p.yaw, p.pitch, p.roll)
        proj, t, self.px = alignment(p)  # px: pixels per face unit
        self.proj = proj
        self.cx, self.cy = float(t[0]), float(t[1])  # where the head centre lands
        self.prow = proj.tolist()
        self._sil: np.ndarray | None = None

    def project(self, xy: np.ndarray, extra_z: np.ndarray | float = 0.0, z: np.ndarray | None = None) -> np.ndarray:
        """Canonical (x, y) points (lifted onto the head surface + ``extra_z``, or at depth ``z``)
        → rotated → aligned pixel coordinates, N×2."""
        xy = np.asarray(xy, dtype=np.float64)
        x, y = xy[:, 0], xy[:, 1]
        zz = _surface_z(self.p.identity, x, y) + extra_z if z is None else z
        (r00, r01, r02), (r10, r11, r12) = self.prow
        out = np.empty((len(xy), 2))
        out[:, 0] = self.cx + r00 * x + r01 * y + r02 * zz
        out[:, 1] = self.cy + r10 * x + r11 * y + r12 * zz
        return out

    def silhouette(self, n: int, jaw: float, chin: float, t: np.ndarray | None = None) -> np.ndarray:
        """Outline of the rotated head ellipsoid (exact ellipse), narrowed at the jaw."""
        if self._sil is None:
            ident = self.p.identity
            # Silhouette of the un-rolled head, then the roll as a 2D rotation (roll is about the
            # view axis, so it commutes with the projection).
            roll = math.radians(self.p.roll)
            rz = np.array([[math.cos(roll), -math.sin(roll)], [math.sin(roll), math.cos(roll)]])
            m = (rz.T @ self.proj) @ np.diag([ident.face_a, 1.0, ident.face_c])
            w, v = np.linalg.eigh(m @ m.T)  # the ellipse {m·u : |u| = 1} = {L·v : |v| = 1}
            lmat = v @ np.diag(np.sqrt(np.maximum(w, 1e-12))) @ v.T
            self._sil = lmat.T @ rz.T
        if t is None:
            t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        cu, su = np.cos(t), np.sin(t)
        low = np.clip(su, 0, None)
        cu = cu * (1 - jaw * low**2)
        su = np.where(su > 0, su * (1 + chin * low**4), su)
        pts = np.column_stack([cu, su]) @ self._sil
        return pts + [self.cx, self.cy]


_T11 = np.linspace(-1, 1, 11)
_T13 = np.linspace(-1, 1, 13)
_ANG10 = np.linspace(0, 2 * np.pi, 10, endpoint=False)
_CIRCLE16 = np.column_stack(
    [np.cos(np.linspace(0, 2 * np.pi, 16, endpoint=False)), np.sin(np.linspace(0, 2 * np.pi, 16, endpoint=False))]
)
_COS14 = np.cos(np.linspace(0, 2 * np.pi, 14))
_SIN14 = np.sin(np.linspace(0, 2 * np.pi, 14))


def _arc(t: np.ndarray, power: float) -> np.ndarray:
    """(1 - t²)^power for t in [-1, 1]: the profile of lids and lips."""
    return np.power(np.maximum(1 - t * t, 0.0), power)


def _eye_shapes(ident: Identity, au: np.ndarray, side: int) -> dict[str, np.ndarray]:
    """Sclera outline, iris, pupil and lid lines of one eye in the canonical plane.

    side 0 = subject's right eye (image left, x < 0), 1 = subject's left eye (image right)."""
    a = lambda k: float(au[AU_INDEX[k], side])  # noqa: E731
    s = -1.0 if side == 0 else 1.0
    cx, cy = s * ident.eye_sep, ident.eye_y
    w = ident.eye_w
    pupil_r = ident.iris_r * 0.45
    # AU5 raises the upper lid, AU7 tightens both lids, AU6 pushes the lower lid up, AU4 lowers the upper.
    h_up = ident.eye_h * (1 + 1.0 * a(5) - 0.4 * a(7) - 0.25 * a(4) - 0.1 * a(6))
    h_lo = 0.8 * ident.eye_h * (1 + 0.3 * a(5) - 0.5 * a(6) - 0.45 * a(7))
    h_up = max(h_up, 1.5 * pupil_r)
    h_lo = max(h_lo, 1.4 * pupil_r)
    t = _T11
    upper = np.column_stack([cx + w * t, cy - h_up * _arc(t, 0.7)])
    lower = np.column_stack([cx + w * t[::-1], cy + h_lo * _arc(t[::-1], 0.8)])
    sclera = np.concatenate([upper, lower[1:-1]])

    def clip_to_eye(pts: np.ndarray) -> np.ndarray:
        tt = np.clip((pts[:, 0] - cx) / w, -1, 1)
        x = cx + w * tt
        y = np.clip(pts[:, 1], cy - h_up * _arc(tt, 0.7), cy + h_lo * _arc(tt, 0.8))
        return np.column_stack([x, y])

    circle = _CIRCLE16
    iris = clip_to_eye(circle * ident.iris_r + [cx, cy])
    pupil = clip_to_eye(circle * pupil_r + [cx, cy])
    crease = np.column_stack([cx + w * 0.9 * t, cy + (h_lo + 0.02) * _arc(t, 0.8)]) if a(6) > 0.25 else None
    return {
        "sclera": sclera,
        "iris": iris,
        "pupil": pupil,
        "lid": upper,
        "crease": crease,
        "centre": np.array([[cx, cy]]),
        "corners": np.array([[cx - w, cy], [cx + w, cy]]),
        "top_bottom": np.array([[cx, cy - h_up], [cx, cy + h_lo]]),
    }


def _brow_shape(ident: Identity, au: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    a = lambda k: float(au[AU_INDEX[k], side])  # noqa: E731
    s = -1.0 if side == 0 else 1.0
    base_y = ident.eye_y - ident.brow_gap
    inner = np.array([s * (ident.eye_sep - ident.eye_w * 0.9), base_y + 0.01])
    mid = np.array([s * ident.eye_sep, base_y - 0.025])
    outer = np.array([s * (ident.eye_sep + ident.eye_w * 1.35), base_y + 0.005])
    # AU1 inner brow raiser, AU2 outer brow raiser, AU4 brow lowerer (down and together), AU9 slight lowering.
    inner = inner + [-s * 0.045 * a(4), -0.11 * a(1) + 0.08 * a(4) + 0.03 * a(9)]
    mid = mid + [0.0, -0.05 * a(1) - 0.07 * a(2) + 0.05 * a(4)]
    outer = outer + [0.0, -0.1 * a(2) + 0.02 * a(4)]
    pts = np.stack([inner, mid, outer])
    th = ident.brow_th * np.array([1.0, 0.9, 0.5])
    poly = np.concatenate(
        [pts - np.column_stack([np.zeros(3), th / 2]), (pts + np.column_stack([np.zeros(3), th / 2]))[::-1]]
    )
    return poly, pts


def _mouth_shapes(ident: Identity, au: np.ndarray) -> dict[str, Any]:
    a = lambda k, sd: float(au[AU_INDEX[k], sd])  # noqa: E731
    corners = []
    for side in (0, 1):
        s = -1.0 if side == 0 else 1.0
        # AU12 lip-corner puller (out, up), AU15 depressor (down), AU20 stretcher (out),
        # AU23 tightener (narrower), AU14 dimpler (tightened, slightly up).
        dx = 0.08 * a(12, side) + 0.1 * a(20, side) - 0.05 * a(23, side) - 0.02 * a(14, side)
        dy = -0.1 * a(12, side) + 0.1 * a(15, side) + 0.03 * a(20, side) - 0.035 * a(14, side)
        corners.append([s * (ident.mouth_w + dx), ident.mouth_y + dy])
    (xl, yl), (xr, yr) = corners
    amax = lambda k: float(au[AU_INDEX[k]].max())  # noqa: E731
    n = 13
    t = _T13
    x = xl + (xr - xl) * (t + 1) / 2
    # Lip line: through both corners; smiles deepen the centre, AU15 lifts it.
    curv = 0.02 * amax(12) - 0.015 * amax(15) + 0.005
    y_line = yl + (yr - yl) * (t + 1) / 2 + curv * _arc(t, 1.0)
    opening = 0.28 * amax(26) + 0.07 * amax(16) + 0.045 * amax(12) + 0.03 * amax(20) - 0.02 * amax(23)
    opening = max(opening, 0.0)
    thin = 1 - 0.45 * amax(23)
    up_th = ident.lip_up * thin
    lo_th = ident.lip_lo * thin
    inner_top = y_line - 0.3 * opening * _arc(t, 0.7) - 0.012 * amax(9)
    inner_bot = y_line + 0.7 * opening * _arc(t, 0.7) + 0.03 * amax(16) * _arc(t, 1.0)
    bow = 0.3 * up_th * np.exp(-((t / 0.18) ** 2))
    top = inner_top - up_th * _arc(t, 0.6) + bow * _arc(t, 0.6) - 0.02 * amax(9) * _arc(t, 0.6)
    bottom = inner_bot + lo_th * _arc(t, 0.6)
    upper_lip = np.concatenate([np.column_stack([x, top]), np.column_stack([x, inner_top])[::-1]])
    lower_lip = np.concatenate([np.column_stack([x, inner_bot]), np.column_stack([x, bottom])[::-1]])
    interior = np.concatenate([np.column_stack([x, inner_top]), np.column_stack([x, inner_bot])[::-1]])
    teeth_h = np.minimum(inner_bot - inner_top, 0.035)
    teeth = np.concatenate([np.column_stack([x, inner_top]), np.column_stack([x, inner_top + teeth_h * 0.9])[::-1]])
    c = n // 2
    below = np.array([[0.0, bottom[c] + 0.09]])
    return {
        "upper_lip": upper_lip,
        "lower_lip": lower_lip,
        "interior": interior,
        "teeth": teeth,
        "open": opening > 0.012,
        "corners": np.array(corners),
        "lip_points": np.array([[x[c], top[c]], [x[c], bottom[c]], [x[c], inner_top[c]], [x[c], inner_bot[c]]]),
        "below": below,
    }


def _shade(colour: tuple[int, int, int], f: float, add: tuple[float, float, float] = (0, 0, 0)) -> tuple[int, int, int]:
    return rgb_tuple(np.asarray(colour, dtype=np.float64) * f + np.asarray(add))


def _nose_extra_z(ident: Identity, pts: np.ndarray) -> np.ndarray:
    """Protrusion of the nose above the head surface: grows from the bridge to the tip."""
    frac = np.clip((pts[:, 1] - ident.eye_y) / (ident.nose_y - ident.eye_y), 0, 1.05)
    return ident.nose_len * frac * np.exp(-((pts[:, 0] / (ident.nose_w * 1.6)) ** 2))


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _background(ident: Identity, img_size_ss: int) -> Image.Image:
    """Vertical two-colour gradient (one column, stretched sideways with nearest resampling: fast)."""
    ramp = np.linspace(0.0, 1.0, img_size_ss)[:, None]
    col = np.asarray(ident.background[0]) * (1 - ramp) + np.asarray(ident.background[1]) * ramp
    column = Image.fromarray(col.astype(np.uint8)[:, None, :])
    return column.resize((img_size_ss, img_size_ss), Image.NEAREST)


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
    proj = _Projector(p)
    # Drawing coordinates: final pixel centre c ↔ supersampled coordinate ss·c + (ss-1)/2. PIL
    # truncates float vertices to integers, so +0.5 turns that into rounding (no half-pixel bias).
    off = (ss - 1) / 2.0 + 0.5

    def to_draw(pts: np.ndarray) -> list[tuple[float, float]]:
        q = pts * ss + off
        return list(map(tuple, q.tolist()))

    img = _background(ident, big)
    draw = ImageDraw.Draw(img)
    # Background clutter: a few shapes that belong to the identity's "room".
    crng = np.random.default_rng(ident.clutter_seed)
    for _ in range(int(crng.integers(0, 4))):
        x0, y0 = crng.uniform(0, big, 2)
        w, h = crng.uniform(0.1, 0.4, 2) * big
        colour = rgb_tuple(crng.uniform(0, 255, 3))
        if crng.random() < 0.5:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=colour)
        else:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=colour)

    skin = ident.skin
    # Shoulders and neck (the body does not turn with the head).
    cxp, cyp, pxs = proj.cx, proj.cy, proj.px
    shoulders = np.array([[cxp - 1.5 * pxs, cyp + 1.45 * pxs], [cxp + 1.5 * pxs, cyp + 3.2 * pxs]])
    draw.ellipse(to_draw(shoulders), fill=ident.clothes)
    neck = np.array(
        [
            [cxp - 0.36 * pxs, cyp + 0.4 * pxs],
            [cxp + 0.36 * pxs, cyp + 0.4 * pxs],
            [cxp + 0.42 * pxs, cyp + 1.6 * pxs],
            [cxp - 0.42 * pxs, cyp + 1.6 * pxs],
        ]
    )
    draw.polygon(to_draw(neck), fill=_shade(skin, 0.82))

    # Hair behind the head.
    if ident.hair_style == "long":
        back = proj.project(
            np.array(
                [
                    [-1.12 * ident.face_a, -0.3],
                    [1.12 * ident.face_a, -0.3],
                    [1.2 * ident.face_a, 1.25],
                    [-1.2 * ident.face_a, 1.25],
                ]
            ),
            z=np.full(4, -0.35),
        )
        draw.polygon(to_draw(back), fill=ident.hair)
    if ident.hair_style != "bald":
        vol = proj.silhouette(40, 0.0, 0.0)
        centre = np.array([proj.cx, proj.cy])
        vol = (vol - centre) * 1.09 + centre + (proj.project(np.array([[0.0, -0.06]]), z=np.zeros(1))[0] - centre)
        draw.polygon(to_draw(vol), fill=ident.hair)

    # Head.
    jaw_eff = ident.jaw
    chin_eff = ident.chin + 0.12 * float(au[AU_INDEX[26]].max())
    outline = proj.silhouette(48, jaw_eff, chin_eff)
    draw.polygon(to_draw(outline), fill=skin)

    # Cheeks (AU6 raises them) and nasolabial folds (AU12, AU9).
    for side in (0, 1):
        s = -1.0 if side == 0 else 1.0
        a6 = float(au[AU_INDEX[6], side])
        amount = ident.blush * 0.5 + a6
        if amount > 0.15:
            cy = ident.eye_y + 0.24 - 0.07 * a6
            cheek = np.column_stack([s * (ident.eye_sep + 0.03) + 0.12 * _COS14, cy + (0.05 + 0.03 * a6) * _SIN14])
            draw.polygon(
                to_draw(proj.project(cheek)), fill=_shade(skin, 0.97, (12 * amount, -10 * amount, -8 * amount))
            )

    mouth = _mouth_shapes(ident, au)
    fold_colour = _shade(skin, 0.72)
    for side in (0, 1):
        s = -1.0 if side == 0 else 1.0
        fold = max(float(au[AU_INDEX[12], side]), float(au[AU_INDEX[9], side]), float(au[AU_INDEX[20], side]) * 0.6)
        if fold > 0.2:
            corner = mouth["corners"][side]
            pts = np.array(
                [
                    [s * ident.nose_w * 1.4, ident.nose_y - 0.02],
                    [s * (ident.nose_w * 1.4 + 0.07), (ident.nose_y + corner[1]) / 2],
                    [corner[0] + s * 0.05, corner[1] + 0.03],
                ]
            )
            draw.line(to_draw(proj.project(pts)), fill=fold_colour, width=max(1, int(round(pxs * ss * 0.012 * fold))))
        a14 = float(au[AU_INDEX[14], side])
        if a14 > 0.25:  # dimple beside the corner
            corner = mouth["corners"][side]
            pts = np.array([[corner[0] + s * 0.035, corner[1] - 0.04], [corner[0] + s * 0.04, corner[1] + 0.03]])
            draw.line(to_draw(proj.project(pts)), fill=fold_colour, width=max(1, int(round(pxs * ss * 0.012 * a14))))

    # Hair on top of the forehead (fringe).
    if ident.hair_style != "bald":
        hl = ident.hairline
        xs = np.linspace(-ident.face_a * 0.98, ident.face_a * 0.98, 11)
        line = np.column_stack([xs, hl + 0.14 * (xs / ident.face_a) ** 2])
        t_end = math.asin(max(-0.999, min(0.999, hl + 0.14)))
        ts = np.linspace(t_end, -math.pi - t_end, 14)
        # Top edge slightly outside the head so no skin shows between fringe and hair volume.
        top = np.column_stack([1.08 * ident.face_a * np.cos(ts), 1.08 * np.sin(ts)])
        fringe = np.concatenate([top, line])
        draw.polygon(to_draw(proj.project(fringe)), fill=ident.hair)

    # Brows.
    brow_colour = _shade(ident.hair, 0.8) if ident.hair_style != "bald" else _shade(skin, 0.45)
    brow_pts = []
    for side in (0, 1):
        poly, pts = _brow_shape(ident, au, side)
        draw.polygon(to_draw(proj.project(poly)), fill=brow_colour)
        brow_pts.append(pts if side == 1 else pts[::-1])  # image-left brow listed outer → inner
    if float(au[AU_INDEX[4]].max()) > 0.3:  # glabella lines
        g = float(au[AU_INDEX[4]].max())
        for s in (-1.0, 1.0):
            pts = np.array([[s * 0.04, ident.eye_y - ident.brow_gap + 0.02], [s * 0.05, ident.eye_y - 0.03]])
            draw.line(to_draw(proj.project(pts)), fill=fold_colour, width=max(1, int(round(pxs * ss * 0.008 * g))))

    # Eyes.
    eyes = [_eye_shapes(ident, au, side) for side in (0, 1)]
    lash = _shade(ident.hair, 0.5)
    for e in eyes:
        draw.polygon(to_draw(proj.project(e["sclera"], 0.01)), fill=(236, 236, 232))
        draw.polygon(to_draw(proj.project(e["iris"], 0.012)), fill=ident.iris)
        draw.polygon(to_draw(proj.project(e["pupil"], 0.014)), fill=(12, 10, 10))
        draw.line(to_draw(proj.project(e["lid"], 0.012)), fill=lash, width=max(1, int(round(pxs * ss * 0.01))))
        if e["crease"] is not None:
            draw.line(to_draw(proj.project(e["crease"])), fill=fold_colour, width=max(1, int(round(pxs * ss * 0.006))))

    # Nose: shaded ridge, nostrils, tip highlight. AU9 wrinkles it and lifts the nostrils.
    a9 = float(au[AU_INDEX[9]].max())
    ny, nw = ident.nose_y, ident.nose_w * (1 + 0.2 * a9)
    ridge = np.array(
        [
            [-0.025, ident.eye_y + 0.06],
            [0.025, ident.eye_y + 0.06],
            [nw * 0.95, ny + 0.005 - 0.02 * a9],
            [nw * 0.5, ny + 0.04],
            [0.0, ny + 0.035],
            [-nw * 0.5, ny + 0.04],
            [-nw * 0.95, ny + 0.005 - 0.02 * a9],
        ]
    )
    draw.polygon(to_draw(proj.project(ridge, _nose_extra_z(ident, ridge) * 0.6)), fill=_shade(skin, 0.86))
    ang = _ANG10
    nostrils = []
    for s in (-1.0, 1.0):
        c = np.array([s * nw * 0.5, ny + 0.022 - 0.015 * a9])
        nostrils.append(c)
        poly = np.column_stack([c[0] + 0.022 * np.cos(ang), c[1] + 0.011 * np.sin(ang)])
        draw.polygon(to_draw(proj.project(poly, _nose_extra_z(ident, poly) * 0.5)), fill=_shade(skin, 0.35))
    tip = np.array([[0.0, ny]])
    tip_poly = np.column_stack([0.028 * np.cos(ang), ny - 0.01 + 0.02 * np.sin(ang)])
    draw.polygon(to_draw(proj.project(tip_poly, _nose_extra_z(ident, tip_poly))), fill=_shade(skin, 1.06, (8, 8, 8)))
    if a9 > 0.3:
        for k in range(2):
            y = ident.eye_y + 0.09 + 0.035 * k
            pts = np.array([[-0.04, y], [0.04, y]])
            draw.line(
                to_draw(proj.project(pts, _nose_extra_z(ident, pts))),
                fill=fold_colour,
                width=max(1, int(round(pxs * ss * 0.007 * a9))),
            )

    # Mouth.
    if mouth["open"]:
        draw.polygon(to_draw(proj.project(mouth["interior"])), fill=(60, 18, 22))
        draw.polygon(to_draw(proj.project(mouth["teeth"])), fill=(240, 238, 228))
    draw.polygon(to_draw(proj.project(mouth["upper_lip"])), fill=_shade(ident.lip, 0.92))
    draw.polygon(to_draw(proj.project(mouth["lower_lip"])), fill=ident.lip)

    if ss > 1:
        img = img.reduce(ss)
    image = np.asarray(img)

    # ---- landmarks (projections of the same canonical points the polygons use) ----
    nose_tip = proj.project(tip, _nose_extra_z(ident, tip))
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
            proj.project(np.array(nostrils), _nose_extra_z(ident, np.array(nostrils)) * 0.5),
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
    """Lighting (a linear gradient that darkens away from the light), brightness/contrast, blur,
    noise and JPEG, mostly through PIL's C routines (this is the hot loop of the dataset)."""
    ident, d = p.identity, p.degradations
    size = image.shape[0]
    pil = Image.fromarray(image)
    if ident.light_strength > 0:
        # Gain map 1 - k·(0.5 + cos θ·x + sin θ·y), x, y ∈ [-½, ½]: darker away from the light.
        ca, sa, k = math.cos(ident.light_angle), math.sin(ident.light_angle), ident.light_strength
        g = np.linspace(-0.5, 0.5, size, dtype=np.float32)
        gain_map = (255.0 * (1 - 0.5 * k) - 255.0 * k * ca * g)[None, :] - (255.0 * k * sa * g)[:, None]
        gain = Image.fromarray(np.clip(gain_map, 0, 255).astype(np.uint8), "L").convert("RGB")
        pil = ImageChops.multiply(pil, gain)
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
