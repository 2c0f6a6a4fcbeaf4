"""Attention blocks shared by the five networks.

Only blocks reused by more than one paper, or standard published blocks, live here:

* :class:`SEModule` — squeeze-and-excitation (Hu et al., CVPR 2018); used by AMP-Net's OSA blocks,
  the Multiple Attention Network's MA block (man.txt Eq. 5) and the VGG16+SE baseline.
* :class:`CBAM` — convolutional block attention module (Woo et al., ECCV 2018), channel gate then
  spatial gate; used by MA-Net's attentive blocks and AMP-Net's attention blocks (Eq. 5). Submodule
  names (``ChannelGate.mlp``, ``SpatialGate.spatial.conv/bn``) mirror the public MA-Net/AMP-Net
  checkpoints so that :func:`ferlib.models.checkpoints.load_checkpoint` maps them one to one.
* :class:`ShuffleAttention` — SA-Net (Zhang & Yang, ICASSP 2021); FFRA-Net's local attention
  module (ffra-net.txt §3, Eqs. 2-3) with G groups.
"""

from __future__ import annotations

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


class ConvBN(nn.Module):
    """Conv → BN (→ ReLU). Named ``conv``/``bn`` like the public CBAM's ``BasicConv``."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 relu: bool = True, bias: bool = False):
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
