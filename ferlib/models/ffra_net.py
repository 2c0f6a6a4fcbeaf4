"""FFRA-Net: feature fusion residual attention network for occluded FER (ffra-net.txt §3).

Chen, Liu, Zhao & Ji, "Occlusion facial expression recognition based on feature fusion residual
attention network", Frontiers in Neurorobotics 17:1250706, 2023.

Pipeline (§3, Fig. 2): pre-extractor (ResNet-18 stages) → X; two branches on X, the multi-scale
module (§3.1, Eq. 1) → Y_ms and the local attention module (§3.2, Eqs. 2–4) → Y_la; fusion with a
residual link, ``Y = λ·Y_la + (1−λ)·Y_ms + X`` with λ = 0.6 (§3.3, Eq. 5); then ResNet-18's last
convolutional stage, GAP and the FC classifier. Loss: cross-entropy.

Where the pre-extractor ends. §3 says the pre-extractor is "the first three convolutional stages of
ResNet-18" and that the fused map then "proceeds to the last convolutional stage". Counting
He et al.'s stages conv1, conv2_x, conv3_x gives 128×28×28, which conv5_x (``layer4``, 256 input
channels) cannot take; counting the three *residual* stages layer1–layer3 after the stem gives
256×14×14, which ``layer4`` takes as is. ferlib's default (``split="layer3"``) is this second
reading: pre-extractor = stem + layer1 + layer2 + layer3 → 256×14×14, both modules at 256
channels on 14×14, last stage = ``layer4`` → 512×7×7. The other reading is available as
``split="layer2"``: pre-extractor = stem + layer1 + layer2 → 128×28×28, modules at 128 channels,
and the "last stage" is then ``layer3`` + ``layer4`` (all the remaining ResNet-18 stages).

Module details the paper leaves open, and ferlib's choices:

* Every P_i (Eq. 1 and Eq. 4) is its own 3×3 convolution + BatchNorm + ReLU (Res2Net style); the
  local P_i^la is followed by shuffle attention (G = 8, :class:`~ferlib.models.blocks.ShuffleAttention`).
* The spatial split into m = 4 local maps is a 2×2 grid of quadrants (``local_grid=(2, 2)``,
  7×7 each on the 14×14 map), processed in raster order (top-left, top-right, bottom-left,
  bottom-right) by the cascade of Eq. 4 and put back at their places; ``local_grid=(4, 1)``
  (horizontal bands) is selectable when the map height divides by 4.
* Fusion variants (Table 1): ``"weighted"`` (Eq. 5), ``"add"`` (``Y_la + Y_ms + X``) and
  ``"concat"`` ("concatenating two feature maps along the channel dimension and subsequently
  fusing … through convolution": 1×1 conv 2C → C + BatchNorm, then ``+ X``).
* Module ablations (Table 2): ``multi_scale=False`` / ``local_attention=False``. With one module
  left, ``Y = Y_module + X`` (a fusion weight needs two inputs); with neither, ``Y = X`` and the
  network is the plain ResNet-18 baseline.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn

from ferlib.models._attention import ffra_net_attention
from ferlib.models._base import FERModel
from ferlib.models._card import AblationGrid, Citation, Claims, PaperCard, ReportedResult, ablation_rows
from ferlib.models._weight_layouts import resnet_stage_map
from ferlib.models.baselines import resnet_stages
from ferlib.models.blocks import ShuffleAttention, conv_norm_act
from ferlib.models.output import ModelOutput
from ferlib.models.registry import register_model

FFRA_FUSIONS = ("weighted", "add", "concat")
FFRA_SPLITS = ("layer3", "layer2")


def conv3x3_bn_relu(cin: int, cout: int) -> nn.Sequential:
    """3×3 conv (padding 1, no bias) → BatchNorm → ReLU (:func:`~ferlib.models.blocks.conv_norm_act`)."""
    return conv_norm_act(cin, cout, 3)


class MultiScaleModule(nn.Module):
    """Channel split into ``n`` subsets with a one-directional cascade (ffra-net.txt Eq. 1).

    ``Y_1 = P_1(X_1)``, ``Y_i = P_i(X_i + Y_{i−1})``; the outputs are concatenated along channels.
    """

    def __init__(self, channels: int, n: int = 4):
        super().__init__()
        if channels % n:
            raise ValueError(f"MultiScaleModule: channels ({channels}) must divide by n ({n})")
        self.n = n
        self.convs = nn.ModuleList(conv3x3_bn_relu(channels // n, channels // n) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        previous = None
        for x_i, conv in zip(x.chunk(self.n, dim=1), self.convs):
            previous = conv(x_i if previous is None else x_i + previous)
            outputs.append(previous)
        return torch.cat(outputs, dim=1)


class LocalAttentionModule(nn.Module):
    """3×3 conv, spatial split into m local maps, cascaded conv + shuffle attention (Eqs. 2–4).

    ``S = conv(X)``; ``S`` is cut into a ``grid`` of rows × columns local maps ``S_i`` (m = rows·cols);
    ``Y_1 = P_1(S_1)``, ``Y_i = P_i(S_i + Y_{i−1})`` with ``P_i`` = 3×3 conv + BN + ReLU +
    shuffle attention (G groups); the ``Y_i`` are re-assembled at the places of their ``S_i``.
    """

    def __init__(self, channels: int, grid: tuple[int, int] = (2, 2), groups: int = 8):
        super().__init__()
        self.grid = (int(grid[0]), int(grid[1]))
        self.conv = conv3x3_bn_relu(channels, channels)
        m = self.grid[0] * self.grid[1]
        self.parts = nn.ModuleList(
            nn.Sequential(conv3x3_bn_relu(channels, channels), ShuffleAttention(channels, groups=groups))
            for _ in range(m)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.conv(x)
        rows, cols = self.grid
        h, w = s.shape[-2:]
        if h % rows or w % cols:
            raise ValueError(
                f"FFRA-Net local attention: a {h}×{w} map cannot be split into a {rows}×{cols} grid; "
                "choose local_grid dividing the map (2×2 at 14×14 by default)"
            )
        bands = s.chunk(rows, dim=2)
        pieces = [piece for band in bands for piece in band.chunk(cols, dim=3)]  # raster order
        outputs = []
        previous = None
        for s_i, part in zip(pieces, self.parts):
            previous = part(s_i if previous is None else s_i + previous)
            outputs.append(previous)
        return torch.cat([torch.cat(outputs[r * cols : (r + 1) * cols], dim=3) for r in range(rows)], dim=2)


class FeatureFusion(nn.Module):
    """Fusion with the residual link (Eq. 5 and the Table 1 variants).

    ``forward(x, y_ms, y_la)``; a missing branch is ``None``.
    """

    def __init__(self, channels: int, mode: str = "weighted", lam: float = 0.6):
        super().__init__()
        if mode not in FFRA_FUSIONS:
            raise ValueError(f"FFRA-Net: fusion must be one of {FFRA_FUSIONS} (ffra-net.txt Table 1), got {mode!r}")
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"FFRA-Net: lam is the local-attention weight of Eq. 5 and must lie in [0, 1], got {lam}")
        self.mode = mode
        self.lam = float(lam)
        self.reduce = conv_norm_act(2 * channels, channels, 1, act=False) if mode == "concat" else None

    def forward(self, x: torch.Tensor, y_ms: torch.Tensor | None, y_la: torch.Tensor | None) -> torch.Tensor:
        if y_ms is None and y_la is None:
            return x
        if y_ms is None or y_la is None:
            return x + (y_ms if y_la is None else y_la)
        if self.mode == "weighted":
            return self.lam * y_la + (1.0 - self.lam) * y_ms + x  # Eq. 5
        if self.mode == "add":
            return y_la + y_ms + x
        return self.reduce(torch.cat([y_la, y_ms], dim=1)) + x


class FFRANet(FERModel):
    """FFRA-Net (ffra-net.txt §3); see the module docstring for the reading of the pre-extractor.
    The loss is the default cross-entropy (the paper trains with a plain classification loss)."""

    card_name = "ffra-net"

    def __init__(
        self,
        num_classes: int = 7,
        fusion: str = "weighted",
        lam: float = 0.6,
        multi_scale: bool = True,
        local_attention: bool = True,
        split: str = "layer3",
        n_scales: int = 4,
        local_grid: tuple[int, int] = (2, 2),
        sa_groups: int = 8,
    ):
        super().__init__()
        if split not in FFRA_SPLITS:
            raise ValueError(
                f"FFRA-Net: split must be one of {FFRA_SPLITS} (where the pre-extractor ends), got {split!r}"
            )
        stages = resnet_stages(18)
        if split == "layer3":
            pre = ("stem", "layer1", "layer2", "layer3")
            last = ("layer4",)
            channels = 256
        else:
            pre = ("stem", "layer1", "layer2")
            last = ("layer3", "layer4")
            channels = 128
        self.split = split
        self.pre_extractor = nn.Sequential(OrderedDict((k, stages[k]) for k in pre))
        self.multi_scale = MultiScaleModule(channels, n_scales) if multi_scale else None
        self.local_attention = LocalAttentionModule(channels, local_grid, sa_groups) if local_attention else None
        self.fusion = FeatureFusion(channels, fusion, lam)
        self.last_stage = nn.Sequential(OrderedDict((k, stages[k]) for k in last))
        self.fc = nn.Linear(512, num_classes)

    def forward(
        self, images: torch.Tensor, landmarks5: torch.Tensor | None = None, landmarks8: torch.Tensor | None = None
    ) -> ModelOutput:
        x = self.pre_extractor(images)
        y_ms = self.multi_scale(x) if self.multi_scale is not None else None
        y_la = self.local_attention(x) if self.local_attention is not None else None
        y = self.fusion(x, y_ms, y_la)
        z = self.last_stage(y)
        logits = self.fc(z.mean(dim=(2, 3)))
        return ModelOutput(logits=logits)

    @property
    def torchvision_stages(self) -> dict[str, str | None]:
        """Outside weights (``load_checkpoint(source="torchvision")``): a ResNet-18 fills the
        pre-extractor (stem and the stages up to ``split``) and the last stage(s) after the fusion;
        the multi-scale and local attention modules and the classifier start fresh."""
        paths: dict[str, str | None] = {"conv1": "pre_extractor.stem.conv1", "bn1": "pre_extractor.stem.bn1"}
        for stage in ("layer1", "layer2", "layer3", "layer4"):
            part = "pre_extractor" if stage in self.pre_extractor._modules else "last_stage"
            paths[stage] = f"{part}.{stage}"
        return resnet_stage_map(paths)

    def cam_targets(self) -> dict[str, nn.Module]:
        """``pre_extractor``: X (what a plain ResNet sees at this depth); ``fused``: Y of Eq. 5
        (the "feature fusion" CAM row of Fig. 6); ``last_stage``: ResNet-18's last stage on Y, the
        layer a Grad-CAM of the whole network would use; plus each module's output when present."""
        targets: dict[str, nn.Module] = {
            "pre_extractor": self.pre_extractor,
            "fused": self.fusion,
            "last_stage": self.last_stage,
        }
        if self.multi_scale is not None:
            targets["multi_scale"] = self.multi_scale
        if self.local_attention is not None:
            targets["local_attention"] = self.local_attention
        return targets

    def parts(self) -> dict[str, nn.Module]:
        parts: dict[str, nn.Module] = {"pre_extractor": self.pre_extractor}
        if self.multi_scale is not None:
            parts["multi_scale"] = self.multi_scale
        if self.local_attention is not None:
            parts["local_attention"] = self.local_attention
        if self.fusion.reduce is not None:
            parts["fusion"] = self.fusion
        parts["last_stage"] = self.last_stage
        parts["head"] = self.fc
        return parts


FFRA_NET_CARD = PaperCard(
    attention=ffra_net_attention,  # the network's own attention maps (_attention.py)
    citation=Citation(
        ("Y. Chen", "S. Liu", "D. Zhao", "W. Ji"),
        "Occlusion facial expression recognition based on feature fusion residual attention network",
        "Front. Neurorobot.",
        2023,
        "10.3389/fnbot.2023.1250706",
        "ffra-net.txt",
    ),
    claims=Claims(
        ferlib_params_7cls=14_280_135,
        notes=("ffra-net.txt reports no parameter count",),
        facts={
            "lambda_default": 0.6,
            "table2_fm_sg_rafdb_acc": {
                "neither": (75.98, 77.44),
                "multi_scale": (76.86, 78.62),
                "local_attention": (77.74, 79.37),
                "both": (77.87, 79.50),
            },
        },
    ),
    results=(
        ReportedResult("RAF-DB", 88.66, "ffra-net.txt Table 5"),
        ReportedResult("FERPlus", 88.97, "ffra-net.txt Table 5"),
        ReportedResult("FM_RAF-DB", 77.87, "ffra-net.txt Table 4"),
        ReportedResult("SG_RAF-DB", 79.50, "ffra-net.txt Table 4"),
        ReportedResult("RAF-DB (random occlusion)", 86.43, "ffra-net.txt Table 3"),
    ),
    recipe="ffra-net",
    ablations=(
        AblationGrid(
            "ffra-net-fusion",
            "ffra-net",
            "ffra-net.txt Table 1",
            "SG_RAF-DB (sunglasses)",
            ablation_rows(
                ("weighted (FFRA-Net)", {"fusion": "weighted"}, 79.50),
                ("add", {"fusion": "add"}, 77.87),
                ("concat", {"fusion": "concat"}, 76.69),
            ),
        ),
        AblationGrid(
            "ffra-net-modules",
            "ffra-net",
            "ffra-net.txt Table 2",
            "SG_RAF-DB (sunglasses)",
            ablation_rows(
                ("multi-scale + local attention", {"multi_scale": True, "local_attention": True}, 79.50),
                ("neither (baseline)", {"multi_scale": False, "local_attention": False}, 77.44),
                ("multi-scale only", {"multi_scale": True, "local_attention": False}, 78.62),
                ("local attention only", {"multi_scale": False, "local_attention": True}, 79.37),
            ),
        ),
        AblationGrid(
            "ffra-net-lambda",
            "ffra-net",
            "ffra-net.txt §4.3 (λ = 0.6 used)",
            "SG_RAF-DB",
            ablation_rows(
                ("λ = 0.6 (FFRA-Net)", {"lam": 0.6}, 79.50),
                ("λ = 0.3", {"lam": 0.3}, None),
                ("λ = 0.9", {"lam": 0.9}, None),
            ),
        ),
    ),
    primary_cam_target="last_stage",
)


@register_model(
    "ffra-net",
    paper="Chen et al., feature fusion residual attention network for occluded FER (ffra-net.txt, §3)",
    card=FFRA_NET_CARD,
)
def ffra_net(
    num_classes: int = 7,
    fusion: str = "weighted",
    lam: float = 0.6,
    multi_scale: bool = True,
    local_attention: bool = True,
    split: str = "layer3",
    n_scales: int = 4,
    local_grid: tuple[int, int] = (2, 2),
    sa_groups: int = 8,
) -> FFRANet:
    """FFRA-Net (ffra-net.txt): ResNet-18 + multi-scale + local attention, weighted fusion λ=0.6."""
    return FFRANet(
        num_classes,
        fusion=fusion,
        lam=lam,
        multi_scale=multi_scale,
        local_attention=local_attention,
        split=split,
        n_scales=n_scales,
        local_grid=local_grid,
        sa_groups=sa_groups,
    )
