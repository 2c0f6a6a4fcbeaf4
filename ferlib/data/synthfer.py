"""SynthFER: ferlib's procedural, *synthetic* facial-expression dataset with exact landmarks.

No package ships a labelled expression dataset and nothing may be downloaded, so ferlib renders its
own faces. SynthFER is a cartoon-like world for running the pipeline, teaching and controlled
robustness tests; numbers measured on it are **not** reproductions of any paper's results.

How a face is made (``render_face``):

1. **Canonical 3D face frame.** x to the image right, y down, z towards the camera; the head is an
   ellipsoid with semi-axes (a, 1, c). Every feature (eyes, brows, nose, lips, cheeks, hair line) is
   a 2D shape in the frontal (x, y) plane lifted onto the ellipsoid surface ``z = c·sqrt(1 - x²/a² -
   y²)``; the nose gets an extra protrusion. Identity (``Identity``) sets face shape, skin tone,
   hair, eye spacing and size, iris colour, nose, mouth width, lips, brows, background and lighting.
2. **Facial action units** (FACS) deform the shapes with intensities in [0, 1], per side so that
   contempt can be unilateral. Each class uses its standard prototype (:data:`AU_PROTOTYPES`:
   happiness AU6+12, sadness AU1+4+15, surprise AU1+2+5+26, fear AU1+2+4+5+20+26, anger AU4+5+7+23,
   disgust AU9+15+16, contempt unilateral AU12+14, neutral none) at a random intensity, plus small
   random activity on every AU so that classes overlap (fear vs surprise differ only by AU4+20).
3. **Pose.** Rotate by pitch (about x), then yaw (about y), then roll (about the view axis), and
   project with weak perspective (orthographic projection times a scale). Positive yaw turns the
   nose towards the image right, positive pitch moves it down, positive roll rotates the face
   clockwise on screen. The head outline is the exact silhouette of the rotated ellipsoid (the
   ellipse ``{P·R·S·u : |u| = 1}``), narrowed at the jaw.
4. **Drawing.** Filled PIL polygons at ``supersample``× resolution, reduced by box averaging
   (anti-aliasing), then lighting (a linear light gradient), an occluder from :mod:`ferlib.data.occlusion`
   placed from the exact landmarks, and degradations (brightness/contrast, Gaussian blur, noise,
   JPEG).

Landmarks are the projected positions of the very points the polygons are built from, in pixel
coordinates of the output image with pixel ``(row r, column c)`` centred at ``(x=c, y=r)``:
``landmarks5`` (RetinaFace order, :data:`ferlib.data.schema.LANDMARK5_NAMES`; the eye points are the
pupil centres), ``landmarks8`` (Multiple Attention Network l1..l8, ``man.txt`` Table 2 / Fig. 4:
nose tip, image-left eye outer & inner corner, image-right eye inner & outer corner, image-left and
image-right mouth corner, a point below the mouth) and ``landmarks`` (:data:`CONTOUR_NAMES`).

Determinism: sample ``i`` of ``(seed, split, config)`` depends on nothing else (not on ``n`` or on
which worker renders it). Identities are keyed by ``(seed, split, subject)`` and subject names carry
the split (``train-0042``), so train and test identities are disjoint.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from torch.utils.data import Dataset

from ferlib.data.images import array_to_tensor, tensor_to_array
from ferlib.data.labels import CANONICAL_CLASSES, class_names as _class_names

# ---------------------------------------------------------------------------------------------
# Action units and expression prototypes
# ---------------------------------------------------------------------------------------------

#: FACS action units the face model implements (columns of ``FaceParams.au``).
AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 12, 14, 15, 16, 20, 23, 26)
_AU = {au: k for k, au in enumerate(AUS)}

#: Prototype AUs per canonical class (EMFACS-style prototypes named in issue 2). Contempt is
#: unilateral: AU12+14 on one randomly chosen side.
AU_PROTOTYPES: dict[str, tuple[int, ...]] = {
    "neutral": (),
    "happy": (6, 12),
    "sad": (1, 4, 15),
    "surprise": (1, 2, 5, 26),
    "fear": (1, 2, 4, 5, 20, 26),
    "disgust": (9, 15, 16),
    "anger": (4, 5, 7, 23),
    "contempt": (12, 14),
}

#: Occlusion kinds in ``meta["occlusion"]`` (``none`` plus :data:`ferlib.data.occlusion.OCCLUDER_KINDS`).
OCCLUSIONS: tuple[str, ...] = ("none", "mask", "sunglasses", "hand", "random")

_SPLIT_CODES = {"train": 0, "test": 1, "val": 2}

#: Names of the K = 40 contour points in ``landmarks`` (image-left before image-right).
CONTOUR_NAMES: tuple[str, ...] = (
    tuple(f"jaw_{k:02d}" for k in range(17))
    + ("brow_l_outer", "brow_l_mid", "brow_l_inner", "brow_r_inner", "brow_r_mid", "brow_r_outer")
    + ("eye_l_outer", "eye_l_top", "eye_l_inner", "eye_l_bottom",
       "eye_r_inner", "eye_r_top", "eye_r_outer", "eye_r_bottom")
    + ("nose_tip", "nostril_l", "nostril_r")
    + ("mouth_l", "lip_top", "mouth_r", "lip_bottom", "lip_inner_top", "lip_inner_bottom")
)

# ---------------------------------------------------------------------------------------------
# Configuration and parameters
# ---------------------------------------------------------------------------------------------


def _default_occlusion_probs() -> dict[str, float]:
    return {"none": 0.7, "mask": 0.075, "sunglasses": 0.075, "hand": 0.075, "random": 0.075}


def _default_degradation_probs() -> dict[str, float]:
    return {"blur": 0.15, "noise": 0.15, "jpeg": 0.15, "brightness_contrast": 0.3}


@dataclass(frozen=True)
class SynthFERConfig:
    """Everything that decides what SynthFER renders (saved next to results with ``save_config``).

    ``num_classes``: 7 (canonical 0–6) or 8 (adds contempt). Pose ranges are uniform, in degrees
    (``|yaw| ≤ 60``: beyond that the far eye would leave the face outline of this simple model).
    ``occlusion_probs``: probability of each of :data:`OCCLUSIONS` (normalised). ``degradation_probs``:
    independent probability of each degradation. ``intensity_range``: uniform range of the
    expression intensity; ``au_noise``: standard deviation of the random activity added to every AU
    (absolute value of a normal draw). ``subjects_per_split``: size of each split's identity pool.
    """

    image_size: int = 224
    num_classes: int = 7
    yaw_range: tuple[float, float] = (-40.0, 40.0)
    pitch_range: tuple[float, float] = (-15.0, 15.0)
    roll_range: tuple[float, float] = (-12.0, 12.0)
    occlusion_probs: dict = field(default_factory=_default_occlusion_probs)
    degradation_probs: dict = field(default_factory=_default_degradation_probs)
    au_noise: float = 0.12
    intensity_range: tuple[float, float] = (0.3, 1.0)
    subjects_per_split: int = 1000
    supersample: int = 2
    return_occluder_mask: bool = False

    def __post_init__(self) -> None:
        if self.num_classes not in (7, 8):
            raise ValueError(f"SynthFERConfig.num_classes must be 7 or 8, got {self.num_classes}")
        if self.image_size < 16:
            raise ValueError(f"SynthFERConfig.image_size must be ≥ 16 px, got {self.image_size}")
        if max(abs(v) for v in self.yaw_range) > 60:
            raise ValueError(f"SynthFERConfig.yaw_range must stay within ±60°, got {self.yaw_range}")
        unknown = set(self.occlusion_probs) - set(OCCLUSIONS)
        if unknown or sum(self.occlusion_probs.values()) <= 0:
            raise ValueError(
                f"SynthFERConfig.occlusion_probs: keys must be in {OCCLUSIONS} with a positive sum, "
                f"got {self.occlusion_probs}"
            )
        unknown = set(self.degradation_probs) - {"blur", "noise", "jpeg", "brightness_contrast"}
        if unknown:
            raise ValueError(f"SynthFERConfig.degradation_probs: unknown keys {sorted(unknown)}")
        if self.supersample < 1:
            raise ValueError("SynthFERConfig.supersample must be ≥ 1")

    def __hash__(self) -> int:  # the dict fields would make the generated hash fail
        return hash(tuple(
            tuple(sorted(v.items())) if isinstance(v, dict) else v
            for v in (getattr(self, f.name) for f in dataclasses.fields(self))
        ))


#: A config with no occlusion and no degradation, handy for clean figures and landmark checks.
CLEAN_CONFIG = SynthFERConfig(occlusion_probs={"none": 1.0}, degradation_probs={})

#: Named configs, so that a run's JSON config can choose one by name (``config="frontal"``).
#:
#: ``standard``  the default world: poses up to ±40° yaw, occluders, degradations, weak expressions.
#: ``clean``     the same faces with no occluder and no degradation.
#: ``frontal``   near-frontal (yaw ±15°, pitch ±8°, roll ±5°), clean, clear expressions (intensity
#:               0.6–1.0, little AU noise): the easier world in which a CPU budget of a few dozen
#:               optimiser steps already separates the classes (``make study``'s default profile).
SYNTHFER_PRESETS: dict[str, SynthFERConfig] = {
    "standard": SynthFERConfig(),
    "clean": CLEAN_CONFIG,
    "frontal": SynthFERConfig(
        yaw_range=(-15.0, 15.0), pitch_range=(-8.0, 8.0), roll_range=(-5.0, 5.0),
        occlusion_probs={"none": 1.0}, degradation_probs={},
        intensity_range=(0.6, 1.0), au_noise=0.05,
    ),
}


def resolve_config(config: "SynthFERConfig | str | dict | None") -> SynthFERConfig:
    """A :class:`SynthFERConfig` from a config, a preset name (:data:`SYNTHFER_PRESETS`), a dict of
    fields (JSON configs; ``{"preset": "frontal", "yaw_range": [-20, 20]}`` starts from a preset),
    or None (the standard config)."""
    if config is None:
        return SynthFERConfig()
    if isinstance(config, SynthFERConfig):
        return config
    if isinstance(config, str):
        try:
            return SYNTHFER_PRESETS[config]
        except KeyError:
            raise ValueError(
                f"unknown SynthFER preset {config!r}; choose one of {sorted(SYNTHFER_PRESETS)}"
            ) from None
    if isinstance(config, dict):
        fields = dict(config)
        base = resolve_config(fields.pop("preset", None))
        names = {f.name for f in dataclasses.fields(SynthFERConfig)}
        unknown = sorted(set(fields) - names)
        if unknown:
            raise ValueError(f"unknown SynthFERConfig field(s) {unknown}; fields are {sorted(names)}")
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
        return dataclasses.replace(base, **fields)
    raise TypeError(f"SynthFER config must be a SynthFERConfig, a preset name or a dict, not {type(config).__name__}")


@dataclass(frozen=True)
class Identity:
    """Per-subject appearance, fixed across all of that subject's images. Lengths in face units
    (head half-height = 1); colours RGB 0–255."""

    face_a: float  # head half-width
    face_c: float  # head depth
    jaw: float  # narrowing of the lower face
    chin: float  # chin elongation
    skin: tuple[int, int, int]
    lip: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_style: str  # short | long | bald
    hairline: float
    eye_y: float
    eye_sep: float  # half the distance between pupil centres
    eye_w: float  # eye half-width
    eye_h: float  # upper-lid opening
    iris: tuple[int, int, int]
    iris_r: float
    brow_gap: float
    brow_th: float
    nose_y: float
    nose_w: float
    nose_len: float  # protrusion of the tip
    mouth_y: float
    mouth_w: float  # half-width
    lip_up: float
    lip_lo: float
    blush: float
    background: tuple[tuple[int, int, int], tuple[int, int, int]]
    clutter_seed: int
    clothes: tuple[int, int, int]
    light_angle: float
    light_strength: float


@dataclass(frozen=True)
class Degradations:
    """Image degradations applied after drawing (0 / 1.0 means off)."""

    brightness: float = 0.0  # additive, in 0–255 units
    contrast: float = 1.0
    blur_sigma: float = 0.0  # output pixels
    noise_std: float = 0.0  # 0–255 units
    jpeg_quality: int = 0  # 0 = no JPEG round trip


@dataclass(frozen=True, eq=False)
class FaceParams:
    """Everything ``render_face`` needs. Change a field with ``dataclasses.replace`` (e.g. yaw)."""

    identity: Identity
    au: np.ndarray  # len(AUS) × 2 intensities; column 0 = subject's right (image left)
    label: int
    intensity: float
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    occlusion: str = "none"
    occlusion_seed: int = 0
    degradations: Degradations = Degradations()
    image_size: int = 224
    supersample: int = 2
    centre: tuple[float, float] = (0.5, 0.5)  # head centre, fraction of the image
    scale: float = 0.36  # head half-height, fraction of the image

    def au_value(self, au: int, side: int | None = None) -> float:
        """Intensity of ``au`` on a side (0 subject's right / image left, 1 the other) or the max."""
        row = self.au[_AU[au]]
        return float(row.max() if side is None else row[side])


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------

_SKIN_BASE = np.array(
    [[255, 224, 189], [241, 194, 150], [224, 172, 125], [198, 140, 95], [150, 100, 65], [100, 65, 40]],
    dtype=np.float64,
)
_HAIR = np.array([[20, 15, 12], [60, 40, 25], [110, 75, 40], [180, 140, 80], [200, 190, 170], [120, 40, 20]], dtype=np.float64)
_IRIS = np.array([[70, 45, 25], [40, 28, 18], [60, 100, 150], [80, 110, 70], [110, 90, 50]], dtype=np.float64)


def _rgb(v: np.ndarray) -> tuple[int, int, int]:
    v = np.clip(np.asarray(v, dtype=np.float64), 0, 255)
    return int(v[0]), int(v[1]), int(v[2])


def split_code(split: str) -> int:
    if split not in _SPLIT_CODES:
        raise ValueError(f"SynthFER split must be one of {sorted(_SPLIT_CODES)}, got {split!r}")
    return _SPLIT_CODES[split]


def subject_name(split: str, subject: int) -> str:
    """Identity id of SynthFER subject ``subject`` of ``split`` (split in the name → disjoint)."""
    return f"{split}-{int(subject):04d}"


@functools.lru_cache(maxsize=4096)
def sample_identity(seed: int, split: str, subject: int) -> Identity:
    """The appearance of one subject; a pure function of ``(seed, split, subject)``."""
    rng = np.random.default_rng([int(seed), split_code(split), int(subject), 2])
    u = rng.random
    tone = u() * (len(_SKIN_BASE) - 1)
    k = int(tone)
    skin = _SKIN_BASE[k] * (1 - (tone - k)) + _SKIN_BASE[k + 1] * (tone - k) + rng.normal(0, 6, 3)
    lip = skin * np.array([0.78, 0.52, 0.55]) + np.array([30, 0, 5]) + rng.normal(0, 8, 3)
    hair = _HAIR[int(rng.integers(len(_HAIR)))] + rng.normal(0, 10, 3)
    bg_hue = rng.uniform(40, 230, 3)
    bg2 = np.clip(bg_hue + rng.normal(0, 40, 3), 0, 255)
    style = ("short", "long", "bald")[int(rng.choice(3, p=[0.5, 0.4, 0.1]))]
    return Identity(
        face_a=float(u() * 0.14 + 0.70),
        face_c=float(u() * 0.1 + 0.85),
        jaw=float(u() * 0.3),
        chin=float(u() * 0.12),
        skin=_rgb(skin),
        lip=_rgb(lip),
        hair=_rgb(hair),
        hair_style=style,
        hairline=float(-0.62 + u() * 0.14),
        eye_y=float(-0.22 + u() * 0.1),
        eye_sep=float(0.27 + u() * 0.08),
        eye_w=float(0.12 + u() * 0.035),
        eye_h=float(0.055 + u() * 0.017),
        iris=_rgb(_IRIS[int(rng.integers(len(_IRIS)))] + rng.normal(0, 8, 3)),
        iris_r=float(0.052 + u() * 0.012),
        brow_gap=float(0.13 + u() * 0.05),
        brow_th=float(0.035 + u() * 0.02),
        nose_y=float(0.12 + u() * 0.1),
        nose_w=float(0.065 + u() * 0.03),
        nose_len=float(0.2 + u() * 0.15),
        mouth_y=float(0.42 + u() * 0.1),
        mouth_w=float(0.21 + u() * 0.07),
        lip_up=float(0.035 + u() * 0.015),
        lip_lo=float(0.045 + u() * 0.02),
        blush=float(u() * 0.6),
        background=(_rgb(bg_hue), _rgb(bg2)),
        clutter_seed=int(rng.integers(2**31)),
        clothes=_rgb(rng.uniform(20, 235, 3)),
        light_angle=float(rng.uniform(0, 2 * math.pi)),
        light_strength=float(rng.uniform(0.0, 0.35)),
    )


def expression_aus(
    rng: np.random.Generator, label: int, intensity: float, au_noise: float
) -> np.ndarray:
    """AU intensities (len(AUS)×2) for class ``label``: prototype × intensity + |N(0, au_noise)|."""
    name = CANONICAL_CLASSES[label]
    au = np.abs(rng.normal(0.0, au_noise, (len(AUS), 1))) * np.ones((1, 2))
    au += np.abs(rng.normal(0.0, au_noise * 0.3, (len(AUS), 2)))  # slight asymmetry
    proto = AU_PROTOTYPES[name]
    if name == "contempt":
        side = int(rng.integers(2))
        for a in proto:
            au[_AU[a], side] += intensity * rng.uniform(0.8, 1.1)
    else:
        for a in proto:
            au[_AU[a], :] += intensity * rng.uniform(0.8, 1.1)
    return np.clip(au, 0.0, 1.0)


def _choose(rng: np.random.Generator, probs: Mapping[str, float]) -> str:
    keys = [k for k in OCCLUSIONS if probs.get(k, 0) > 0]
    p = np.array([probs[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def sample_params(
    rng: np.random.Generator,
    label: int,
    split: str = "train",
    config: SynthFERConfig | None = None,
    *,
    subject: int | None = None,
    seed: int = 0,
) -> FaceParams:
    """Draw one face: the identity of ``subject`` (random from ``rng`` when None), an expression of
    class ``label``, a pose, an occlusion and degradations, as configured."""
    cfg = config or SynthFERConfig()
    if not 0 <= int(label) < cfg.num_classes:
        raise ValueError(f"label {label} out of range for num_classes={cfg.num_classes}")
    if subject is None:
        subject = int(rng.integers(cfg.subjects_per_split))
    ident = sample_identity(seed, split, subject)
    lo, hi = cfg.intensity_range
    intensity = float(rng.uniform(lo, hi)) if label != 0 else 0.0
    au = expression_aus(rng, int(label), intensity, cfg.au_noise)
    yaw = float(rng.uniform(*cfg.yaw_range))
    pitch = float(rng.uniform(*cfg.pitch_range))
    roll = float(rng.uniform(*cfg.roll_range))
    occ = _choose(rng, cfg.occlusion_probs)
    occ_seed = int(rng.integers(2**31))
    dp = cfg.degradation_probs
    draws = rng.random(4)
    params = rng.random(6)
    deg = Degradations(
        brightness=float((params[0] - 0.5) * 70) if draws[0] < dp.get("brightness_contrast", 0) else 0.0,
        contrast=float(0.65 + 0.7 * params[1]) if draws[0] < dp.get("brightness_contrast", 0) else 1.0,
        blur_sigma=float(0.4 + 1.4 * params[2]) * cfg.image_size / 224 if draws[1] < dp.get("blur", 0) else 0.0,
        noise_std=float(3 + 14 * params[3]) if draws[2] < dp.get("noise", 0) else 0.0,
        jpeg_quality=int(12 + 50 * params[4]) if draws[3] < dp.get("jpeg", 0) else 0,
    )
    centre = (0.5 + float(rng.normal(0, 0.02)), 0.47 + float(rng.normal(0, 0.02)))
    scale = float(0.36 + 0.04 * params[5])
    return FaceParams(
        identity=ident, au=au, label=int(label), intensity=intensity, yaw=yaw, pitch=pitch, roll=roll,
        occlusion=occ, occlusion_seed=occ_seed, degradations=deg, image_size=int(cfg.image_size),
        supersample=int(cfg.supersample), centre=centre, scale=scale,
    )


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


class _Projector:
    def __init__(self, p: FaceParams) -> None:
        self.p = p
        self.rot = rotation_matrix(p.yaw, p.pitch, p.roll)
        size = p.image_size
        self.px = p.scale * size  # pixels per face unit
        self.cx, self.cy = p.centre[0] * size, p.centre[1] * size
        self.prow = (self.px * self.rot[:2]).tolist()  # the two projected rows, in pixels
        self._sil: np.ndarray | None = None

    def project(self, xy: np.ndarray, extra_z: np.ndarray | float = 0.0, z: np.ndarray | None = None) -> np.ndarray:
        """Canonical (x, y) points (lifted onto the head surface + ``extra_z``, or at depth ``z``)
        → rotated → weak-perspective pixel coordinates, N×2."""
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
            m = (rz.T @ self.rot[:2, :]) @ np.diag([ident.face_a, 1.0, ident.face_c])
            w, v = np.linalg.eigh(m @ m.T)  # the ellipse {m·u : |u| = 1} = {L·v : |v| = 1}
            lmat = v @ np.diag(np.sqrt(np.maximum(w, 1e-12))) @ v.T
            self._sil = (lmat.T @ rz.T) * self.px
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
_CIRCLE16 = np.column_stack([np.cos(np.linspace(0, 2 * np.pi, 16, endpoint=False)),
                             np.sin(np.linspace(0, 2 * np.pi, 16, endpoint=False))])
_COS14 = np.cos(np.linspace(0, 2 * np.pi, 14))
_SIN14 = np.sin(np.linspace(0, 2 * np.pi, 14))


def _arc(t: np.ndarray, power: float) -> np.ndarray:
    """(1 - t²)^power for t in [-1, 1]: the profile of lids and lips."""
    return np.power(np.maximum(1 - t * t, 0.0), power)


def _eye_shapes(ident: Identity, au: np.ndarray, side: int) -> dict[str, np.ndarray]:
    """Sclera outline, iris, pupil and lid lines of one eye in the canonical plane.

    side 0 = subject's right eye (image left, x < 0), 1 = subject's left eye (image right)."""
    a = lambda k: float(au[_AU[k], side])  # noqa: E731
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
        "sclera": sclera, "iris": iris, "pupil": pupil, "lid": upper, "crease": crease,
        "centre": np.array([[cx, cy]]),
        "corners": np.array([[cx - w, cy], [cx + w, cy]]),
        "top_bottom": np.array([[cx, cy - h_up], [cx, cy + h_lo]]),
    }


def _brow_shape(ident: Identity, au: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    a = lambda k: float(au[_AU[k], side])  # noqa: E731
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
    poly = np.concatenate([pts - np.column_stack([np.zeros(3), th / 2]), (pts + np.column_stack([np.zeros(3), th / 2]))[::-1]])
    return poly, pts


def _mouth_shapes(ident: Identity, au: np.ndarray) -> dict[str, Any]:
    a = lambda k, sd: float(au[_AU[k], sd])  # noqa: E731
    corners = []
    for side in (0, 1):
        s = -1.0 if side == 0 else 1.0
        # AU12 lip-corner puller (out, up), AU15 depressor (down), AU20 stretcher (out),
        # AU23 tightener (narrower), AU14 dimpler (tightened, slightly up).
        dx = 0.08 * a(12, side) + 0.1 * a(20, side) - 0.05 * a(23, side) - 0.02 * a(14, side)
        dy = -0.1 * a(12, side) + 0.1 * a(15, side) + 0.03 * a(20, side) - 0.035 * a(14, side)
        corners.append([s * (ident.mouth_w + dx), ident.mouth_y + dy])
    (xl, yl), (xr, yr) = corners
    amax = lambda k: float(au[_AU[k]].max())  # noqa: E731
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
        "upper_lip": upper_lip, "lower_lip": lower_lip, "interior": interior, "teeth": teeth,
        "open": opening > 0.012, "corners": np.array(corners),
        "lip_points": np.array([[x[c], top[c]], [x[c], bottom[c]], [x[c], inner_top[c]], [x[c], inner_bot[c]]]),
        "below": below,
    }


def _shade(colour: tuple[int, int, int], f: float, add: tuple[float, float, float] = (0, 0, 0)) -> tuple[int, int, int]:
    return _rgb(np.asarray(colour, dtype=np.float64) * f + np.asarray(add))


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
        colour = _rgb(crng.uniform(0, 255, 3))
        if crng.random() < 0.5:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=colour)
        else:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=colour)

    skin = ident.skin
    # Shoulders and neck (the body does not turn with the head).
    cxp, cyp, pxs = proj.cx, proj.cy, proj.px
    shoulders = np.array([[cxp - 1.5 * pxs, cyp + 1.45 * pxs], [cxp + 1.5 * pxs, cyp + 3.2 * pxs]])
    draw.ellipse(to_draw(shoulders), fill=ident.clothes)
    neck = np.array([[cxp - 0.36 * pxs, cyp + 0.4 * pxs], [cxp + 0.36 * pxs, cyp + 0.4 * pxs],
                     [cxp + 0.42 * pxs, cyp + 1.6 * pxs], [cxp - 0.42 * pxs, cyp + 1.6 * pxs]])
    draw.polygon(to_draw(neck), fill=_shade(skin, 0.82))

    # Hair behind the head.
    if ident.hair_style == "long":
        back = proj.project(np.array([[-1.12 * ident.face_a, -0.3], [1.12 * ident.face_a, -0.3],
                                      [1.2 * ident.face_a, 1.25], [-1.2 * ident.face_a, 1.25]]), z=np.full(4, -0.35))
        draw.polygon(to_draw(back), fill=ident.hair)
    if ident.hair_style != "bald":
        vol = proj.silhouette(40, 0.0, 0.0)
        centre = np.array([proj.cx, proj.cy])
        vol = (vol - centre) * 1.09 + centre + (proj.project(np.array([[0.0, -0.06]]), z=np.zeros(1))[0] - centre)
        draw.polygon(to_draw(vol), fill=ident.hair)

    # Head.
    jaw_eff = ident.jaw
    chin_eff = ident.chin + 0.12 * float(au[_AU[26]].max())
    outline = proj.silhouette(48, jaw_eff, chin_eff)
    draw.polygon(to_draw(outline), fill=skin)

    # Cheeks (AU6 raises them) and nasolabial folds (AU12, AU9).
    for side in (0, 1):
        s = -1.0 if side == 0 else 1.0
        a6 = float(au[_AU[6], side])
        amount = ident.blush * 0.5 + a6
        if amount > 0.15:
            cy = ident.eye_y + 0.24 - 0.07 * a6
            cheek = np.column_stack([s * (ident.eye_sep + 0.03) + 0.12 * _COS14,
                                     cy + (0.05 + 0.03 * a6) * _SIN14])
            draw.polygon(to_draw(proj.project(cheek)), fill=_shade(skin, 0.97, (12 * amount, -10 * amount, -8 * amount)))

    mouth = _mouth_shapes(ident, au)
    fold_colour = _shade(skin, 0.72)
    for side in (0, 1):
        s = -1.0 if side == 0 else 1.0
        fold = max(float(au[_AU[12], side]), float(au[_AU[9], side]), float(au[_AU[20], side]) * 0.6)
        if fold > 0.2:
            corner = mouth["corners"][side]
            pts = np.array([[s * ident.nose_w * 1.4, ident.nose_y - 0.02],
                            [s * (ident.nose_w * 1.4 + 0.07), (ident.nose_y + corner[1]) / 2],
                            [corner[0] + s * 0.05, corner[1] + 0.03]])
            draw.line(to_draw(proj.project(pts)), fill=fold_colour, width=max(1, int(round(pxs * ss * 0.012 * fold))))
        a14 = float(au[_AU[14], side])
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
    if float(au[_AU[4]].max()) > 0.3:  # glabella lines
        g = float(au[_AU[4]].max())
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
    a9 = float(au[_AU[9]].max())
    ny, nw = ident.nose_y, ident.nose_w * (1 + 0.2 * a9)
    ridge = np.array([[-0.025, ident.eye_y + 0.06], [0.025, ident.eye_y + 0.06], [nw * 0.95, ny + 0.005 - 0.02 * a9],
                      [nw * 0.5, ny + 0.04], [0.0, ny + 0.035], [-nw * 0.5, ny + 0.04], [-nw * 0.95, ny + 0.005 - 0.02 * a9]])
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
            draw.line(to_draw(proj.project(pts, _nose_extra_z(ident, pts))), fill=fold_colour, width=max(1, int(round(pxs * ss * 0.007 * a9))))

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
    contour = np.concatenate([
        proj.silhouette(0, jaw_eff, chin_eff, t=jaw_t),
        proj.project(brow_pts[0]),
        proj.project(brow_pts[1]),
        proj.project(np.array([eyes[0]["corners"][0], eyes[0]["top_bottom"][0], eyes[0]["corners"][1], eyes[0]["top_bottom"][1]]), 0.01),
        proj.project(np.array([eyes[1]["corners"][0], eyes[1]["top_bottom"][0], eyes[1]["corners"][1], eyes[1]["top_bottom"][1]]), 0.01),
        nose_tip,
        proj.project(np.array(nostrils), _nose_extra_z(ident, np.array(nostrils)) * 0.5),
        proj.project(np.array([mouth["corners"][0], mouth["lip_points"][0], mouth["corners"][1], mouth["lip_points"][1],
                               mouth["lip_points"][2], mouth["lip_points"][3]])),
    ]).astype(np.float32)

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


# ---------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------


def synthfer_labels(n: int, seed: int, split: str, num_classes: int) -> np.ndarray:
    """Labels of samples 0..n-1: each block of ``num_classes`` consecutive indices is a seeded
    permutation of the classes, so classes are balanced (±1) and label i does not depend on n."""
    rng = np.random.default_rng([int(seed), split_code(split), 4, int(num_classes)])
    blocks = -(-int(n) // num_classes)
    keys = rng.random((blocks, num_classes))
    return np.argsort(keys, axis=1).ravel()[:n].astype(np.int64)


def synthfer_subjects(n: int, seed: int, split: str, subjects_per_split: int) -> np.ndarray:
    """Subject index of samples 0..n-1 (uniform over the split's pool; prefix-stable in n)."""
    rng = np.random.default_rng([int(seed), split_code(split), 3])
    return np.floor(rng.random(int(n)) * subjects_per_split).astype(np.int64)


class SynthFERDataset(Dataset):
    """A torch-style map dataset of ``n`` SynthFER faces, rendered lazily in ``__getitem__``.

    ``__getitem__(i)`` returns the ferlib sample dict (:mod:`ferlib.data.schema`): ``image`` uint8
    3×H×W tensor, ``label``, ``landmarks5``, ``landmarks8``, ``landmarks`` (float32), ``meta`` (``id``,
    ``path`` = None, ``subject``, ``split``, ``yaw``/``pitch``/``roll``, ``occlusion``, ``intensity``,
    ``occluder_area``) and, with ``config.return_occluder_mask``, ``occluder_mask`` (bool H×W).
    ``image_size``/``num_classes`` override the config's values when given.
    """

    def __init__(
        self,
        n: int,
        seed: int = 0,
        split: str = "train",
        image_size: int | None = None,
        num_classes: int | None = None,
        config: SynthFERConfig | str | dict | None = None,
    ) -> None:
        cfg = resolve_config(config)
        changes = {}
        if image_size is not None:
            changes["image_size"] = int(image_size)
        if num_classes is not None:
            changes["num_classes"] = int(num_classes)
        self.config = dataclasses.replace(cfg, **changes) if changes else cfg
        if int(n) < 0:
            raise ValueError(f"SynthFERDataset: n must be ≥ 0, got {n}")
        split_code(split)
        self.n = int(n)
        self.seed = int(seed)
        self.split = split
        self.class_names = _class_names(self.config.num_classes)
        self.labels = synthfer_labels(self.n, self.seed, split, self.config.num_classes)
        self.subject_index = synthfer_subjects(self.n, self.seed, split, self.config.subjects_per_split)
        self.subjects = np.array([subject_name(split, s) for s in self.subject_index], dtype=object)

    def __len__(self) -> int:
        return self.n

    def params(self, i: int) -> FaceParams:
        """The :class:`FaceParams` of sample ``i`` (render them with :func:`render_face`)."""
        if not 0 <= i < self.n:
            raise IndexError(f"SynthFER index {i} out of range for a dataset of {self.n}")
        rng = np.random.default_rng([self.seed, split_code(self.split), int(i), 1])
        return sample_params(rng, int(self.labels[i]), self.split, self.config,
                             subject=int(self.subject_index[i]), seed=self.seed)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        i = int(i)
        if i < 0:
            i += self.n
        p = self.params(i)
        image, info = render_face(p)
        sample: dict[str, Any] = {
            "image": array_to_tensor(image),
            "label": int(p.label),
            "landmarks5": torch.from_numpy(info["landmarks5"]),
            "landmarks8": torch.from_numpy(info["landmarks8"]),
            "landmarks": torch.from_numpy(info["landmarks"]),
            "meta": {
                "id": f"{self.split}_{i:06d}",
                "path": None,
                "subject": str(self.subjects[i]),
                "split": self.split,
                "yaw": p.yaw,
                "pitch": p.pitch,
                "roll": p.roll,
                "occlusion": p.occlusion,
                "intensity": p.intensity,
                "occluder_area": float(info["occluder_mask"].mean()),
                "dataset": "synthfer",
            },
        }
        if self.config.return_occluder_mask:
            sample["occluder_mask"] = torch.from_numpy(info["occluder_mask"])
        return sample


# ---------------------------------------------------------------------------------------------
# Materialise as an image folder with a manifest
# ---------------------------------------------------------------------------------------------


def _list_collate(batch: list) -> list:
    return batch


def materialise(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    split: str = "train",
    image_size: int = 224,
    num_classes: int = 7,
    *,
    n_test: int | None = None,
    config: SynthFERConfig | None = None,
    num_workers: int = 0,
    progress: bool = True,
) -> Path:
    """Write SynthFER as ``out_dir/images/<split>/<id>.png`` plus ``out_dir/manifest.csv``.

    ``split``: ``train``, ``test``, ``val`` or ``both`` (``n`` train images and ``n_test`` test
    images, default ``max(num_classes, n // 4)``). Manifest columns: ``id, path`` (relative to
    ``out_dir``), ``split, label, subject, yaw, pitch, roll, occlusion, lm5`` (10 floats
    ``x1 y1 … x5 y5``), ``lm8`` (16 floats). The manifest is written last and atomically, so a
    folder without one is an interrupted run. Returns the manifest's path.
    """
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from ferlib.fileio import atomic_write_bytes, atomic_write_text
    from ferlib.data.occlusion import MANIFEST_COLUMNS, format_points

    out_dir = Path(out_dir)
    if split == "both":
        plan = [("train", int(n)), ("test", int(n_test) if n_test is not None else max(num_classes, int(n) // 4))]
    else:
        split_code(split)
        plan = [(split, int(n))]
    rows: list[list[str]] = []
    for sp, count in plan:
        ds = SynthFERDataset(count, seed=seed, split=sp, image_size=image_size, num_classes=num_classes, config=config)
        loader = DataLoader(ds, batch_size=16, num_workers=num_workers, collate_fn=_list_collate)
        bar = tqdm(total=count, desc=f"SynthFER {sp}", disable=not progress, unit="img")
        for batch in loader:
            for s in batch:
                m = s["meta"]
                rel = Path("images") / sp / f"{m['id']}.png"
                buf = io.BytesIO()
                Image.fromarray(tensor_to_array(s["image"])).save(buf, format="PNG", compress_level=1)
                atomic_write_bytes(out_dir / rel, buf.getvalue())
                rows.append([
                    m["id"], rel.as_posix(), sp, str(s["label"]), m["subject"], f"{m['yaw']:.3f}",
                    f"{m['pitch']:.3f}", f"{m['roll']:.3f}", m["occlusion"],
                    format_points(s["landmarks5"], 5), format_points(s["landmarks8"], 8),
                ])
            bar.update(len(batch))
        bar.close()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(rows)
    return atomic_write_text(out_dir / "manifest.csv", text.getvalue())


__all__ = [
    "AUS", "AU_PROTOTYPES", "OCCLUSIONS", "CONTOUR_NAMES", "CLEAN_CONFIG", "SYNTHFER_PRESETS",
    "resolve_config",
    "SynthFERConfig", "Identity", "Degradations", "FaceParams",
    "sample_identity", "expression_aus", "sample_params", "render_face", "rotation_matrix",
    "SynthFERDataset", "synthfer_labels", "synthfer_subjects", "subject_name", "materialise",
]
