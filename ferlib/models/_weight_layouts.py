"""Outside weight layouts: torchvision ResNet-18/34, torchvision VGG16 and VGG-Face (``vgg_face_dag``).

:func:`ferlib.models.checkpoints.load_checkpoint` reads a file, and this module turns its names into
*torchvision names* (``conv1.weight``, ``layer3.1.bn2.running_var``, ``features.28.bias``,
``classifier.3.weight``), whatever the file's own layout:

* **torchvision ResNet-18/34** (``source="torchvision"``): names as torchvision writes them, with any
  ``module.`` (DataParallel) / ``backbone.`` / ``model.`` prefix removed; the classifier ``fc`` may be
  any identity head (MS-Celeb-1M 12,666-way, VGGFace2 8,631-way, ImageNet 1,000-way).
* **torchvision VGG16** (``source="torchvision"``): ``features.{0,2,5,…,28}`` (13 convolutions) and
  ``classifier.{0,3,6}`` (fc6, fc7, fc8).
* **VGG-Face** in the widely used ``vgg_face_dag`` layout (``source="vgg-face"``): ``conv1_1 … conv5_3``,
  ``fc6`` (4096×25088, or 4096×512×7×7 as a convolution), ``fc7`` (4096×4096), ``fc8`` (2622-way
  identity head). It is renamed to torchvision's VGG16 names (same 13 convolutions in the same order,
  same C×H×W flattening before fc6), and its input convention is folded into ``conv1_1``
  (:func:`fold_vgg_face_input`).

Where the torchvision names go in a ferlib model is the model's own fact: its ``torchvision_stages``
(torchvision module path → ferlib module path, ``None`` for a part it deliberately does not take).
:func:`resnet_stage_map` and :func:`vgg16_stage_map` write those maps for the families.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ferlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "LAYOUT_HEADS",
    "RESNET_BLOCKS",
    "VGG16_CONV_INDICES",
    "VGG_FACE_MEAN",
    "VGG_FACE_NAMES",
    "describe_layout",
    "fold_vgg_face_input",
    "layout_family",
    "resnet_stage_map",
    "strip_wrappers",
    "vgg16_stage_map",
    "vgg_face_to_torchvision",
]

#: Index in torchvision's ``vgg16().features`` of each of the 13 convolutions (conv1_1 … conv5_3).
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
#: ``vgg_face_dag`` convolution names in the same order.
VGG_FACE_NAMES = tuple(f"conv{b}_{i}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for i in range(1, n + 1))
#: ``vgg_face_dag`` fully connected names → torchvision ``classifier`` index.
VGG_FACE_FC = {"fc6": 0, "fc7": 3, "fc8": 6}
#: VGG-Face's input convention: RGB in 0–255 minus this mean (R, G, B), standard deviation 1.
VGG_FACE_MEAN = (129.186279296875, 104.76238250732422, 93.59396362304688)
#: Blocks per stage (``layer1`` … ``layer4``) of the torchvision ResNets ferlib uses.
RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
#: The identity/classification head of each layout family (torchvision names).
LAYOUT_HEADS = {"resnet": ("fc",), "vgg16": ("classifier.6",)}

#: Wrapper prefixes removed from every name of a torchvision-layout file.
_WRAPPERS = ("module.", "backbone.", "model.")
_VGG_FACE_KEY = re.compile(r"^(conv\d_\d|fc[678])\.(weight|bias)$")


def strip_wrappers(state: Mapping[str, torch.Tensor], path: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``state`` with every leading ``module.``/``backbone.``/``model.`` removed from each name, and
    ``{new name: name as saved}``. Two names that collide once stripped are refused, naming both."""
    out: dict[str, torch.Tensor] = {}
    saved: dict[str, str] = {}
    for key, tensor in state.items():
        name = key
        while name.startswith(_WRAPPERS):
            name = name.split(".", 1)[1]
        if name in out:
            raise ValueError(
                f"{path}: {saved[name]!r} and {key!r} both become {name!r} once the module./backbone./model. "
                "prefixes are removed; re-save the file with one copy of each tensor"
            )
        out[name] = tensor
        saved[name] = key
    return out, saved


def _resnet_blocks(names: list[str]) -> tuple[int, ...]:
    counts = []
    for stage in range(1, 5):
        idx = {int(m[1]) for n in names if (m := re.match(rf"^layer{stage}\.(\d+)\.", n))}
        counts.append(max(idx) + 1 if idx else 0)
    return tuple(counts)


def layout_family(names: list[str]) -> str:
    """``"resnet"``, ``"vgg16"``, ``"vgg16_bn"``, ``"vgg-face"`` or ``"unknown"`` for torchvision-style names."""
    keys = set(names)
    if any(_VGG_FACE_KEY.match(n) for n in keys) and "conv1_1.weight" in keys:
        return "vgg-face"
    if "features.0.weight" in keys:
        return "vgg16_bn" if any(n.startswith("features.") and n.endswith("running_mean") for n in keys) else "vgg16"
    if any(re.match(r"^layer[1-4]\.\d+\.", n) for n in keys):
        return "resnet"
    return "unknown"


def describe_layout(names: list[str]) -> str:
    """A readable name of the layout: ``"ResNet-18"``, ``"ResNet-34"``, ``"VGG16"``, ``"VGG-Face (vgg_face_dag)"``..."""
    family = layout_family(names)
    if family == "resnet":
        blocks = _resnet_blocks(names)
        depth = next((d for d, b in RESNET_BLOCKS.items() if b == blocks), None)
        return f"ResNet-{depth}" if depth else f"ResNet with {blocks} blocks per stage"
    return {
        "vgg16": "VGG16",
        "vgg16_bn": "VGG16 with batch norm",
        "vgg-face": "VGG-Face (vgg_face_dag)",
    }.get(family, "an unknown layout")


def fold_vgg_face_input(weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """VGG-Face's ``conv1_1`` rewritten for ferlib's ImageNet-normalised input.

    VGG-Face sees ``x_vgg = 255·p − m_vgg`` for pixel values ``p`` in [0, 1] (RGB, mean
    :data:`VGG_FACE_MEAN`, std 1); ferlib feeds ``x = (p − μ)/σ`` (ImageNet μ, σ), so
    ``x_vgg = 255·(σ·x + μ) − m_vgg`` and, per input channel c,

    ``W'[:, c] = W[:, c] · 255·σ_c``  and  ``b' = b + Σ_{c,k} W[:, c, k] · (255·μ_c − m_vgg,c)``.

    The result is exact wherever the 3×3 window lies inside the image; on the one-pixel border the
    zero padding stands for the ImageNet mean colour instead of VGG-Face's (a difference of at most
    ~12 grey levels in the padded taps).
    """
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64)
    shift = 255.0 * mean - torch.tensor(VGG_FACE_MEAN, dtype=torch.float64)
    w = weight.to(torch.float64)
    new_w = w * (255.0 * std).view(1, 3, 1, 1)
    new_b = bias.to(torch.float64) + (w.sum(dim=(2, 3)) * shift.view(1, 3)).sum(dim=1)
    return new_w.to(weight.dtype), new_b.to(bias.dtype)


def vgg_face_to_torchvision(
    state: Mapping[str, torch.Tensor], path: str
) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """A ``vgg_face_dag`` state dict under torchvision VGG16 names, its input convention folded into
    ``features.0`` (:func:`fold_vgg_face_input`); returns ``(state, {torchvision name: file name}, notes)``.
    Names outside the layout are kept as they are (the loader reports them as not used)."""
    renamed: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for name, tensor in state.items():
        base, _, kind = name.rpartition(".")
        if base in VGG_FACE_NAMES:
            new = f"features.{VGG16_CONV_INDICES[VGG_FACE_NAMES.index(base)]}.{kind}"
        elif base in VGG_FACE_FC:
            new = f"classifier.{VGG_FACE_FC[base]}.{kind}"
            if kind == "weight" and tensor.dim() == 4:  # fc6/fc7/fc8 stored as convolutions
                tensor = tensor.reshape(tensor.shape[0], -1)
        else:
            new = name
        renamed[new] = tensor
        origin[new] = name
    notes = []
    if "features.0.weight" in renamed and "features.0.bias" in renamed:
        w, b = renamed["features.0.weight"], renamed["features.0.bias"]
        if tuple(w.shape[1:]) != (3, 3, 3):
            raise ValueError(f"{path}: conv1_1.weight has shape {tuple(w.shape)}; VGG-Face's is (64, 3, 3, 3)")
        renamed["features.0.weight"], renamed["features.0.bias"] = fold_vgg_face_input(w, b)
        notes.append(
            "conv1_1: VGG-Face's input convention (RGB 0-255 minus (129.186, 104.762, 93.594), std 1) folded "
            "into the weights so that ImageNet-normalised input gives the same activations"
        )
    return renamed, origin, notes


def resnet_stage_map(paths: Mapping[str, str | None], head: str | None = None) -> dict[str, str | None]:
    """``torchvision_stages`` of a ResNet-based family: ``paths`` maps ``conv1``, ``bn1``, ``layer1`` …
    ``layer4`` to ferlib module paths (``None``: deliberately not taken); ``head`` is where ``fc`` goes
    (only the plain baselines have one)."""
    stages = dict(paths)
    if head is not None:
        stages["fc"] = head
    return stages


def vgg16_stage_map(blocks1_4: str, block5: str, classifier: str | None, head: str | None) -> dict[str, str | None]:
    """``torchvision_stages`` of a VGG16-based family whose conv blocks 1–4 live in ``blocks1_4``
    (torchvision ``features[:24]``) and conv block 5 in ``block5`` (``features[24:]``); fc6/fc7 go to
    ``classifier.0``/``classifier.3`` of ``classifier`` (``None``: not taken) and fc8 to ``head``."""
    stages: dict[str, str | None] = {}
    for index in VGG16_CONV_INDICES:
        stages[f"features.{index}"] = f"{blocks1_4}.{index}" if index < 24 else f"{block5}.{index - 24}"
    for index in (0, 3):
        stages[f"classifier.{index}"] = f"{classifier}.{index}" if classifier is not None else None
    if head is not None:
        stages["classifier.6"] = head
    return stages
