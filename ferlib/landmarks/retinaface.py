"""``retinaface`` backend: ferlib's own RetinaFace network, loading a user-supplied checkpoint.

RetinaFace (Deng et al., "RetinaFace: Single-stage Dense Face Localisation in the Wild", CVPR 2020)
is the detector the five FER papers use to detect and align faces. It is a single-stage detector:

* a backbone (MobileNet-0.25 or ResNet-50) gives three feature maps at strides 8, 16 and 32;
* a feature pyramid (FPN: lateral 1×1 convolutions, nearest-neighbour top-down addition and a
  3×3 "merge" convolution) brings them to one width;
* an SSH context module per level (a 3×3 branch with half the channels and 5×5 / 7×7 receptive
  fields built from stacked 3×3 convolutions with a quarter each, concatenated, then ReLU);
* per level, 1×1 heads for face/background (2 per anchor), box offsets (4) and five landmark
  offsets (10), with two square anchors per location (sizes 16/32, 64/128, 256/512 px);
* offsets are decoded against the anchors with variances (0.1, 0.2) (SSD-style encoding), then
  thresholded and suppressed with NMS (``torchvision.ops.nms``).

No package ships RetinaFace weights and nothing may be downloaded, so the detector needs the
path of one of the standard public checkpoints (``mobilenet0.25_Final.pth``, 1.7 MB, or
``Resnet50_Final.pth``, 105 MB). Module names here follow that checkpoints' state-dict layout
(``body.*``, ``fpn.*``, ``ssh1..3.*``, ``ClassHead.i.conv1x1``, ``BboxHead.*``, ``LandmarkHead.*``);
``module.`` prefixes left by ``DataParallel`` are stripped. The checkpoints were trained on
BGR images with the per-channel means (104, 117, 123) subtracted and no scaling; this backend
converts ferlib's RGB input accordingly. The 5 points come out as image-left eye, image-right eye,
nose, image-left mouth corner, image-right mouth corner: RetinaFace order.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_convert

from ferlib.landmarks.base import Detector, Face, register_detector

#: Anchor sizes (pixels) per pyramid level and the levels' strides (RetinaFace §4.1).
ANCHOR_SIZES: tuple[tuple[int, int], ...] = ((16, 32), (64, 128), (256, 512))
STRIDES: tuple[int, ...] = (8, 16, 32)
#: SSD-style encoding variances for centres and sizes.
VARIANCES: tuple[float, float] = (0.1, 0.2)
#: Per-channel means (B, G, R order) the public checkpoints subtract from BGR input.
BGR_MEAN: tuple[float, float, float] = (104.0, 117.0, 123.0)

#: Network widths per backbone: channels of the three backbone outputs and of the FPN/SSH.
VARIANTS: dict[str, dict[str, Any]] = {
    "mobilenet0.25": {"in_channels": (64, 128, 256), "out_channels": 64},
    "resnet50": {"in_channels": (512, 1024, 2048), "out_channels": 256},
}


def _conv_bn(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, leaky: float | None = 0.0, groups: int = 1
) -> nn.Sequential:
    """Conv (no bias) → BatchNorm → LeakyReLU(leaky); ``leaky=None`` leaves out the activation.

    Indices inside the Sequential (0 conv, 1 BN) match the public checkpoints' keys.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if leaky is not None:
        layers.append(nn.LeakyReLU(negative_slope=leaky, inplace=True))
    return nn.Sequential(*layers)


def _conv_dw(cin: int, cout: int, stride: int, leaky: float = 0.1) -> nn.Sequential:
    """MobileNet-v1 depthwise-separable block: 3×3 depthwise + BN + act, 1×1 pointwise + BN + act."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
        nn.Conv2d(cin, cout, 1, 1, 0, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


class MobileNet025(nn.Module):
    """MobileNet-v1 at width 0.25 (Howard et al., 2017), cut into the three stages RetinaFace taps.

    Output strides 8, 16 and 32 with 64, 128 and 256 channels.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            _conv_bn(3, 8, 3, 2, leaky=0.1),
            _conv_dw(8, 16, 1),
            _conv_dw(16, 32, 2),
            _conv_dw(32, 32, 1),
            _conv_dw(32, 64, 2),
            _conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(_conv_dw(64, 128, 2), *[_conv_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(_conv_dw(128, 256, 2), _conv_dw(256, 256, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c3 = self.stage1(x)
        c4 = self.stage2(c3)
        c5 = self.stage3(c4)
        return [c3, c4, c5]


class ResNet50Body(nn.Module):
    """torchvision's ResNet-50 trunk (conv1 … layer4, no pooling/fc); outputs layer2, layer3, layer4."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import resnet50

        net = resnet50(weights=None)
        # Same attribute names as torchvision so checkpoint keys ``body.layer1.0.conv1.weight`` load.
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c3, c4, c5]


class FPN(nn.Module):
    """Feature pyramid (Lin et al., 2017) as RetinaFace uses it: lateral 1×1, top-down add, 3×3 merge."""

    def __init__(self, in_channels: tuple[int, int, int], out_channels: int) -> None:
        super().__init__()
        leaky = 0.1 if out_channels <= 64 else 0.0
        self.output1 = _conv_bn(in_channels[0], out_channels, 1, leaky=leaky)
        self.output2 = _conv_bn(in_channels[1], out_channels, 1, leaky=leaky)
        self.output3 = _conv_bn(in_channels[2], out_channels, 1, leaky=leaky)
        self.merge1 = _conv_bn(out_channels, out_channels, 3, leaky=leaky)
        self.merge2 = _conv_bn(out_channels, out_channels, 3, leaky=leaky)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        p4 = self.merge2(p4 + F.interpolate(p5, size=p4.shape[-2:], mode="nearest"))
        p3 = self.merge1(p3 + F.interpolate(p4, size=p3.shape[-2:], mode="nearest"))
        return [p3, p4, p5]


class SSH(nn.Module):
    """SSH context module (Najibi et al., 2017): 3×3 (C/2) ‖ 5×5-equivalent (C/4) ‖ 7×7-equivalent (C/4).

    The 5×5 and 7×7 receptive fields share their first 3×3 convolution; the concatenation is
    followed by a ReLU.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        if cout % 4:
            raise ValueError(f"SSH output channels must be divisible by 4, got {cout}")
        leaky = 0.1 if cout <= 64 else 0.0
        self.conv3X3 = _conv_bn(cin, cout // 2, 3, leaky=None)
        self.conv5X5_1 = _conv_bn(cin, cout // 4, 3, leaky=leaky)
        self.conv5X5_2 = _conv_bn(cout // 4, cout // 4, 3, leaky=None)
        self.conv7X7_2 = _conv_bn(cout // 4, cout // 4, 3, leaky=leaky)
        self.conv7x7_3 = _conv_bn(cout // 4, cout // 4, 3, leaky=None)  # lower-case x: checkpoint key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.conv5X5_1(x)
        out5 = self.conv5X5_2(shared)
        out7 = self.conv7x7_3(self.conv7X7_2(shared))
        return F.relu(torch.cat([self.conv3X3(x), out5, out7], dim=1))


class _Head(nn.Module):
    """1×1 convolution giving ``per_anchor`` values for each of the anchors at every location."""

    def __init__(self, cin: int, per_anchor: int, num_anchors: int = 2) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(cin, num_anchors * per_anchor, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # B×(A·k)×H×W → B×(H·W·A)×k: row-major locations, anchors innermost (matches prior_boxes).
        out = self.conv1x1(x).permute(0, 2, 3, 1).contiguous()
        return out.view(out.shape[0], -1, self.per_anchor)


class RetinaFaceNet(nn.Module):
    """RetinaFace: backbone → FPN → SSH ×3 → class/box/landmark heads.

    ``forward`` returns raw ``(box_offsets B×N×4, class_logits B×N×2, landmark_offsets B×N×10)``
    over the N anchors of :func:`prior_boxes`.
    """

    def __init__(self, backbone: str = "mobilenet0.25") -> None:
        super().__init__()
        if backbone not in VARIANTS:
            raise ValueError(f"unknown RetinaFace backbone {backbone!r}; choose one of {sorted(VARIANTS)}")
        self.backbone = backbone
        cfg = VARIANTS[backbone]
        self.body = MobileNet025() if backbone == "mobilenet0.25" else ResNet50Body()
        c = cfg["out_channels"]
        self.fpn = FPN(cfg["in_channels"], c)
        self.ssh1, self.ssh2, self.ssh3 = SSH(c, c), SSH(c, c), SSH(c, c)
        self.ClassHead = nn.ModuleList([_Head(c, 2) for _ in STRIDES])
        self.BboxHead = nn.ModuleList([_Head(c, 4) for _ in STRIDES])
        self.LandmarkHead = nn.ModuleList([_Head(c, 10) for _ in STRIDES])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self.fpn(self.body(x))
        feats = [self.ssh1(p[0]), self.ssh2(p[1]), self.ssh3(p[2])]
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, feats)], dim=1)
        conf = torch.cat([h(f) for h, f in zip(self.ClassHead, feats)], dim=1)
        landms = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats)], dim=1)
        return loc, conf, landms


def prior_boxes(height: int, width: int) -> torch.Tensor:
    """Anchors for an input of ``height``×``width``: N×4 (cx, cy, w, h), normalised to [0, 1].

    For each level (stride s, sizes m1, m2) and each cell (i, j) of the ⌈H/s⌉×⌈W/s⌉ grid, two
    square anchors centred at ((j+½)s, (i+½)s) — the order the heads' outputs are flattened in.
    """
    levels = []
    for sizes, step in zip(ANCHOR_SIZES, STRIDES):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        cy = (torch.arange(rows, dtype=torch.float64) + 0.5) * step / height
        cx = (torch.arange(cols, dtype=torch.float64) + 0.5) * step / width
        gy, gx = torch.meshgrid(cy, cx, indexing="ij")  # row-major cells
        per_size = [
            torch.stack([gx, gy, torch.full_like(gx, m / width), torch.full_like(gx, m / height)], dim=-1)
            for m in sizes
        ]
        levels.append(torch.stack(per_size, dim=2).reshape(-1, 4))  # anchors innermost
    return torch.cat(levels).float()


def decode_boxes(loc: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """SSD-style decoding: centre = prior centre + loc·v0·prior size; size = prior size·exp(loc·v1).

    Returns N×4 (x1, y1, x2, y2) normalised to the input size.
    """
    centre = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])
    return box_convert(torch.cat([centre, size], dim=1), "cxcywh", "xyxy")


def decode_landmarks(pre: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Five points per anchor: prior centre + offset·v0·prior size. Returns N×5×2, normalised."""
    offsets = pre.view(-1, 5, 2)
    return priors[:, None, :2] + offsets * VARIANCES[0] * priors[:, None, 2:]


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        while k.startswith("module."):
            k = k[len("module.") :]
        out[k] = v
    return out


def infer_backbone(state: dict[str, torch.Tensor]) -> str:
    """``mobilenet0.25`` or ``resnet50`` from a (prefix-stripped) checkpoint's keys."""
    if any(k.startswith("body.stage1.") for k in state):
        return "mobilenet0.25"
    if any(k.startswith("body.layer4.") for k in state):
        return "resnet50"
    raise ValueError("keys look like neither RetinaFace MobileNet-0.25 (body.stage1.*) nor ResNet-50 (body.layer4.*)")


def load_retinaface(weights: str | Path | None, backbone: str | None = None) -> RetinaFaceNet:
    """Build :class:`RetinaFaceNet` and load a public-layout checkpoint from ``weights``.

    ``backbone`` is inferred from the keys when not given. Raises ``FileNotFoundError`` /
    ``ValueError`` with a message that says what was expected and how to fix it.
    """
    hint = (
        "RetinaFace needs a weights file that ferlib cannot download: pass the path of the standard "
        "public checkpoint 'mobilenet0.25_Final.pth' or 'Resnet50_Final.pth' "
        "(`ferlib landmarks ... --backend retinaface --weights PATH`, or "
        "create_detector('retinaface', weights=PATH)), or use the default offline backend 'mtcnn'; "
        "see docs/landmarks.md"
    )
    if weights is None or str(weights) == "":
        raise ValueError(f"no RetinaFace weights given. {hint}")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"RetinaFace weights file not found at {path}. {hint}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"could not read RetinaFace weights {path} as a torch checkpoint ({type(exc).__name__}: {exc}). {hint}"
        ) from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors. {hint}")
    state = _strip_prefix(obj)
    try:
        found = infer_backbone(state)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}; is it a RetinaFace checkpoint? {hint}") from exc
    if backbone is not None and backbone != found:
        raise ValueError(f"{path} holds a RetinaFace {found} checkpoint but backbone={backbone!r} was asked for")
    net = RetinaFaceNet(found)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    # num_batches_tracked is bookkeeping that old checkpoints may lack; anything else must match.
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    unexpected = [k for k in unexpected if not k.endswith("num_batches_tracked")]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or shapes:
        raise ValueError(
            f"{path} does not match ferlib's RetinaFace-{found} layout: "
            f"{len(missing)} missing key(s) {missing[:5]}, {len(unexpected)} unexpected {unexpected[:5]}, "
            f"{len(shapes)} shape mismatch(es) {shapes[:3]}. {hint}"
        )
    net.load_state_dict(state, strict=False)
    return net.eval()


@register_detector("retinaface")
class RetinaFaceDetector(Detector):
    """RetinaFace with a user-supplied checkpoint (``weights``), run at the image's own resolution.

    ``score_threshold`` keeps faces whose softmax face probability is at least that; ``nms_iou``
    is the suppression overlap; ``top_k`` bounds the candidates sent to NMS (keeps random or
    poorly matched weights from stalling it); ``max_size`` downsizes larger images before the
    network (coordinates are mapped back), ``None`` keeps every image at full size.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        backbone: str | None = None,
        score_threshold: float = 0.5,
        nms_iou: float = 0.4,
        top_k: int = 1000,
        max_size: int | None = 1024,
        device: str = "cpu",
    ) -> None:
        self.weights = None if weights is None else str(weights)
        self.net = load_retinaface(weights, backbone).to(device)
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.top_k = int(top_k)
        self.max_size = max_size
        self.device = torch.device(device)
        self._mean = torch.tensor(BGR_MEAN, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "weights": Path(self.weights).name if self.weights else None,
            "architecture": self.net.backbone,
            "score_threshold": self.score_threshold,
            "nms_iou": self.nms_iou,
            "max_size": self.max_size,
        }

    @torch.no_grad()
    def detect_arrays(self, images: list[np.ndarray]) -> list[list[Face]]:
        return [self._detect_one(im) for im in images]

    def _detect_one(self, image: np.ndarray) -> list[Face]:
        from torchvision.ops import nms

        h0, w0 = image.shape[:2]
        x = torch.from_numpy(image).to(self.device).permute(2, 0, 1)[None].float()
        scale = 1.0
        if self.max_size is not None and max(h0, w0) > self.max_size:
            scale = self.max_size / max(h0, w0)
            size = [max(1, round(h0 * scale)), max(1, round(w0 * scale))]
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        h, w = x.shape[-2:]
        x = x.flip(1) - self._mean  # RGB → BGR, minus the checkpoints' channel means
        loc, conf, landms = self.net(x)
        priors = prior_boxes(h, w).to(self.device)
        if priors.shape[0] != loc.shape[1]:  # would silently pair offsets with the wrong anchors
            raise RuntimeError(
                f"RetinaFace produced {loc.shape[1]} anchors for a {h}×{w} input, expected {priors.shape[0]}"
            )
        scores = F.softmax(conf[0], dim=-1)[:, 1]
        keep = torch.nonzero(scores >= self.score_threshold).squeeze(1)
        if keep.numel() == 0:
            return []
        keep = keep[torch.argsort(scores[keep], descending=True)[: self.top_k]]
        boxes = decode_boxes(loc[0, keep], priors[keep])
        points = decode_landmarks(landms[0, keep], priors[keep])
        to_pixels = torch.tensor([w, h], dtype=torch.float32, device=self.device) / scale
        boxes = boxes * to_pixels.repeat(2)
        points = points * to_pixels
        sel = nms(boxes, scores[keep], self.nms_iou)
        return [
            Face(box=boxes[i].cpu().numpy(), score=float(scores[keep][i]), landmarks5=points[i].cpu().numpy())
            for i in sel.tolist()
        ]
