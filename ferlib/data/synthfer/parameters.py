"""What decides a SynthFER face: the config and its presets, per-subject :class:`Identity`, per-image
:class:`FaceParams`, and sampling them deterministically from ``(seed, split, index)``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ferlib.data.labels import CANONICAL_CLASSES
from ferlib.data.synthfer.expressions import AU_INDEX, AU_PROTOTYPES, AUS, OCCLUSIONS, SPLIT_CODES

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
        return hash(
            tuple(
                tuple(sorted(v.items())) if isinstance(v, dict) else v
                for v in (getattr(self, f.name) for f in dataclasses.fields(self))
            )
        )


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
        yaw_range=(-15.0, 15.0),
        pitch_range=(-8.0, 8.0),
        roll_range=(-5.0, 5.0),
        occlusion_probs={"none": 1.0},
        degradation_probs={},
        intensity_range=(0.6, 1.0),
        au_noise=0.05,
    ),
}


def resolve_config(config: SynthFERConfig | str | dict | None) -> SynthFERConfig:
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
            raise ValueError(f"unknown SynthFER preset {config!r}; choose one of {sorted(SYNTHFER_PRESETS)}") from None
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
    face_c: float  # head depth (semi-axis towards the camera; about face_a: see sample_identity)
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
    # The alignment's jitter: (0.5, 0.47) and 0.36 put the neutral 5 points exactly on the ArcFace
    # template scaled to the image; other values shift it (fraction of the image) and scale it (× scale/0.36).
    centre: tuple[float, float] = (0.5, 0.47)
    scale: float = 0.36

    def au_value(self, au: int, side: int | None = None) -> float:
        """Intensity of ``au`` on a side (0 subject's right / image left, 1 the other) or the max."""
        row = self.au[AU_INDEX[au]]
        return float(row.max() if side is None else row[side])


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------

_SKIN_BASE = np.array(
    [[255, 224, 189], [241, 194, 150], [224, 172, 125], [198, 140, 95], [150, 100, 65], [100, 65, 40]],
    dtype=np.float64,
)
_HAIR = np.array(
    [[20, 15, 12], [60, 40, 25], [110, 75, 40], [180, 140, 80], [200, 190, 170], [120, 40, 20]], dtype=np.float64
)
_IRIS = np.array([[75, 50, 30], [62, 42, 28], [60, 100, 150], [80, 110, 70], [110, 90, 50]], dtype=np.float64)


#: Alignment jitter: standard deviation of the template's shift (fraction of the image; 0.006 ≈ 1.3 px at
#: 224) and the full width of its uniform relative scale spread.
ALIGN_SHIFT_SD = 0.006
ALIGN_SCALE_SPREAD = 0.06


def rgb_tuple(v: np.ndarray) -> tuple[int, int, int]:
    v = np.clip(np.asarray(v, dtype=np.float64), 0, 255)
    return int(v[0]), int(v[1]), int(v[2])


def split_code(split: str) -> int:
    if split not in SPLIT_CODES:
        raise ValueError(f"SynthFER split must be one of {sorted(SPLIT_CODES)}, got {split!r}")
    return SPLIT_CODES[split]


def subject_name(split: str, subject: int) -> str:
    """Identity id of SynthFER subject ``subject`` of ``split`` (split in the name → disjoint)."""
    return f"{split}-{int(subject):04d}"


@functools.lru_cache(maxsize=4096)
def sample_identity(seed: int, split: str, subject: int) -> Identity:
    """The appearance of one subject; a pure function of ``(seed, split, subject)``.

    The head ellipsoid's depth ``face_c`` (0.60–0.67) is about its half-width ``face_a`` (0.60–0.68): it
    models the face's front, which is flatter than the skull, so that a turned head keeps cheek and temple
    beyond the far eye. With a skull-like depth (0.85–0.95, ≈ 1.4 × the half-width) the far pupil sat
    0.03 inter-ocular distances inside the outline at 40° yaw and MTCNN found 36 % of faces turned 30–45°
    (docs/synthfer.md, "Measured realism"). The nose tip stands 0.15–0.26 above the surface, about 0.43
    inter-ocular distances in front of the pupils (it was 0.60).
    """
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
        face_a=float(u() * 0.08 + 0.6),
        face_c=float(u() * 0.07 + 0.6),
        jaw=float(u() * 0.3),
        chin=float(-0.2 + u() * 0.06),
        skin=rgb_tuple(skin),
        lip=rgb_tuple(lip),
        hair=rgb_tuple(hair),
        hair_style=style,
        hairline=float(-0.6 + u() * 0.12),
        eye_y=float(-0.15 + u() * 0.09),
        eye_sep=float(0.255 + u() * 0.045),
        eye_w=float(0.12 + u() * 0.035),
        eye_h=float(0.055 + u() * 0.017),
        iris=rgb_tuple(_IRIS[int(rng.integers(len(_IRIS)))] + rng.normal(0, 8, 3)),
        iris_r=float(0.052 + u() * 0.012),
        brow_gap=float(0.13 + u() * 0.05),
        brow_th=float(0.035 + u() * 0.02),
        nose_y=float(0.18 + u() * 0.08),
        nose_w=float(0.065 + u() * 0.03),
        nose_len=float(0.15 + u() * 0.11),
        mouth_y=float(0.5 + u() * 0.08),
        mouth_w=float(0.2 + u() * 0.06),
        lip_up=float(0.035 + u() * 0.015),
        lip_lo=float(0.045 + u() * 0.02),
        blush=float(u() * 0.6),
        background=(rgb_tuple(bg_hue), rgb_tuple(bg2)),
        clutter_seed=int(rng.integers(2**31)),
        clothes=rgb_tuple(rng.uniform(20, 235, 3)),
        light_angle=float(rng.uniform(0, 2 * math.pi)),
        light_strength=float(rng.uniform(0.0, 0.35)),
    )


def expression_aus(rng: np.random.Generator, label: int, intensity: float, au_noise: float) -> np.ndarray:
    """AU intensities (len(AUS)×2) for class ``label``: prototype × intensity + |N(0, au_noise)|."""
    name = CANONICAL_CLASSES[label]
    au = np.abs(rng.normal(0.0, au_noise, (len(AUS), 1))) * np.ones((1, 2))
    au += np.abs(rng.normal(0.0, au_noise * 0.3, (len(AUS), 2)))  # slight asymmetry
    proto = AU_PROTOTYPES[name]
    if name == "contempt":
        side = int(rng.integers(2))
        for a in proto:
            au[AU_INDEX[a], side] += intensity * rng.uniform(0.8, 1.1)
    else:
        for a in proto:
            au[AU_INDEX[a], :] += intensity * rng.uniform(0.8, 1.1)
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
    # A detector-plus-alignment step leaves the crop off the template by a few pixels (see docs/synthfer.md).
    centre = (0.5 + float(rng.normal(0, ALIGN_SHIFT_SD)), 0.47 + float(rng.normal(0, ALIGN_SHIFT_SD)))
    scale = float(0.36 * (1 + ALIGN_SCALE_SPREAD * (params[5] - 0.5)))
    return FaceParams(
        identity=ident,
        au=au,
        label=int(label),
        intensity=intensity,
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        occlusion=occ,
        occlusion_seed=occ_seed,
        degradations=deg,
        image_size=int(cfg.image_size),
        supersample=int(cfg.supersample),
        centre=centre,
        scale=scale,
    )
