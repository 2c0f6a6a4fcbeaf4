"""Batches on the device: transfer, the recipe's augmentation, ImageNet normalisation, the model's
inputs and its loss. The trainer, evaluation, LAN guidance and the throughput benchmark all prepare
a batch through these functions, so they see exactly the same tensors."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn as nn

from ferlib.data.transforms import LandmarkAugment, normalize_images
from ferlib.train.recipes import Recipe


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Every tensor of ``batch`` on ``device`` (non-blocking on CUDA, from pinned memory)."""
    non_blocking = device.type == "cuda"
    return {
        k: (v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()
    }


def prepare_images(batch: dict[str, Any], channels_last: bool) -> torch.Tensor:
    """Normalise ``batch["image"]`` in place (channels-last when asked) and return it."""
    images = normalize_images(batch["image"])
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    batch["image"] = images
    return images


def build_augment(recipe: Recipe, enabled: bool) -> Callable | None:
    """The recipe's batch augmentation (``ferlib.data.transforms.LandmarkAugment``) or ``None``.

    The trainer re-seeds ``augment.generator`` at the start of every epoch from ``(seed, epoch)``.
    """
    a = recipe.augment
    jitter = (a.brightness, a.contrast, a.saturation)
    zoom = (a.scale_min, a.scale_max) != (1.0, 1.0)
    if not enabled or not (a.hflip or a.translate or zoom or any(jitter) or a.rotate or a.grayscale_p or a.crop_area):
        return None
    return LandmarkAugment(
        flip=a.hflip,
        translate=a.translate,
        rotate=a.rotate,
        scale=(a.scale_min, a.scale_max) if zoom else None,
        color_jitter=jitter if any(jitter) else None,
        seed=0,
        affine_p=a.affine_p,
        jitter_p=a.jitter_p,
        grayscale_p=a.grayscale_p,
        crop_area=a.crop_area,
        crop_ratio=a.crop_ratio,
    )


def compute_loss(core: nn.Module, output, batch: dict[str, Any]) -> torch.Tensor:
    """The model's ``loss(output, batch)`` (:class:`ferlib.models.FERModel`'s default is
    :func:`ferlib.models.losses.cross_entropy`)."""
    return core.loss(output, batch)


def autocast_factory(device: torch.device, amp: str) -> tuple[Callable, torch.dtype | None]:
    """``(context factory, dtype)`` for mixed precision: ``auto`` is bf16 (else fp16) on CUDA, off on CPU."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return nullcontext, None
    if amp == "auto":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return (lambda: torch.autocast(device_type=device.type, dtype=dtype)), dtype
