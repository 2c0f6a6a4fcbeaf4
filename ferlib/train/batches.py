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
from ferlib.runs import cpu_has_native_bf16
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


AMP_CHOICES = ("auto", "off", "bf16", "fp16")


def autocast_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """The autocast dtype ``amp`` resolves to on ``device`` (``None`` = plain fp32).

    ``auto``: bf16 on CUDA (fp16 where the GPU lacks bf16), bf16 on a CPU with native bf16
    (:func:`ferlib.runs.cpu_has_native_bf16`), fp32 otherwise (MPS, CPUs that would emulate bf16).
    ``off``: fp32. ``bf16``/``fp16``: that dtype on any device.
    """
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp={amp!r} is not one of {AMP_CHOICES}; pass --amp auto|off|bf16|fp16")
    if amp == "off":
        return None
    if amp == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def use_channels_last(device: torch.device, amp: str, channels_last: bool | None) -> bool:
    """Whether to run channels-last: ``channels_last`` when given; otherwise on CUDA, and on a CPU
    where ``amp`` resolves to bf16 autocast (oneDNN's bf16 convolutions prefer NHWC). ``amp="off"``
    on a CPU therefore keeps the plain fp32, contiguous path the seeded golden runs were made with."""
    if channels_last is not None:
        return bool(channels_last)
    if device.type == "cuda":
        return True
    return device.type == "cpu" and autocast_dtype(device, amp) == torch.bfloat16


def precision_record(device: torch.device, amp: str, channels_last: bool) -> dict[str, Any]:
    """What actually ran, for ``metrics.json``: the requested ``amp``, the autocast dtype it resolved
    to (``"float32"`` = none), the memory format and, on CPU, whether native bf16 was detected."""
    dtype = autocast_dtype(device, amp)
    return {
        "amp": amp,
        "autocast_dtype": "float32" if dtype is None else str(dtype).removeprefix("torch."),
        "memory_format": "channels_last" if channels_last else "contiguous",
        "device": device.type,
        "cpu_native_bf16": cpu_has_native_bf16() if device.type == "cpu" else None,
    }


def autocast_factory(device: torch.device, amp: str) -> tuple[Callable, torch.dtype | None]:
    """``(context factory, dtype)`` for mixed precision, the dtype from :func:`autocast_dtype`
    (``auto``: bf16 on CUDA and on CPUs with native bf16, else fp16 on old GPUs / fp32)."""
    dtype = autocast_dtype(device, amp)
    if dtype is None:
        return nullcontext, None
    return (lambda: torch.autocast(device_type=device.type, dtype=dtype)), dtype
