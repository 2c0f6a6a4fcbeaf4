"""Image normalisation and augmentations that move landmarks with the image.

Models take float32 B×3×H×W ImageNet-normalised images (:func:`normalize_images`) with landmarks
in pixel coordinates of that image (docs/DEVELOPING.md). Augmentation runs per batch, on whatever
device the batch lives on, so the training engine can augment on the GPU after collation:

    augment = LandmarkAugment(flip=True, translate=0.1)
    batch = augment(batch)                 # uint8 images + landmarks5/landmarks8 moved together
    x = normalize_images(batch["image"])

The papers' training augmentation (AMP-Net Sec. IV-B: "random flip and translation as well as
random changes in brightness, contrast, and saturation") maps to the defaults. Every sample gets
its own random parameters. On a CPU the images go one at a time through
``torchvision.transforms.v2.functional`` (``horizontal_flip``, ``affine``, ``adjust_*``); on a GPU
the same maps run on the whole batch at once (a flip by ``torch.where``, whole-pixel shifts by two
gathers, rotations/zooms by one ``grid_sample``, colour jitter by three batched blends), so a
batch of 350 costs a handful of kernels rather than thousands. Landmarks move by the
same maps. What torchvision cannot know: a horizontal flip must also swap the left/right landmark
slots (:data:`ferlib.data.schema.LANDMARK5_FLIP_PERM`, ``LANDMARK8_FLIP_PERM``), since after
mirroring the subject's left eye is where the right eye was. (The public AMP-Net code flips the
coordinates without swapping the slots, which corrupts the landmarks.)

Beyond the papers' text, the public training scripts use a random-resized crop (torchvision's
``RandomResizedCrop``: a box of a random share of the area and a random aspect ratio, resized back
to the full frame), rotations, random application of the affine part and random grayscale;
:class:`LandmarkAugment` offers each of them (``crop_area``/``crop_ratio``, ``rotate``,
``affine_p``, ``grayscale_p``, ``jitter_p``), all off by default, with the landmarks moved by the
same maps. A crop's landmarks follow the pixel-centre convention of the loaders
(``x' = (x − x0 + 0.5)·W/w − 0.5``), so a point on a pixel centre stays on that pixel's centre.

Coordinates follow the pixel-index convention: pixel (i, j) has its centre at x = j, y = i, so a
flip maps x to W − 1 − x, and rotations/scalings turn about ((W − 1)/2, (H − 1)/2), the centre
torchvision uses for the image itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from ferlib.data.schema import LANDMARK5_FLIP_PERM, LANDMARK8_FLIP_PERM

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: Keys of a batch that hold landmarks, with the slot permutation a horizontal flip applies
#: (``None``: points without left/right semantics are mirrored but keep their order).
LANDMARK_KEYS: dict[str, tuple[int, ...] | None] = {
    "landmarks5": LANDMARK5_FLIP_PERM,
    "landmarks8": LANDMARK8_FLIP_PERM,
}


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B×)3×H×W in 0-255 → float32 ImageNet-normalised, on the same device."""
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize_images expects uint8 images (0-255), got {images.dtype}")
    shape = (3, 1, 1) if images.dim() == 3 else (1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, device=images.device, dtype=torch.float32).view(shape)
    std = torch.tensor(IMAGENET_STD, device=images.device, dtype=torch.float32).view(shape)
    return (images.float() / 255.0 - mean) / std


def denormalize_images(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize_images` (rounded, clamped to uint8), for figures."""
    shape = (3, 1, 1) if x.dim() == 3 else (1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(shape)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(shape)
    return ((x * std + mean) * 255.0).round().clamp(0, 255).to(torch.uint8)


def hflip_landmarks(points: torch.Tensor, width: int, perm: Sequence[int] | None) -> torch.Tensor:
    """Mirror (…×K×2) pixel landmarks of an image of ``width`` (x → W − 1 − x) and swap the
    left/right slots with ``perm``. NaN stays NaN."""
    flipped = F.horizontal_flip_keypoints(points, canvas_size=(1, int(width)))
    if perm is not None:
        flipped = flipped[..., list(perm), :]
    return flipped


def _shift_image(image: torch.Tensor, tx: int, ty: int) -> torch.Tensor:
    """Whole-pixel translation with zero fill, as ``F.affine(translate=[tx, ty])`` gives it, but by
    ``F.pad`` + ``F.crop`` (exact, and about ten times cheaper than the grid sampling on a CPU)."""
    height, width = image.shape[-2:]
    px, py = abs(tx), abs(ty)
    padded = F.pad(image, padding=[px, py, px, py], fill=0)
    return F.crop(padded, top=py - ty, left=px - tx, height=height, width=width)


def _keypoints(points: torch.Tensor, height: int, width: int) -> tv_tensors.KeyPoints:
    return tv_tensors.KeyPoints(points.float(), canvas_size=(height, width))


def shift_images(images: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """Per-sample whole-pixel translation of a B×C×H×W batch with zero fill, in one pass.

    Output pixel (y, x) of sample b is input pixel (y − ty[b], x − tx[b]) when that lies inside the
    image, else 0 — exactly ``F.affine(img, translate=[tx, ty])`` for integer shifts, but done with
    two gathers for the whole batch on the batch's device (no per-sample Python loop, which would
    launch thousands of small kernels per batch on a GPU).
    """
    b, c, height, width = images.shape
    device = images.device
    tx = tx.to(device=device, dtype=torch.long).view(b, 1)
    ty = ty.to(device=device, dtype=torch.long).view(b, 1)
    src_y = torch.arange(height, device=device).view(1, height) - ty  # B×H
    src_x = torch.arange(width, device=device).view(1, width) - tx  # B×W
    rows = images.gather(2, src_y.clamp(0, height - 1).view(b, 1, height, 1).expand(b, c, height, width))
    out = rows.gather(3, src_x.clamp(0, width - 1).view(b, 1, 1, width).expand(b, c, height, width))
    inside = ((src_y >= 0) & (src_y < height)).view(b, 1, height, 1) & ((src_x >= 0) & (src_x < width)).view(
        b, 1, 1, width
    )
    return out * inside.to(out.dtype)


def affine_matrices(angle: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """B×2×2 linear parts ``s·R(θ)`` of the per-sample affine maps, in pixel coordinates (y down).

    A point moves as ``p' = s·R(θ)·(p − c) + c + t`` with ``R(θ) = [[cos θ, −sin θ], [sin θ, cos θ]]``
    and c the image centre — the convention of ``torchvision.transforms.v2.functional.affine``
    (a positive angle turns the picture clockwise on screen), checked against it in the tests.
    """
    theta = torch.deg2rad(angle.to(torch.float64))
    cos, sin = torch.cos(theta), torch.sin(theta)
    m = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    return (m * scale.to(torch.float64).view(-1, 1, 1)).to(torch.float32)


def affine_points(
    points: torch.Tensor, linear: torch.Tensor, shift: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Move B×K×2 pixel landmarks by ``p' = A·(p − c) + c + t`` (A: B×2×2, t: B×2). NaN stays NaN."""
    centre = points.new_tensor([(width - 1) / 2.0, (height - 1) / 2.0])
    linear = linear.to(points.device, points.dtype)
    return (points - centre) @ linear.transpose(1, 2) + centre + shift.to(points.device, points.dtype).view(-1, 1, 2)


def warp_images(images: torch.Tensor, linear: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Per-sample affine warp of a uint8 B×C×H×W batch (bilinear, zero fill), in one ``grid_sample``.

    Output pixel p takes the input at ``A⁻¹·(p − c − t) + c`` — the inverse of
    :func:`affine_points`, so landmarks and pixels move together. Pixel centres sit at
    ``(2·x + 1) / W − 1`` in ``grid_sample``'s normalised coordinates (``align_corners=False``).
    Equals ``F.affine(img, ..., interpolation=BILINEAR, fill=0)`` per image to within one grey level.
    """
    b, _, height, width = images.shape
    device = images.device
    inv = torch.linalg.inv(linear.to(torch.float64)).to(device=device, dtype=torch.float32)  # B×2×2
    centre = torch.tensor([(width - 1) / 2.0, (height - 1) / 2.0], device=device)
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    out_xy = torch.stack([xs, ys], -1).view(1, height * width, 2)  # 1×HW×2
    src = (out_xy - centre - shift.to(device, torch.float32).view(b, 1, 2)) @ inv.transpose(1, 2) + centre
    grid = torch.stack([(2 * src[..., 0] + 1) / width - 1, (2 * src[..., 1] + 1) / height - 1], -1)
    coverage = torch.ones((b, 1, height, width), device=device)
    warped = torch.nn.functional.grid_sample(
        torch.cat([images.float(), coverage], 1),
        grid.view(b, height, width, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    # Pixels on the frame's edge are attenuated once more by their coverage, as torchvision's
    # fill handling does, so the batched warp matches ``F.affine(..., fill=0)`` there too.
    warped = warped[:, :-1] * warped[:, -1:]
    return warped.round_().clamp_(0, 255).to(torch.uint8)


#: ITU-R 601-2 luma weights of R, G, B (the grey level colour jitter blends towards).
LUMA_WEIGHTS: tuple[float, float, float] = (0.2989, 0.587, 0.114)


def _blend(images: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """``ratio·images + (1 − ratio)·other`` per sample (ratio: B), clamped and truncated to uint8."""
    r = ratio.to(images.device, torch.float32).view(-1, 1, 1, 1)
    out = images.float().mul(r).add_(other * (1.0 - r)).clamp_(0, 255)
    return out.to(torch.uint8)


def _grey(images: torch.Tensor) -> torch.Tensor:
    """B×1×H×W luma of uint8 RGB images, floored to whole grey levels."""
    r, g, b = images.unbind(-3)
    return r.mul(LUMA_WEIGHTS[0]).add_(g, alpha=LUMA_WEIGHTS[1]).add_(b, alpha=LUMA_WEIGHTS[2]).floor_().unsqueeze(-3)


def jitter_colours(
    images: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, saturation: torch.Tensor
) -> torch.Tensor:
    """Per-sample brightness, contrast and saturation factors on a uint8 RGB batch, in that order.

    Each step blends the image with a reference and rounds back to uint8, as
    ``torchvision.transforms.v2.functional.adjust_brightness/contrast/saturation`` define it:
    black (brightness), the image's mean grey level (contrast), its grey version (saturation).
    A factor of 1 leaves the image unchanged; all samples go through one batched pass.
    """
    out = images
    if bool((brightness != 1).any()):
        out = _blend(out, torch.zeros((), device=out.device), brightness)
    if bool((contrast != 1).any()):
        out = _blend(out, _grey(out).mean(dim=(-3, -2, -1), keepdim=True), contrast)
    if bool((saturation != 1).any()):
        out = _blend(out, _grey(out), saturation)
    return out


def crop_boxes(
    n: int,
    height: int,
    width: int,
    area: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator | None,
) -> torch.Tensor:
    """N×4 integer crop boxes ``(top, left, h, w)`` drawn as ``RandomResizedCrop.get_params`` does.

    Per sample: up to ten tries of a target area ``U(area)·H·W`` and a log-uniform aspect ratio
    ``w/h`` in ``ratio``, accepted when the box fits; otherwise the largest centred box whose
    ratio is clamped into ``ratio`` (torchvision's fallback). The position is uniform.
    """
    total = float(height * width)
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    boxes = torch.zeros(n, 4, dtype=torch.long)
    for k in range(n):
        for _ in range(10):
            target = total * float(torch.empty(1).uniform_(area[0], area[1], generator=generator))
            aspect = math.exp(float(torch.empty(1).uniform_(log_lo, log_hi, generator=generator)))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
                left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
                boxes[k] = torch.tensor([top, left, h, w])
                break
        else:
            in_ratio = width / height
            if in_ratio < ratio[0]:
                w, h = width, int(round(width / ratio[0]))
            elif in_ratio > ratio[1]:
                h, w = height, int(round(height * ratio[1]))
            else:
                w, h = width, height
            boxes[k] = torch.tensor([(height - h) // 2, (width - w) // 2, h, w])
    return boxes


def crop_points(points: torch.Tensor, boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Move B×K×2 pixel landmarks into the resized crops ``boxes`` (B×4 ``top, left, h, w``) of a
    ``height``×``width`` frame: ``x' = (x − left + 0.5)·W/w − 0.5`` (pixel-centre convention). NaN stays NaN."""
    b = boxes.to(points.device, torch.float32)
    origin = torch.stack([b[:, 1], b[:, 0]], -1).view(-1, 1, 2)
    factor = torch.stack([width / b[:, 3], height / b[:, 2]], -1).view(-1, 1, 2)
    return (points - origin + 0.5) * factor - 0.5


def resized_crop_images(images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Per-sample crop ``boxes`` (B×4 ``top, left, h, w``) of a uint8 B×C×H×W batch, each resized
    back to H×W (bilinear, the crop's edge pixels replicated) in one ``grid_sample``.

    Output pixel x takes the input at ``(x + 0.5)·w/W − 0.5 + left`` — the inverse of
    :func:`crop_points`. The crops never exceed the frame, so this is an enlargement, where it equals
    ``F.resized_crop(..., interpolation=BILINEAR)`` per image to within one grey level.
    """
    b, _, height, width = images.shape
    device = images.device
    bx = boxes.to(device, torch.float32)
    xs = torch.arange(width, device=device, dtype=torch.float32).view(1, width)
    ys = torch.arange(height, device=device, dtype=torch.float32).view(1, height)
    # Clamped to the crop's own pixels: the crop's edge is replicated, as when it is cut out first.
    src_x = ((xs + 0.5) * (bx[:, 3:4] / width) - 0.5).clamp(min=0).minimum(bx[:, 3:4] - 1) + bx[:, 1:2]  # B×W
    src_y = ((ys + 0.5) * (bx[:, 2:3] / height) - 0.5).clamp(min=0).minimum(bx[:, 2:3] - 1) + bx[:, 0:1]  # B×H
    gx = ((2 * src_x + 1) / width - 1).view(b, 1, width).expand(b, height, width)
    gy = ((2 * src_y + 1) / height - 1).view(b, height, 1).expand(b, height, width)
    out = torch.nn.functional.grid_sample(
        images.float(), torch.stack([gx, gy], -1), mode="bilinear", padding_mode="border", align_corners=False
    )
    return out.round_().clamp_(0, 255).to(torch.uint8)


def grayscale_images(images: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """uint8 RGB batch with the samples where ``which`` (B bools) is set turned grey (three equal
    channels of the luma, as ``F.rgb_to_grayscale(num_output_channels=3)``)."""
    if not bool(which.any()):
        return images
    grey = _grey(images).to(torch.uint8).expand_as(images)
    return torch.where(which.to(images.device).view(-1, 1, 1, 1), grey, images)


class LandmarkAugment:
    """Per-sample random flip, affine (translation/rotation/scale) and colour jitter on a batch.

    Works on a collated batch dict (``image`` uint8 B×3×H×W on any device, optional
    ``landmarks5`` B×5×2, ``landmarks8`` B×8×2, ``landmarks`` B×K×2) or on one sample
    (``image`` 3×H×W). Returns a new dict; other keys are passed through. The random parameters
    are drawn on the CPU from the augmentation's own generator, so a run is repeatable on any
    device. On an accelerator the work is done for the whole batch at once (a ``torch.where`` flip,
    a two-gather whole-pixel shift or one ``grid_sample`` affine warp, three batched colour
    blends: a few kernels per batch instead of thousands); on a CPU image by image through
    torchvision's functional ops, which keeps each image in cache and is up to 2.5 times faster
    there (docs/benchmarks.md). The two paths give the same landmarks and the same images to within one grey level
    (tested against each other and against torchvision).

    Args:
        flip: random horizontal flip with probability ``flip_p``; landmarks are mirrored and their
            left/right slots swapped.
        translate: maximum shift as a fraction of width/height (torchvision ``RandomAffine``
            semantics: shift ~ U(−t·W, t·W), rounded to whole pixels).
        rotate: maximum rotation in degrees (angle ~ U(−rotate, rotate)).
        scale: ``(min, max)`` zoom factor, or ``None`` for no scaling.
        color_jitter: ``(brightness, contrast, saturation)`` strengths as in ``ColorJitter``
            (factor ~ U(1 − s, 1 + s)), or ``None`` to disable.
        affine_p: probability that a sample gets the random affine part (translation, rotation,
            scale) at all (torchvision ``RandomApply``); 1 = always.
        jitter_p: probability that a sample gets the colour jitter; 1 = always.
        grayscale_p: probability that a sample is turned grey (``RandomGrayscale``); 0 = never.
        crop_area: ``(min, max)`` share of the frame's area of a random-resized crop
            (``RandomResizedCrop(scale=...)``) applied first and resized back to the frame, or ``None``.
        crop_ratio: ``(min, max)`` aspect ratio w/h of that crop (log-uniform, torchvision's default 3/4–4/3).
        seed: seeds the augmentation's own generator (CPU) so runs are repeatable; ``None`` draws
            from torch's global generator.
        batched: ``True`` works on the whole batch at once, ``False`` image by image, ``None``
            (default) batches on accelerators and goes image by image on a CPU, where it is the
            faster of the two (docs/benchmarks.md has the measurement).
    """

    def __init__(
        self,
        flip: bool = True,
        translate: float = 0.1,
        rotate: float = 0.0,
        scale: tuple[float, float] | None = None,
        color_jitter: tuple[float, float, float] | None = (0.4, 0.4, 0.4),
        flip_p: float = 0.5,
        seed: int | None = None,
        batched: bool | None = None,
        *,
        affine_p: float = 1.0,
        jitter_p: float = 1.0,
        grayscale_p: float = 0.0,
        crop_area: tuple[float, float] | None = None,
        crop_ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
    ):
        if not 0.0 <= translate < 1.0:
            raise ValueError(f"translate must be in [0, 1), got {translate}")
        if scale is not None and not (0 < scale[0] <= scale[1]):
            raise ValueError(f"scale must be (min, max) with 0 < min <= max, got {scale}")
        for name, value in (("affine_p", affine_p), ("jitter_p", jitter_p), ("grayscale_p", grayscale_p)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        if crop_area is not None and not (0 < crop_area[0] <= crop_area[1] <= 1):
            raise ValueError(f"crop_area must be (min, max) with 0 < min <= max <= 1, got {crop_area}")
        if not (0 < crop_ratio[0] <= crop_ratio[1]):
            raise ValueError(f"crop_ratio must be (min, max) with 0 < min <= max, got {crop_ratio}")
        self.affine_p = float(affine_p)
        self.jitter_p = float(jitter_p)
        self.grayscale_p = float(grayscale_p)
        self.crop_area = None if crop_area is None else (float(crop_area[0]), float(crop_area[1]))
        self.crop_ratio = (float(crop_ratio[0]), float(crop_ratio[1]))
        self.flip = flip
        self.flip_p = float(flip_p)
        self.translate = float(translate)
        self.rotate = float(rotate)
        self.scale = None if scale is None else (float(scale[0]), float(scale[1]))
        self.color_jitter = None if color_jitter is None else tuple(float(c) for c in color_jitter)
        self.generator = None if seed is None else torch.Generator().manual_seed(int(seed))
        self.batched = batched

    def __repr__(self) -> str:
        return (
            f"LandmarkAugment(flip={self.flip}, translate={self.translate}, rotate={self.rotate}, "
            f"scale={self.scale}, color_jitter={self.color_jitter}, affine_p={self.affine_p}, "
            f"jitter_p={self.jitter_p}, grayscale_p={self.grayscale_p}, crop_area={self.crop_area}, "
            f"crop_ratio={self.crop_ratio})"
        )

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=self.generator) * (high - low) + low

    def sample_params(self, n: int, height: int, width: int) -> dict[str, torch.Tensor]:
        """Draw the per-sample parameters (CPU tensors): flip, angle, tx, ty, scale, b, c, s and,
        when those options are on, ``crop`` (N×4 boxes) and ``grayscale`` (N bools).

        The draws of the options that are off are skipped, and the options added after the first
        release draw after the others, so an augmentation without them draws exactly what it did."""
        params = {
            "flip": (torch.rand(n, generator=self.generator) < self.flip_p)
            if self.flip
            else torch.zeros(n, dtype=torch.bool),
            "angle": self._uniform(n, -self.rotate, self.rotate) if self.rotate else torch.zeros(n),
            "tx": torch.round(self._uniform(n, -self.translate * width, self.translate * width))
            if self.translate
            else torch.zeros(n),
            "ty": torch.round(self._uniform(n, -self.translate * height, self.translate * height))
            if self.translate
            else torch.zeros(n),
            "scale": self._uniform(n, *self.scale) if self.scale else torch.ones(n),
        }
        for key, strength in zip(("brightness", "contrast", "saturation"), self.color_jitter or (0.0, 0.0, 0.0)):
            params[key] = self._uniform(n, max(0.0, 1 - strength), 1 + strength) if strength else torch.ones(n)
        if self.affine_p < 1.0:
            skip = torch.rand(n, generator=self.generator) >= self.affine_p
            params["angle"] = params["angle"].masked_fill(skip, 0.0)
            params["tx"] = params["tx"].masked_fill(skip, 0.0)
            params["ty"] = params["ty"].masked_fill(skip, 0.0)
            params["scale"] = params["scale"].masked_fill(skip, 1.0)
        if self.jitter_p < 1.0:
            skip = torch.rand(n, generator=self.generator) >= self.jitter_p
            for key in ("brightness", "contrast", "saturation"):
                params[key] = params[key].masked_fill(skip, 1.0)
        if self.crop_area is not None:
            params["crop"] = crop_boxes(n, height, width, self.crop_area, self.crop_ratio, self.generator)
        if self.grayscale_p > 0.0:
            params["grayscale"] = torch.rand(n, generator=self.generator) < self.grayscale_p
        return params

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        images = batch["image"]
        single = images.dim() == 3
        if single:
            batch = {
                k: (
                    v.unsqueeze(0) if isinstance(v, torch.Tensor) and k in ("image", *LANDMARK_KEYS, "landmarks") else v
                )
                for k, v in batch.items()
            }
            images = batch["image"]
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise TypeError(f"LandmarkAugment expects uint8 B×3×H×W images, got {images.dtype} {tuple(images.shape)}")
        n, _, height, width = images.shape
        params = self.sample_params(n, height, width)
        return self.apply(batch, params, single=single)

    def apply(self, batch: dict[str, Any], params: dict[str, torch.Tensor], single: bool = False) -> dict[str, Any]:
        """Apply given parameters (from :meth:`sample_params`) to a batch.

        ``batched`` (see the class) picks the whole-batch path or the per-image path; both give the
        same images to within one grey level and the same landmarks.
        """
        batched = self.batched if self.batched is not None else batch["image"].device.type != "cpu"
        out = self._apply_batched(batch, params) if batched else self._apply_per_image(batch, params)
        if single:
            keys = ("image", *LANDMARK_KEYS, "landmarks")
            out = {k: (v.squeeze(0) if isinstance(v, torch.Tensor) and k in keys else v) for k, v in out.items()}
        return out

    def _apply_batched(self, batch: dict[str, Any], params: dict[str, torch.Tensor]) -> dict[str, Any]:
        """All samples at once: a handful of kernels per batch, whatever its size (GPU path)."""
        images = batch["image"]
        device = images.device
        n, _, height, width = images.shape
        point_keys = [k for k in (*LANDMARK_KEYS, "landmarks") if isinstance(batch.get(k), torch.Tensor)]
        points = {k: batch[k].to(torch.float32) for k in point_keys}
        out_images = images

        if "crop" in params:
            out_images = resized_crop_images(out_images, params["crop"])
            for k in point_keys:
                points[k] = crop_points(points[k], params["crop"], height, width)

        flip = params["flip"]
        if bool(flip.any()):
            out_images = torch.where(flip.to(device).view(n, 1, 1, 1), out_images.flip(-1), out_images)
            for k in point_keys:
                sel = flip.to(points[k].device).view(n, 1, 1)
                points[k] = torch.where(sel, hflip_landmarks(points[k], width, LANDMARK_KEYS.get(k)), points[k])

        angle, scale = params["angle"], params["scale"]
        shift = torch.stack([params["tx"], params["ty"]], -1).to(torch.float32)
        if bool((angle != 0).any() or (scale != 1).any()):
            linear = affine_matrices(angle, scale)
            out_images = warp_images(out_images, linear, shift)
            for k in point_keys:
                points[k] = affine_points(points[k], linear, shift, height, width)
        elif bool((shift != 0).any()):
            out_images = shift_images(out_images, params["tx"], params["ty"])
            for k in point_keys:
                points[k] = points[k] + shift.to(points[k].device).view(n, 1, 2)

        out_images = jitter_colours(out_images, params["brightness"], params["contrast"], params["saturation"])
        if "grayscale" in params:
            out_images = grayscale_images(out_images, params["grayscale"])

        return _with(batch, out_images, points)

    def _apply_per_image(self, batch: dict[str, Any], params: dict[str, torch.Tensor]) -> dict[str, Any]:
        """One image at a time through torchvision's functional ops (fastest on a CPU: each image
        stays in cache, and torchvision's uint8 kernels are tuned for it)."""
        images = batch["image"]
        n, _, height, width = images.shape
        point_keys = [k for k in (*LANDMARK_KEYS, "landmarks") if isinstance(batch.get(k), torch.Tensor)]
        points = {k: batch[k].to(torch.float32).clone() for k in point_keys}
        out_images = images.clone()
        centre = [(width - 1) / 2.0, (height - 1) / 2.0]

        if "crop" in params:
            for i, (top, left, h, w) in enumerate(params["crop"].tolist()):
                out_images[i] = F.resized_crop(
                    out_images[i], top, left, h, w, [height, width], interpolation=F.InterpolationMode.BILINEAR
                )
            for k in point_keys:
                points[k] = crop_points(points[k], params["crop"], height, width)

        flip = params["flip"]
        if bool(flip.any()):
            idx = torch.nonzero(flip).flatten().to(images.device)
            out_images[idx] = F.horizontal_flip(out_images[idx])
            for k in point_keys:
                pidx = idx.to(points[k].device)
                points[k][pidx] = hflip_landmarks(points[k][pidx], width, LANDMARK_KEYS.get(k))

        geometric = bool(
            (params["angle"] != 0).any()
            or (params["tx"] != 0).any()
            or (params["ty"] != 0).any()
            or (params["scale"] != 1).any()
        )
        colour = any(bool((params[k] != 1).any()) for k in ("brightness", "contrast", "saturation"))
        for i in range(n):
            angle, tx, ty, sc = (float(params[k][i]) for k in ("angle", "tx", "ty", "scale"))
            if geometric and (angle or tx or ty or sc != 1.0):
                if angle == 0.0 and sc == 1.0:
                    out_images[i] = _shift_image(out_images[i], int(tx), int(ty))
                else:
                    out_images[i] = F.affine(
                        out_images[i],
                        angle=angle,
                        translate=[tx, ty],
                        scale=sc,
                        shear=[0.0, 0.0],
                        interpolation=F.InterpolationMode.BILINEAR,
                        fill=0,
                    )
                for k in point_keys:
                    kp = _keypoints(points[k][i], height, width)
                    moved = F.affine(kp, angle=angle, translate=[tx, ty], scale=sc, shear=[0.0, 0.0], center=centre)
                    points[k][i] = moved.as_subclass(torch.Tensor)
            if colour:
                img = out_images[i]
                b, c, s = (float(params[k][i]) for k in ("brightness", "contrast", "saturation"))
                if b != 1.0:
                    img = F.adjust_brightness(img, b)
                if c != 1.0:
                    img = F.adjust_contrast(img, c)
                if s != 1.0:
                    img = F.adjust_saturation(img, s)
                out_images[i] = img
        if "grayscale" in params:
            for i in torch.nonzero(params["grayscale"]).flatten().tolist():
                out_images[i] = F.rgb_to_grayscale(out_images[i], num_output_channels=3)

        return _with(batch, out_images, points)


def _with(batch: dict[str, Any], images: torch.Tensor, points: dict[str, torch.Tensor]) -> dict[str, Any]:
    """A copy of ``batch`` with new images and landmarks (landmarks back in their own dtype)."""
    out = dict(batch)
    out["image"] = images
    for k, v in points.items():
        out[k] = v.to(batch[k].dtype)
    return out


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "normalize_images",
    "denormalize_images",
    "hflip_landmarks",
    "shift_images",
    "affine_matrices",
    "affine_points",
    "warp_images",
    "jitter_colours",
    "crop_boxes",
    "crop_points",
    "resized_crop_images",
    "grayscale_images",
    "LUMA_WEIGHTS",
    "LandmarkAugment",
]
