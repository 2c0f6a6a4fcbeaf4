"""Test conditions built from the same test faces: occluder × area, pose, degradations, expression intensity.

Every condition is a *controlled* change of one factor of the same faces, so a model's drop from clean to a
condition is paired, face by face (:mod:`ferlib.robustness.stats`):

* **occlusion**: each of ferlib's landmark-placed occluders (:func:`ferlib.data.occlusion.occlude`: face mask,
  sunglasses, hand, random patch; FFRA-Net §4.1 and §4.5 build FM/SG-RAF-DB and randomly occluded test sets the
  same way) scaled about its own centroid until it covers a stated share of the **face region**
  (:func:`face_region`: an ellipse from the brows to the chin placed by the same 5 points). The scale is found
  on the scale-1 pixel mask (cheap), the occluder is then drawn once at that scale; the share reached is
  measured on the drawn mask and reported (``achieved_area``).
* **pose**: on SynthFER the same parameters (identity, action units, pitch, roll, framing) re-rendered at each
  yaw of a grid (0–60°; the sign of the face's own yaw is kept); on real data, bins of the yaw estimated from the
  five points (:func:`ferlib.landmarks.pose.estimate_pose`), ≥ 30° and ≥ 45° as the RAN pose lists (Wang et
  al., IEEE TIP 2020) select.
* **degradation**: Gaussian blur, Gaussian noise, JPEG quality (PIL), low resolution (down and up again),
  brightness and contrast (torchvision ``transforms.v2`` functionals on uint8 batches), each at graded
  strengths listed mild → strong in :data:`DEGRADATION_LEVELS`.
* **intensity** (SynthFER): the same faces with the expression's action units redrawn at a given intensity
  (same random stream, only the intensity changes); neutral faces have no intensity and are left out.

Landmarks stay those of the clean face (occluders and degradations do not move the face), so models that take
landmarks get the same points in every condition; on real data this is the optimistic case in which the
detector was not disturbed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ferlib.data.face_geometry import fit_similarity
from ferlib.data.occlusion import CANONICAL_LANDMARKS5, OCCLUDER_KINDS, canonical_kind, occlude

#: Degradations and their strengths, mild → strong. blur: Gaussian σ in pixels of a 112-px face (scaled with
#: the image size); noise: σ of additive Gaussian noise in 0–255 units; jpeg: quality; lowres: down-sampling
#: factor (then up again); brightness / contrast: the multiplicative factor of torchvision's
#: ``adjust_brightness`` / ``adjust_contrast`` (1 = unchanged).
DEGRADATION_LEVELS: dict[str, tuple[float, ...]] = {
    "blur": (0.5, 1.0, 2.0, 3.0),
    "noise": (5.0, 10.0, 20.0, 40.0),
    "jpeg": (50.0, 30.0, 15.0, 5.0),
    "lowres": (2.0, 3.0, 4.0, 6.0),
    "brightness": (0.8, 0.6, 0.4, 0.25),
    "contrast": (0.75, 0.5, 0.3, 0.15),
}

#: Face region in the occluder frame of :data:`ferlib.data.occlusion.CANONICAL_LANDMARKS5` (eyes at (∓1, 0),
#: mouth corners at y = 2.3): an ellipse from above the brows (y = −1.4) to the chin (y = 3.6), ±1.9 wide.
FACE_ELLIPSE: tuple[float, float, float, float] = (0.0, 1.1, 1.9, 2.5)  # centre x, centre y, radius x, radius y

FAMILIES: tuple[str, ...] = ("clean", "occlusion", "pose", "degradation", "intensity", "ran")


@dataclass(frozen=True)
class Condition:
    """One test condition: ``family`` (:data:`FAMILIES`), ``factor`` (occluder kind, ``yaw``, degradation
    kind, ``intensity``, RAN list name) and ``level`` (face-area share, degrees, strength, intensity)."""

    family: str
    factor: str
    level: float = 0.0

    @property
    def name(self) -> str:
        return "clean" if self.family == "clean" else f"{self.family}/{self.factor}@{self.level:g}"


CLEAN = Condition("clean", "clean", 0.0)


@dataclass(frozen=True)
class ConditionGrid:
    """Which conditions to build. ``areas``: occluded share of the face region; ``yaws``: degrees (SynthFER
    re-rendering; real data uses ``real_yaw_bins``); ``degradations``: kind → strengths; ``intensities``:
    SynthFER expression intensities. An empty tuple switches a family off."""

    occluders: tuple[str, ...] = OCCLUDER_KINDS
    areas: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
    yaws: tuple[float, ...] = (0.0, 15.0, 30.0, 45.0, 60.0)
    real_yaw_bins: tuple[float, ...] = (0.0, 15.0, 30.0, 45.0)
    degradations: dict[str, tuple[float, ...]] = field(default_factory=lambda: dict(DEGRADATION_LEVELS))
    intensities: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)

    def conditions(self, synthetic: bool) -> list[Condition]:
        """Every condition of the grid, clean first (real data has no re-rendering and no intensity)."""
        out = [CLEAN]
        out += [Condition("occlusion", canonical_kind(k), float(a)) for k in self.occluders for a in self.areas]
        yaws = self.yaws if synthetic else self.real_yaw_bins
        out += [Condition("pose", "yaw", float(y)) for y in yaws]
        for kind, levels in self.degradations.items():
            if kind not in DEGRADATION_LEVELS:
                raise ValueError(f"unknown degradation {kind!r}; expected one of {sorted(DEGRADATION_LEVELS)}")
            out += [Condition("degradation", kind, float(v)) for v in levels]
        if synthetic:
            out += [Condition("intensity", "intensity", float(v)) for v in self.intensities]
        return out


@dataclass
class CleanFaces:
    """The clean test faces every condition starts from (uint8 N×3×H×W, labels, points, ids).

    ``params``: SynthFER's :class:`~ferlib.data.synthfer.parameters.FaceParams` per face (None on real data);
    ``yaw``: the true yaw (SynthFER) or the one estimated from the five points (real data)."""

    images: torch.Tensor
    labels: np.ndarray
    landmarks5: np.ndarray
    landmarks8: np.ndarray | None
    ids: list[str]
    class_names: list[str]
    yaw: np.ndarray
    params: list[Any] | None = None
    synthetic: bool = False
    dataset: str = "synthfer"
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])


@dataclass
class ConditionSet:
    """The faces of one condition: ``index`` into :class:`CleanFaces` (the pairing key), images, points and,
    for occlusion, the occluder's pixel masks, the face region and the share of it covered."""

    condition: Condition
    index: np.ndarray
    images: torch.Tensor
    landmarks5: np.ndarray
    landmarks8: np.ndarray | None = None
    occluder_mask: np.ndarray | None = None
    face_mask: np.ndarray | None = None
    achieved_area: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.index)


# ---------------------------------------------------------------------------------------------
# Face region and area-controlled occluders
# ---------------------------------------------------------------------------------------------


def face_region(landmarks5: Any, height: int, width: int) -> np.ndarray:
    """Boolean H×W (or N×H×W for N×5×2 points) mask of the face region :data:`FACE_ELLIPSE`, placed by the
    least-squares similarity from the occluder frame to the five points (as the occluders are placed)."""
    lm = np.asarray(landmarks5, dtype=np.float64)
    single = lm.ndim == 2
    lm = lm.reshape(-1, 5, 2)
    ys, xs = np.mgrid[0:height, 0:width]
    pix = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    cx, cy, rx, ry = FACE_ELLIPSE
    out = np.zeros((len(lm), height, width), dtype=bool)
    for i, pts in enumerate(lm):
        m = fit_similarity(CANONICAL_LANDMARKS5, pts)  # canonical → image
        a, t = m[:, :2], m[:, 2]
        q = (pix - t) @ np.linalg.inv(a).T  # image → canonical
        inside = ((q[:, 0] - cx) / rx) ** 2 + ((q[:, 1] - cy) / ry) ** 2 <= 1.0
        out[i] = inside.reshape(height, width)
    return out[0] if single else out


#: An occluder drawn more than this far (share of the face) from its target area is redrawn once at a corrected
#: scale (:func:`occlude_area`).
REFINE_TOLERANCE = 0.01

#: Scales tried when an occluder is fitted to an area (log-spaced; the share is interpolated between them).
SCALE_GRID: np.ndarray = np.geomspace(0.15, 8.0, 56)


def covered_shares(mask1: np.ndarray, face: np.ndarray, centre: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Share of ``face`` covered by the scale-1 occluder ``mask1`` enlarged by each of ``scales`` about
    ``centre`` (x, y): a face pixel p is covered at scale s when ``centre + (p − centre)/s`` lies on ``mask1``
    (nearest pixel). A face pixel in every ``stride`` (≈ 3 at 224 px) in each direction is enough for the fit."""
    h, w = mask1.shape
    stride = max(1, int(round(h / 75)))
    fy, fx = np.nonzero(face[::stride, ::stride])
    pix = np.stack([stride * fx, stride * fy], 1).astype(np.float32)
    q = centre.astype(np.float32) + (pix - centre.astype(np.float32))[None] / scales.astype(np.float32)[:, None, None]
    xi = np.rint(q[..., 0]).astype(np.int64)
    yi = np.rint(q[..., 1]).astype(np.int64)
    ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    hit = np.zeros(xi.shape, dtype=bool)
    hit[ok] = mask1[yi[ok], xi[ok]]
    return hit.mean(1) if len(pix) else np.zeros(len(scales))


def scales_for_areas(mask1: np.ndarray, face: np.ndarray, targets: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Scales about the occluder's centroid at which ``mask1`` (the scale-1 occluder) covers each of ``targets``
    of ``face``: the first crossing on :data:`SCALE_GRID`, interpolated in log-scale. An occluder that cannot
    reach a target (sunglasses leave the face before they cover half of it) gets the scale of its largest share.
    Returns ``(scales, centre)``; ``centre`` is the centroid (x, y) of ``mask1``."""
    yx = np.argwhere(mask1)
    if len(yx) == 0:
        raise ValueError("the occluder drew no pixel: cannot scale it to an area")
    centre = yx.mean(0)[::-1].astype(np.float64)
    shares = covered_shares(mask1, face, centre, SCALE_GRID)
    logs = np.log(SCALE_GRID)
    out = []
    for t in targets:
        above = np.nonzero(shares >= t)[0]
        if len(above) == 0:
            out.append(float(SCALE_GRID[int(np.argmax(shares))]))
            continue
        j = int(above[0])
        if j == 0:
            out.append(float(SCALE_GRID[0]))
            continue
        f0, f1 = shares[j - 1], shares[j]
        frac = (t - f0) / (f1 - f0) if f1 > f0 else 1.0
        out.append(float(np.exp(logs[j - 1] + frac * (logs[j] - logs[j - 1]))))
    return np.array(out), centre


def occlude_area(
    image: np.ndarray,
    landmarks5: np.ndarray,
    kind: str,
    areas: Sequence[float],
    seed: int,
    face: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """The occluder ``kind`` (seeded by ``seed``: the same shape for every area) drawn so that it covers each of
    ``areas`` (shares of the face region) of the uint8 H×W×3 ``image``.

    Scaling the five points about a centre scales the similarity that places the occluder about that centre
    (the least-squares fit is equivariant), so the occluder drawn from the scaled points is the scale-1 occluder
    enlarged about its centroid. The fitted scale predicts the share from the scale-1 mask; the drawn occluder's
    edge pixels add a rim that matters on small images (a face mask fitted to 20 % covered 25 % at 40 px), so a
    share more than :data:`REFINE_TOLERANCE` off is corrected once (share ∝ scale², one redraw), keeping whichever
    drawing is closer. Returns ``[(image, occluder_mask, achieved_share)]`` per area.
    """
    lm = np.asarray(landmarks5, dtype=np.float64).reshape(5, 2)
    h, w = image.shape[:2]
    face = face_region(lm, h, w) if face is None else face
    n_face = max(int(face.sum()), 1)
    _, mask1 = occlude(image, lm, kind, rng=int(seed))
    out = []
    targets = [float(a) for a in areas]
    scales, centre = scales_for_areas(mask1, face, targets)

    def draw(scale: float) -> tuple[np.ndarray, np.ndarray, float]:
        img, mask = occlude(image, centre + scale * (lm - centre), kind, rng=int(seed))
        return img, mask, float((mask & face).sum() / n_face)

    for target, scale in zip(targets, scales):
        drawn = draw(float(scale))
        if drawn[2] > 0 and abs(drawn[2] - target) > REFINE_TOLERANCE:
            again = draw(float(scale) * float(np.sqrt(target / drawn[2])))
            if abs(again[2] - target) < abs(drawn[2] - target):
                drawn = again
        out.append(drawn)
    return out


# ---------------------------------------------------------------------------------------------
# Degradations (torchvision transforms v2 on uint8 batches)
# ---------------------------------------------------------------------------------------------


def degrade(images: torch.Tensor, kind: str, level: float, seed: int = 0) -> torch.Tensor:
    """``images`` (uint8 N×3×H×W) under degradation ``kind`` at ``level`` (:data:`DEGRADATION_LEVELS`)."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as tvf

    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"degrade expects uint8 N×3×H×W images, got {images.dtype} {tuple(images.shape)}")
    size = images.shape[-1]
    if kind == "blur":
        sigma = float(level) * size / 112.0
        k = 2 * int(math.ceil(3 * sigma)) + 1
        return tvf.gaussian_blur(images, kernel_size=[k, k], sigma=[sigma, sigma])
    if kind == "noise":
        g = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(images.shape, generator=g) * float(level)
        return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)
    if kind == "jpeg":  # PIL's encoder (torchvision's image encoding is deprecated since 0.29)
        import io

        from PIL import Image

        out = []
        for arr in images.permute(0, 2, 3, 1).numpy():
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="JPEG", quality=int(level))
            out.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()
    if kind == "lowres":
        small = max(4, int(round(size / float(level))))
        down = tvf.resize(images, [small, small], interpolation=InterpolationMode.BILINEAR, antialias=True)
        return tvf.resize(down, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=False)
    if kind == "brightness":
        return tvf.adjust_brightness(images, float(level))
    if kind == "contrast":
        return tvf.adjust_contrast(images, float(level))
    raise ValueError(f"unknown degradation {kind!r}; expected one of {sorted(DEGRADATION_LEVELS)}")


# ---------------------------------------------------------------------------------------------
# SynthFER re-rendering: pose and expression intensity
# ---------------------------------------------------------------------------------------------


def reposed(params: Any, yaw: float) -> Any:
    """SynthFER parameters with ``|yaw|`` set to ``yaw`` (the face's own sign kept, + for 0) and nothing else
    changed: identity, action units, pitch, roll, framing, occlusion and degradations stay."""
    sign = -1.0 if params.yaw < 0 else 1.0
    return dataclasses.replace(params, yaw=sign * float(yaw))


def with_intensity(params: Any, intensity: float, face_seed: int, au_noise: float) -> Any:
    """SynthFER parameters with the expression redrawn at ``intensity`` from a random stream fixed by
    ``face_seed`` (the same noise and prototype jitter at every intensity; only the intensity changes)."""
    from ferlib.data.synthfer.parameters import expression_aus

    rng = np.random.default_rng([int(face_seed), 15])
    au = expression_aus(rng, int(params.label), float(intensity), float(au_noise))
    return dataclasses.replace(params, au=au, intensity=float(intensity))


def _render_chunk(params: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from ferlib.data.synthfer.render import render_face

    imgs, lm5, lm8 = [], [], []
    for p in params:
        image, info = render_face(p)
        imgs.append(image)
        lm5.append(info["landmarks5"])
        lm8.append(info["landmarks8"])
    return np.stack(imgs), np.stack(lm5).astype(np.float32), np.stack(lm8).astype(np.float32)


def _in_processes(fn, jobs: list, workers: int) -> list:
    """``[fn(job) for job in jobs]``, in ``workers`` forked processes when there is more than one job."""
    if len(jobs) <= 1 or workers <= 1:
        return [fn(j) for j in jobs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=mp.get_context("fork")) as pool:
        return list(pool.map(fn, jobs))


def _render_many(params: Sequence[Any], workers: int = 1) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    chunks = [list(c) for c in np.array_split(np.array(params, dtype=object), max(1, min(workers, len(params))))]
    parts = _in_processes(_render_chunk, chunks, workers)
    imgs = np.concatenate([p[0] for p in parts])
    return (
        torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


# ---------------------------------------------------------------------------------------------
# Building the conditions
# ---------------------------------------------------------------------------------------------


#: An occlusion condition counts as reached when its faces' mean covered share is this close to the target.
AREA_TOLERANCE = 0.05


def _occlude_chunk(args: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays, landmarks5, face_masks, kind, areas, seeds = args
    n, size = len(arrays), arrays.shape[1]
    imgs = np.empty((len(areas), n, size, size, 3), dtype=np.uint8)
    masks = np.zeros((len(areas), n, size, size), dtype=bool)
    achieved = np.zeros((len(areas), n))
    for i in range(n):
        drawn = occlude_area(np.ascontiguousarray(arrays[i]), landmarks5[i], kind, areas, int(seeds[i]), face_masks[i])
        for a, (img, mask, share) in enumerate(drawn):
            imgs[a, i], masks[a, i], achieved[a, i] = img, mask, share
    return imgs, masks, achieved


def occlusion_sets(
    faces: CleanFaces, kind: str, areas: Sequence[float], seed: int = 0, workers: int = 1
) -> list[ConditionSet]:
    """One :class:`ConditionSet` per area for occluder ``kind`` on every face (the same occluder shape of a face
    at every area). ``workers`` > 1 draws the faces in that many processes."""
    kind = canonical_kind(kind)
    areas = [float(a) for a in areas]
    n, size = len(faces), faces.image_size
    face_masks = face_region(faces.landmarks5, size, size).reshape(n, size, size)
    arrays = faces.images.permute(0, 2, 3, 1).numpy()
    salt = OCCLUDER_KINDS.index(kind) + 100 * int(seed)
    seeds = np.array([np.random.default_rng([int(seed), i, salt]).integers(2**31) for i in range(n)])
    chunks = np.array_split(np.arange(n), max(1, min(int(workers), n)))
    jobs = [(arrays[c], faces.landmarks5[c], face_masks[c], kind, areas, seeds[c]) for c in chunks]
    parts = _in_processes(_occlude_chunk, jobs, workers)
    imgs = np.concatenate([p[0] for p in parts], 1)
    masks = np.concatenate([p[1] for p in parts], 1)
    achieved = np.concatenate([p[2] for p in parts], 1)
    index = np.arange(n)
    return [
        ConditionSet(
            Condition("occlusion", kind, area),
            index,
            torch.from_numpy(imgs[a]).permute(0, 3, 1, 2).contiguous(),
            faces.landmarks5,
            faces.landmarks8,
            occluder_mask=masks[a],
            face_mask=face_masks,
            achieved_area=achieved[a],
        )
        for a, area in enumerate(areas)
    ]


def reached(cset: ConditionSet, tolerance: float = AREA_TOLERANCE) -> bool:
    """Whether an occlusion set covers its stated share of the face on average (always True otherwise)."""
    if cset.achieved_area is None or len(cset) == 0:
        return True
    return abs(float(np.mean(cset.achieved_area)) - cset.condition.level) <= tolerance


def pose_set(faces: CleanFaces, yaw: float, bins: Sequence[float] | None = None, workers: int = 1) -> ConditionSet:
    """SynthFER: every face re-rendered at ``|yaw|``. Real data: the faces whose estimated ``|yaw|`` falls in
    the bin that starts at ``yaw`` (the next value of ``bins`` ends it; the last bin is open: "≥ 45°")."""
    cond = Condition("pose", "yaw", float(yaw))
    if faces.params is not None:
        images, lm5, lm8 = _render_many([reposed(p, yaw) for p in faces.params], workers)
        return ConditionSet(cond, np.arange(len(faces)), images, lm5, lm8)
    edges = sorted(float(b) for b in (bins or (yaw,)))
    upper = next((b for b in edges if b > yaw), math.inf)
    a = np.abs(faces.yaw)
    index = np.nonzero((a >= yaw) & (a < upper))[0]
    lm8 = faces.landmarks8[index] if faces.landmarks8 is not None else None
    return ConditionSet(cond, index, faces.images[index], faces.landmarks5[index], lm8)


def degradation_set(faces: CleanFaces, kind: str, level: float, seed: int = 0) -> ConditionSet:
    """Every face under degradation ``kind`` at ``level``."""
    images = degrade(faces.images, kind, level, seed=seed)
    return ConditionSet(
        Condition("degradation", kind, float(level)), np.arange(len(faces)), images, faces.landmarks5, faces.landmarks8
    )


def intensity_set(faces: CleanFaces, intensity: float, au_noise: float = 0.12, workers: int = 1) -> ConditionSet:
    """SynthFER: the non-neutral faces with their expression redrawn at ``intensity``."""
    if faces.params is None:
        raise ValueError("expression intensity conditions need SynthFER faces (their action units are known)")
    index = np.array([i for i, p in enumerate(faces.params) if int(p.label) != 0], dtype=np.int64)
    params = [with_intensity(faces.params[i], intensity, faces.params[i].occlusion_seed, au_noise) for i in index]
    images, lm5, lm8 = _render_many(params, workers) if params else (faces.images[:0], faces.landmarks5[:0], None)
    return ConditionSet(Condition("intensity", "intensity", float(intensity)), index, images, lm5, lm8)


def clean_set(faces: CleanFaces) -> ConditionSet:
    return ConditionSet(CLEAN, np.arange(len(faces)), faces.images, faces.landmarks5, faces.landmarks8)


def iter_condition_sets(
    faces: CleanFaces, grid: ConditionGrid, seed: int = 0, au_noise: float = 0.12, workers: int = 1
):
    """Yield the :class:`ConditionSet` of every condition of ``grid`` (clean first), one family group at a
    time so that only one group's images are in memory. An occluder that cannot cover a stated area (sunglasses
    leave the face region before they cover more than about a quarter of it) is left out at that area, with a
    line in ``faces.notes``."""
    yield clean_set(faces)
    for kind in grid.occluders:
        for cset in occlusion_sets(faces, kind, grid.areas, seed=seed, workers=workers):
            if reached(cset):
                yield cset
            else:
                faces.notes.append(
                    f"{cset.condition.name} left out: the {cset.condition.factor} occluder covers "
                    f"{np.mean(cset.achieved_area):.0%} of the face region at most, not {cset.condition.level:.0%}"
                )
    synthetic = faces.params is not None
    yaws = grid.yaws if synthetic else grid.real_yaw_bins
    for yaw in yaws:
        yield pose_set(faces, yaw, None if synthetic else yaws, workers=workers)
    for kind, levels in grid.degradations.items():
        for level in levels:
            yield degradation_set(faces, kind, level, seed=seed)
    if synthetic:
        for intensity in grid.intensities:
            yield intensity_set(faces, intensity, au_noise, workers=workers)
