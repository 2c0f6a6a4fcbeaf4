"""The one image decoder and image ↔ array conversion: file → PIL image ↔ uint8 H×W×3 array ↔ uint8 3×H×W tensor.

:func:`decode_image` is the one place an image file becomes pixels (the loader, the cache through the loader,
``ferlib data verify`` and landmark extraction through :func:`to_rgb_array` all end here): EXIF orientation is
applied (a phone photo is seen upright) and 16-bit images (``I;16``, ``I;16B``, ``I``) are scaled to 8 bit
instead of being clipped to white. :data:`MIN_IMAGE_SIDE` is the smallest side ferlib accepts as a face image.

ImageNet normalisation (uint8 tensor → float model input) has its one home in :mod:`ferlib.data.transforms`
(:func:`~ferlib.data.transforms.normalize_images`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

#: The smallest width/height (pixels) of an image ferlib trains or evaluates on; smaller files are thumbnails or
#: placeholders (FER-2013's 48×48 faces are the smallest real data).
MIN_IMAGE_SIDE = 16

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def rgb_image(image: Any):
    """A PIL image of any mode → an upright 8-bit RGB PIL image.

    EXIF orientation is applied (``PIL.ImageOps.exif_transpose``); 16-bit grey (``I;16*``, and ``I`` as PNG
    decodes 16-bit files) is scaled by 255/65535, float (``F``) from [0, 1] or [0, 255]; other modes use PIL's
    own conversion (alpha is dropped).
    """
    from PIL import ImageOps

    return to_8bit_rgb(ImageOps.exif_transpose(image))


def to_8bit_rgb(image: Any):
    """:func:`rgb_image` without the EXIF step (for images made in memory, e.g. after a resize)."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        arr = np.asarray(image).astype(np.float64)
        if image.mode == "F":
            scale = 255.0 if arr.size and float(np.nanmax(arr)) <= 1.0 else 1.0
        else:
            scale = 255.0 / 65535.0
        grey = np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(np.ascontiguousarray(np.stack([grey] * 3, axis=-1)), "RGB")
    return image.convert("RGB")


def decode_image(source: Any):
    """An image file (path or bytes), PIL image or uint8 array → upright 8-bit RGB PIL image (see :func:`rgb_image`).

    Raises what PIL raises for a file that is not a readable image (callers turn it into their own error).
    """
    import io
    import os

    from PIL import Image

    if isinstance(source, np.ndarray):
        return Image.fromarray(to_rgb_array(source))
    if hasattr(source, "mode") and hasattr(source, "size"):  # PIL image
        return rgb_image(source)
    opened = Image.open(io.BytesIO(source)) if isinstance(source, (bytes, bytearray)) else Image.open(os.fspath(source))
    with opened as im:
        im.load()
        return rgb_image(im)


def check_image_size(width: int, height: int, minimum: int = MIN_IMAGE_SIDE) -> str | None:
    """None when ``width``×``height`` is big enough to be a face image, else what is wrong (for a message)."""
    if width >= minimum and height >= minimum:
        return None
    return (
        f"the image is only {width}×{height} px; ferlib needs at least {minimum} px per side "
        "(a thumbnail or a placeholder is not a face image)"
    )


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
        arr = np.asarray(rgb_image(image))
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
    """PIL image → uint8 3×H×W RGB tensor (any mode, see :func:`to_8bit_rgb`; no EXIF step: decode files with
    :func:`decode_image`)."""
    image = to_8bit_rgb(image)
    return array_to_tensor(np.asarray(image, dtype=np.uint8))


def to_pil(image: Any):
    """Any image :func:`to_rgb_array` accepts → RGB PIL image."""
    from PIL import Image

    return Image.fromarray(to_rgb_array(image))


__all__ = [
    "MIN_IMAGE_SIDE",
    "array_to_tensor",
    "check_image_size",
    "decode_image",
    "pil_to_tensor",
    "rgb_image",
    "tensor_to_array",
    "to_8bit_rgb",
    "to_pil",
    "to_rgb_array",
]
