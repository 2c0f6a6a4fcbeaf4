"""Image normalisation and augmentations that move landmarks with the image.

Models take float32 B×3×H×W ImageNet-normalised images (:func:`normalize_images`) with landmarks
in pixel coordinates of that image (docs/DEVELOPING.md). Augmentation runs per batch, on whatever
device the batch lives on, so the training engine can augment on the GPU after collation:

    augment = LandmarkAugment(flip=True, translate=0.1)
    batch = augment(batch)                 # uint8 images + landmarks5/landmarks8 moved together
    x = normalize_images(batch["image"])

The papers' training augmentation (AMP-Net Sec. IV-B: "random flip and translation as well as
random changes in brightness, contrast, and saturation") maps to the defaults. All geometry is
done by ``torchvision.transforms.v2.functional`` on the image and on ``tv_tensors.KeyPoints``;
ferlib only adds what torchvision cannot know: a horizontal flip must also swap the left/right
landmark slots (:data:`ferlib.data.schema.LANDMARK5_FLIP_PERM`, ``LANDMARK8_FLIP_PERM``), since
after mirroring the subject's left eye is where the right eye was. (The public AMP-Net code flips
the coordinates without swapping the slots, which corrupts the landmarks.)

Coordinates follow the pixel-index convention: pixel (i, j) has its centre at x = j, y = i, so a
flip maps x to W − 1 − x, and rotations/scalings turn about ((W − 1)/2, (H − 1)/2), the centre
torchvision uses for the image itself.
"""

from __future__ import annotations

from typing import Any, Sequence

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


class LandmarkAugment:
    """Per-sample random flip, affine (translation/rotation/scale) and colour jitter on a batch.

    Works on a collated batch dict (``image`` uint8 B×3×H×W on any device, optional
    ``landmarks5`` B×5×2, ``landmarks8`` B×8×2, ``landmarks`` B×K×2) or on one sample
    (``image`` 3×H×W). Returns a new dict; other keys are passed through.

    Args:
        flip: random horizontal flip with probability ``flip_p``; landmarks are mirrored and their
            left/right slots swapped.
        translate: maximum shift as a fraction of width/height (torchvision ``RandomAffine``
            semantics: shift ~ U(−t·W, t·W), rounded to whole pixels).
        rotate: maximum rotation in degrees (angle ~ U(−rotate, rotate)).
        scale: ``(min, max)`` zoom factor, or ``None`` for no scaling.
        color_jitter: ``(brightness, contrast, saturation)`` strengths as in ``ColorJitter``
            (factor ~ U(1 − s, 1 + s)), or ``None`` to disable.
        seed: seeds the augmentation's own generator (CPU) so runs are repeatable; ``None`` draws
            from torch's global generator.
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
    ):
        if not 0.0 <= translate < 1.0:
            raise ValueError(f"translate must be in [0, 1), got {translate}")
        if scale is not None and not (0 < scale[0] <= scale[1]):
            raise ValueError(f"scale must be (min, max) with 0 < min <= max, got {scale}")
        self.flip = flip
        self.flip_p = float(flip_p)
        self.translate = float(translate)
        self.rotate = float(rotate)
        self.scale = None if scale is None else (float(scale[0]), float(scale[1]))
        self.color_jitter = None if color_jitter is None else tuple(float(c) for c in color_jitter)
        self.generator = None if seed is None else torch.Generator().manual_seed(int(seed))

    def __repr__(self) -> str:
        return (f"LandmarkAugment(flip={self.flip}, translate={self.translate}, rotate={self.rotate}, "
                f"scale={self.scale}, color_jitter={self.color_jitter})")

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=self.generator) * (high - low) + low

    def sample_params(self, n: int, height: int, width: int) -> dict[str, torch.Tensor]:
        """Draw the per-sample parameters (CPU tensors): flip, angle, tx, ty, scale, b, c, s."""
        params = {
            "flip": (torch.rand(n, generator=self.generator) < self.flip_p) if self.flip else torch.zeros(n, dtype=torch.bool),
            "angle": self._uniform(n, -self.rotate, self.rotate) if self.rotate else torch.zeros(n),
            "tx": torch.round(self._uniform(n, -self.translate * width, self.translate * width)) if self.translate else torch.zeros(n),
            "ty": torch.round(self._uniform(n, -self.translate * height, self.translate * height)) if self.translate else torch.zeros(n),
            "scale": self._uniform(n, *self.scale) if self.scale else torch.ones(n),
        }
        for key, strength in zip(("brightness", "contrast", "saturation"), self.color_jitter or (0.0, 0.0, 0.0)):
            params[key] = self._uniform(n, max(0.0, 1 - strength), 1 + strength) if strength else torch.ones(n)
        return params

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        images = batch["image"]
        single = images.dim() == 3
        if single:
            batch = {k: (v.unsqueeze(0) if isinstance(v, torch.Tensor) and k in ("image", *LANDMARK_KEYS, "landmarks") else v)
                     for k, v in batch.items()}
            images = batch["image"]
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise TypeError(f"LandmarkAugment expects uint8 B×3×H×W images, got {images.dtype} {tuple(images.shape)}")
        n, _, height, width = images.shape
        params = self.sample_params(n, height, width)
        return self.apply(batch, params, single=single)

    def apply(self, batch: dict[str, Any], params: dict[str, torch.Tensor], single: bool = False) -> dict[str, Any]:
        """Apply given parameters (from :meth:`sample_params`) to a batch."""
        images = batch["image"]
        n, _, height, width = images.shape
        point_keys = [k for k in (*LANDMARK_KEYS, "landmarks") if isinstance(batch.get(k), torch.Tensor)]
        points = {k: batch[k].to(torch.float32).clone() for k in point_keys}
        out_images = images.clone()
        centre = [(width - 1) / 2.0, (height - 1) / 2.0]

        flip = params["flip"]
        if bool(flip.any()):
            idx = torch.nonzero(flip).flatten().to(images.device)
            out_images[idx] = F.horizontal_flip(out_images[idx])
            for k in point_keys:
                pidx = idx.to(points[k].device)
                points[k][pidx] = hflip_landmarks(points[k][pidx], width, LANDMARK_KEYS.get(k))

        geometric = bool((params["angle"] != 0).any() or (params["tx"] != 0).any() or (params["ty"] != 0).any()
                         or (params["scale"] != 1).any())
        colour = any(bool((params[k] != 1).any()) for k in ("brightness", "contrast", "saturation"))
        for i in range(n):
            angle, tx, ty, sc = (float(params[k][i]) for k in ("angle", "tx", "ty", "scale"))
            if geometric and (angle or tx or ty or sc != 1.0):
                if angle == 0.0 and sc == 1.0:
                    out_images[i] = _shift_image(out_images[i], int(tx), int(ty))
                else:
                    out_images[i] = F.affine(out_images[i], angle=angle, translate=[tx, ty], scale=sc, shear=[0.0, 0.0],
                                             interpolation=F.InterpolationMode.BILINEAR, fill=0)
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

        out = dict(batch)
        out["image"] = out_images
        for k in point_keys:
            out[k] = points[k].to(batch[k].dtype)
        if single:
            out = {k: (v.squeeze(0) if isinstance(v, torch.Tensor) and k in ("image", *point_keys) else v)
                   for k, v in out.items()}
        return out


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "normalize_images",
    "denormalize_images",
    "hflip_landmarks",
    "LandmarkAugment",
]
