"""The one image ↔ array conversion: PIL image ↔ uint8 H×W×3 numpy array ↔ uint8 3×H×W tensor (the schema).

ImageNet normalisation (uint8 tensor → float model input) has its one home in :mod:`ferlib.data.transforms`
(:func:`~ferlib.data.transforms.normalize_images`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def to_rgb_array(image: Any) -> np.ndarray:
    """Any image ferlib handles → contiguous H×W×3 uint8 RGB numpy array.

    Accepts a uint8 torch tensor C×H×W (the sample schema), a numpy H×W, H×W×3 or H×W×4 array
    (uint8, or float in [0, 1]), or a PIL image.
    """
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 3 and t.shape[0] in (1, 3, 4):
            t = t.permute(1, 2, 0)  # the sample schema's C×H×W
        arr = t.numpy()
    elif hasattr(image, "convert") and hasattr(image, "size"):  # PIL image
        arr = np.asarray(image.convert("RGB"))
    else:
        arr = np.asarray(image)
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3:
        raise ValueError(f"expected an image H×W×C or C×H×W, got an array of shape {arr.shape}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.shape[-1] == 4:
        arr = arr[..., :3]
    elif arr.shape[-1] != 3:
        raise ValueError(f"expected 1, 3 or 4 channels, got an array of shape {arr.shape}")
    return np.ascontiguousarray(arr)


def array_to_tensor(array: np.ndarray) -> torch.Tensor:
    """H×W×C numpy array → C×H×W tensor of the same dtype (the sample schema's layout).

    numpy's transpose copy is far faster than torch's ``permute().contiguous()`` for uint8.
    """
    return torch.from_numpy(np.ascontiguousarray(np.asarray(array).transpose(2, 0, 1)))


def tensor_to_array(image: torch.Tensor) -> np.ndarray:
    """C×H×W tensor → H×W×C numpy array of the same dtype (a view when the tensor is on the CPU)."""
    return image.detach().cpu().permute(1, 2, 0).numpy()


def pil_to_tensor(image: Any) -> torch.Tensor:
    """PIL image → uint8 3×H×W RGB tensor."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    return array_to_tensor(np.asarray(image, dtype=np.uint8))


def to_pil(image: Any):
    """Any image :func:`to_rgb_array` accepts → RGB PIL image."""
    from PIL import Image

    return Image.fromarray(to_rgb_array(image))


__all__ = ["array_to_tensor", "pil_to_tensor", "tensor_to_array", "to_pil", "to_rgb_array"]
