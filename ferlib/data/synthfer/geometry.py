"""SynthFER's geometry: the head frame, the pose, and the render-then-align projection that puts a face's
5 points on the ArcFace template (:func:`alignment`, :class:`Projector`).
"""

from __future__ import annotations

import math

import numpy as np

from ferlib.data.face_geometry import canonical_template, fit_similarity
from ferlib.data.synthfer.parameters import FaceParams, Identity


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = R_roll · R_yaw · R_pitch (degrees) in the frame x right, y down, z to the camera."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rp = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    rr = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rr @ ry @ rp


def surface_z(ident: Identity, x: np.ndarray, y: np.ndarray) -> np.ndarray:
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
    z = surface_z(ident, xy[:, 0], xy[:, 1])
    z[:2] += 0.014
    z[2] += nose_extra_z(ident, xy[2:3])[0]
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


class Projector:
    def __init__(self, p: FaceParams) -> None:
        self.p = p
        self.rot = rotation_matrix(p.yaw, p.pitch, p.roll)
        self.rot0 = rotation_matrix(p.yaw, p.pitch, 0.0)
        proj, t, self.px = alignment(p)  # px: pixels per face unit
        self.proj = proj
        self.cx, self.cy = float(t[0]), float(t[1])  # where the head centre lands
        self.prow = proj.tolist()
        # pixel → the rotated head frame's (u, v): (u, v) = lin⁻¹·(pixel - t), with proj = lin·rot0[:2].
        self.lin_inv = np.linalg.inv(proj @ self.rot0[:2].T)
        self._sil: np.ndarray | None = None

    def project(self, xy: np.ndarray, extra_z: np.ndarray | float = 0.0, z: np.ndarray | None = None) -> np.ndarray:
        """Canonical (x, y) points (lifted onto the head surface + ``extra_z``, or at depth ``z``)
        → rotated → aligned pixel coordinates, N×2."""
        xy = np.asarray(xy, dtype=np.float64)
        x, y = xy[:, 0], xy[:, 1]
        zz = surface_z(self.p.identity, x, y) + extra_z if z is None else z
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


def nose_extra_z(ident: Identity, pts: np.ndarray) -> np.ndarray:
    """Protrusion of the nose above the head surface: grows from the bridge to the tip."""
    frac = np.clip((pts[:, 1] - ident.eye_y) / (ident.nose_y - ident.eye_y), 0, 1.05)
    return ident.nose_len * frac * np.exp(-((pts[:, 0] / (ident.nose_w * 1.6)) ** 2))
