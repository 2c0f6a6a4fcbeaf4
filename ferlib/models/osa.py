"""One-shot aggregation blocks of AMP-Net's global perception (GP) module (amp-net.txt §III-B).

* :class:`GateLayer` — the gate of Eq. 1 / Fig. 3(b): ``F_G(x) = α(FC(AvgPool(x))) ⊗ x`` with α the
  sigmoid. ``width="scalar"`` (default) is an FC with **one** output, one gate per sample and layer,
  exactly as the public AMP-Net code builds it (``sigatten.fc2``: ``Linear(C, 1)``, so the public
  checkpoints load); ``width="channel"`` is the per-channel reading of the paper's sentence "derive
  the weight of the channel" (``Linear(C, C)``).
* :class:`EffectiveSE` — eSE (Lee & Park, CenterMask, CVPR 2020): ``x ⊗ hsigmoid(W·GAP(x) + b)`` with
  a single 1×1 convolution. The paper says "SE block"; the public code uses eSE, which we follow.
* :class:`OSABlock` — (gate-)OSA block, Fig. 3(a): ``n`` 3×3 conv-BN(-gate)-ReLU layers in series,
  the block input and every layer output concatenated (``C2 = C_in + n·C1``), a 1×1 conv-BN-ReLU
  reduction to ``C3``, eSE, an optional projected shortcut, and Dropout2d.

Sub-module names (``layers.i.conv/norm/gate.fc``, ``concat.conv/norm``, ``ese.fc``) are chosen so that
:func:`ferlib.models._amp_net_keys.map_ampnet_official_key` maps the public checkpoint one to one.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class GateLayer(nn.Module):
    """Eq. 1: ``x * sigmoid(FC(GAP(x)))``; one gate per sample (``"scalar"``) or per channel."""

    def __init__(self, channels: int, width: str = "scalar"):
        super().__init__()
        if width not in ("scalar", "channel"):
            raise ValueError(f"GateLayer width must be 'scalar' or 'channel', got {width!r}")
        self.fc = nn.Linear(channels, 1 if width == "scalar" else channels)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The gate values, B×1 or B×C."""
        return torch.sigmoid(self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)[:, :, None, None]


class EffectiveSE(nn.Module):
    """eSE: ``x * hardsigmoid(conv1×1(GAP(x)))`` (one FC, no channel reduction)."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.hardsigmoid(self.fc(F.adaptive_avg_pool2d(x, 1)))


class ConvNormGate(nn.Module):
    """3×3 conv → BN → gate (Eq. 1; omitted in a plain OSA block) → ReLU."""

    def __init__(self, cin: int, cout: int, gate: bool = True, gate_width: str = "scalar"):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(cout)
        self.gate = GateLayer(cout, gate_width) if gate else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        if self.gate is not None:
            x = self.gate(x)
        return self.relu(x)


class ConvNormReLU1x1(nn.Module):
    """1×1 conv → BN → ReLU: the OSA aggregation (dimension reduction ``C2 → C3``)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.norm = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.norm(self.conv(x)))


class OSABlock(nn.Module):
    """(Gate-)OSA block (amp-net.txt §III-B, Fig. 3(a)).

    ``in_ch`` → ``n_layers`` × (3×3 conv, ``stage_ch`` = C1, gate) in series; concat of the input and
    all layer outputs (``C2 = in_ch + n·C1``); 1×1 reduction to ``concat_ch`` = C3; eSE.

    ``residual``: the paper adds the block input "through the down sample layer". The public code
    builds every GP block with ``identity=False`` (input and output widths always differ), so no
    shortcut exists in the published model; ``residual=True`` adds the paper's projected shortcut
    (1×1 conv + BN, ``in_ch → C3``). ``dropout`` is the public code's ``Dropout2d(0.5)`` after the
    block (not in the paper; 0 disables it).
    """

    def __init__(
        self,
        in_ch: int,
        stage_ch: int,
        concat_ch: int,
        n_layers: int = 3,
        *,
        gate: bool = True,
        gate_width: str = "scalar",
        residual: bool = False,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            ConvNormGate(in_ch if i == 0 else stage_ch, stage_ch, gate, gate_width) for i in range(n_layers)
        )
        self.concat = ConvNormReLU1x1(in_ch + n_layers * stage_ch, concat_ch)
        self.ese = EffectiveSE(concat_ch)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(in_ch, concat_ch, 1, bias=False), nn.BatchNorm2d(concat_ch)) if residual else None
        )
        self.drop = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x]
        y = x
        for layer in self.layers:
            y = layer(y)
            outputs.append(y)
        out = self.ese(self.concat(torch.cat(outputs, dim=1)))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.drop(out)
