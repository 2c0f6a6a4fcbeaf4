"""Attention blocks shared by the five networks.

Only blocks reused by more than one paper, or standard published blocks, live here:

* :class:`SEModule` — squeeze-and-excitation (Hu et al., CVPR 2018); used by AMP-Net's OSA blocks,
  the Multiple Attention Network's MA block (man.txt Eq. 5) and the VGG16+SE baseline.
* :class:`CBAM` — convolutional block attention module (Woo et al., ECCV 2018), channel gate then
  spatial gate; used by MA-Net's attentive blocks and AMP-Net's attention blocks (Eq. 5). Submodule
  names (``ChannelGate.mlp``, ``SpatialGate.spatial.conv/bn``) mirror the public MA-Net/AMP-Net
  checkpoints so that :func:`ferlib.models.checkpoints.load_checkpoint` maps them one to one.
* :class:`CBAMBasicBlock` — a ResNet basic block with CBAM before the shortcut addition: MA-Net's
  attentive block (ma-net.txt Fig. 2(c), Eq. 4) and AMP-Net's attention block (amp-net.txt Eq. 5).
* :class:`ShuffleAttention` — SA-Net (Zhang & Yang, ICASSP 2021); FFRA-Net's local attention
  module (ffra-net.txt §3, Eqs. 2-3) with G groups.
* :func:`conv_norm_act` (conv → BN → ReLU) and :func:`downsample` (the 1×1 conv + BN shortcut),
  the two layer recipes the families otherwise write out by hand.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F


class SEModule(nn.Module):
    """Squeeze-and-excitation: ``x * sigmoid(W2 relu(W1 GAP(x)))``.

    ``reduction`` divides the channels in the bottleneck (16 in the SE paper).
    """

    def __init__(self, channels: int, reduction: int = 16, min_hidden: int = 1):
        super().__init__()
        hidden = max(channels // reduction, min_hidden)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.adaptive_avg_pool2d(x, 1)
        w = torch.sigmoid(self.fc2(self.relu(self.fc1(w))))
        return x * w


def conv_norm_act(
    cin: int, cout: int, kernel_size: int = 3, stride: int = 1, *, act: bool = True, named: bool = False
) -> nn.Sequential:
    """Conv (padding ``kernel_size // 2``, no bias) → BatchNorm (→ ReLU), as one ``nn.Sequential``.

    Children are numbered (``0``, ``1``, ``2``) or, with ``named=True``, called ``conv``/``bn``/``relu``
    (MA-Net's multi-scale ``P_i``, whose names the public checkpoint map relies on).
    """
    layers = [
        ("conv", nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)),
        ("bn", nn.BatchNorm2d(cout)),
    ]
    if act:
        layers.append(("relu", nn.ReLU(inplace=True)))
    return nn.Sequential(OrderedDict(layers)) if named else nn.Sequential(*(m for _, m in layers))


def downsample(cin: int, cout: int, stride: int = 1) -> nn.Sequential | None:
    """ResNet's projection shortcut, 1×1 conv (stride) + BN, or ``None`` when the shape is kept."""
    if stride == 1 and cin == cout:
        return None
    return conv_norm_act(cin, cout, 1, stride, act=False)


class ConvBN(nn.Module):
    """Conv → BN (→ ReLU). Named ``conv``/``bn`` like the public CBAM's ``BasicConv``."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        relu: bool = True,
        bias: bool = False,
    ):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=bias)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.01, affine=True)
        self.relu = nn.ReLU(inplace=True) if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.relu(x) if self.relu is not None else x


class ChannelGate(nn.Module):
    """CBAM channel attention: shared MLP over average- and max-pooled descriptors, summed, sigmoid."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        # index 0 = Flatten, 1 = Linear, 2 = ReLU, 3 = Linear (matches public checkpoint keys mlp.1/mlp.3)
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        mx = self.mlp(F.adaptive_max_pool2d(x, 1))
        scale = torch.sigmoid(avg + mx)[:, :, None, None]
        return x * scale


class SpatialGate(nn.Module):
    """CBAM spatial attention: 7×7 conv + BN over [max, mean] across channels, sigmoid."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.spatial = ConvBN(2, 1, kernel_size, padding=kernel_size // 2, relu=False)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.spatial(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention(x)


class CBAM(nn.Module):
    """Channel gate followed by spatial gate (Woo et al. 2018, Eqs. 1-3)."""

    def __init__(self, channels: int, reduction: int = 16, spatial: bool = True):
        super().__init__()
        self.ChannelGate = ChannelGate(channels, reduction)
        self.SpatialGate = SpatialGate() if spatial else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ChannelGate(x)
        if self.SpatialGate is not None:
            x = self.SpatialGate(x)
        return x


class CBAMBasicBlock(nn.Module):
    """ResNet basic block with CBAM on the residual path: ``relu(M_s(M_c(f(x))) + shortcut(x))``.

    ``f`` = 3×3 conv-BN-ReLU-3×3 conv-BN (the first conv carries the stride); ``M_c``/``M_s`` =
    :class:`CBAM`'s channel then spatial gate (reduction 16); the shortcut is :func:`downsample`.
    This is MA-Net's attentive block (ma-net.txt Fig. 2(c), Eq. 4: ``F_r = M_s(F) ⊗ (M_c(F) ⊗ F)``)
    and AMP-Net's attention block (amp-net.txt Eq. 5 / Fig. 3(c); the paper writes "⊗ x" but its
    text and public code add the input). ``attention=False`` gives the plain basic block (MA-Net
    Table I, "local feature").

    Parameter names (``conv1``, ``bn1``, ``conv2``, ``bn2``, ``cbam.ChannelGate.mlp``,
    ``cbam.SpatialGate.spatial``, ``downsample.0/1``) are those of both public checkpoints.
    ``shortcut_first`` builds the shortcut before the residual path (MA-Net's code passes a ready
    shortcut to torchvision's ``BasicBlock``; AMP-Net's builds it last): the order only decides
    which random numbers each layer draws, and is kept so seeded models reproduce bit for bit.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int = 1,
        *,
        attention: bool = True,
        reduction: int = 16,
        shortcut_first: bool = False,
    ):
        super().__init__()
        shortcut = downsample(cin, cout, stride) if shortcut_first else None
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride = stride
        if shortcut_first:
            self.downsample = shortcut
        self.cbam = CBAM(cout, reduction) if attention else None
        if not shortcut_first:
            self.downsample = downsample(cin, cout, stride)

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Output and CBAM's spatial attention map ``M_s`` (B×1×h×w; ``None`` without attention)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        attention = None
        if self.cbam is not None:
            out = self.cbam.ChannelGate(out)
            if self.cbam.SpatialGate is not None:
                attention = self.cbam.SpatialGate.attention(out)
                out = out * attention
        return self.relu(out + identity), attention

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(x)[0]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave channels across ``groups`` (ShuffleNet): B×(g·c)×H×W → B×(c·g)×H×W."""
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ShuffleAttention(nn.Module):
    """SA-Net shuffle attention (Zhang & Yang 2021), as used by FFRA-Net (ffra-net.txt Eqs. 2-3).

    Channels are split into ``groups`` sub-features; each is halved: one half gets channel
    attention ``sigmoid(W_c · GAP(x) + b_c)``, the other spatial attention
    ``sigmoid(W_s · GN(x) + b_s)``; halves are concatenated and a channel shuffle mixes groups.
    """

    def __init__(self, channels: int, groups: int = 8):
        super().__init__()
        if channels % (2 * groups):
            raise ValueError(f"ShuffleAttention needs channels divisible by 2*groups; got {channels}, G={groups}")
        self.groups = groups
        half = channels // (2 * groups)
        self.cweight = nn.Parameter(torch.zeros(1, half, 1, 1))
        self.cbias = nn.Parameter(torch.ones(1, half, 1, 1))
        self.sweight = nn.Parameter(torch.zeros(1, half, 1, 1))
        self.sbias = nn.Parameter(torch.ones(1, half, 1, 1))
        self.gn = nn.GroupNorm(half, half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x.reshape(b * self.groups, c // self.groups, h, w)
        xc, xs = x.chunk(2, dim=1)
        xc = xc * torch.sigmoid(self.cweight * F.adaptive_avg_pool2d(xc, 1) + self.cbias)
        xs = xs * torch.sigmoid(self.sweight * self.gn(xs) + self.sbias)
        out = torch.cat([xc, xs], dim=1).reshape(b, c, h, w)
        return channel_shuffle(out, 2)
