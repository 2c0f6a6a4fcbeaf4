"""LAN: local attention network learned with a guidance map, for pose-robust FER (lan.txt §III).

Cho & Lee, "Learning local attention with guidance map for pose robust facial expression
recognition", IEEE Access 2022.

Architecture (lan.txt §III-B, Fig. 2):

* **Backbone** — ResNet-18 (torchvision stages, ``weights=None``) up to conv5_x (``layer4``):
  ``F_o`` is 512×7×7 at 224 px (lan.txt §IV-B: "the input to our LAN is extracted from the layer
  before (Conv5_x) the last pooling layer").
* **LAN module** — "four 3×3 convolutional layers followed by a sigmoid layer" → ``F_m`` 1×7×7.
  The paper does not give the intermediate widths; ferlib halves the width at each layer,
  512 → 256 → 128 → 64 → 1, with BatchNorm + ReLU after the first three convolutions (padding 1,
  so the map stays 7×7) and a bias on the last one, whose output goes through the sigmoid.
* ``F_a = F_o ⊙ F_m`` (Eq. 1, the map broadcast over channels); ``f_o = GAP(F_o)``,
  ``f_a = GAP(F_a)``; ``f = f_o ⊕ f_a`` (Eq. 2) → FC → logits.

Fusion variants (Table 6): ``fusion="add"`` (Eq. 2 and the paper's best, 60.88 % on AffectNet;
Fig. 2's caption says "concatenation", but Eq. 2, §IV-F-2 and Table 6 all make addition the method),
``"concat"`` ([f_o, f_a], 1024-d, 60.20 %) and ``"average"`` ((f_o + f_a)/2, 59.40 %).

Controls (like-for-like, same backbone, schedule and head; ``docs/training.md``): ``alpha=0`` keeps
the attention branch but drops the guidance loss (recipe ``lan-alpha0``); ``attention=False``
removes the attention branch altogether, ``f = f_o`` (a ResNet-18 with LAN's head and schedule;
recipe ``lan-no-attention``).

Loss (Eqs. 5–6): ``L = L_CE + α · BCE(F'_m, F_m)`` with α = 0.5 ("ratio of the two losses … 2:1",
§IV-B), where ``F_m`` is the attention guidance map of §III-C (``batch["guidance"]``, B×7×7 of 0/1)
and ``F'_m`` the predicted map. Guidance maps are made by :mod:`ferlib.train.guidance`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ferlib.models._attention import lan_attention
from ferlib.models._base import FERModel
from ferlib.models._card import AblationGrid, Citation, Claims, PaperCard, ReportedResult, ablation_rows
from ferlib.models._weight_layouts import resnet_stage_map
from ferlib.models.baselines import resnet_stages
from ferlib.models.blocks import conv_norm_act
from ferlib.models.losses import cross_entropy
from ferlib.models.output import ModelOutput
from ferlib.models.registry import register_model

LAN_FUSIONS = ("add", "concat", "average")


def binary_cross_entropy_map(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel BCE (lan.txt Eq. 6), mean over all elements; ``prediction`` is a probability.

    Same value as ``F.binary_cross_entropy`` (logs clamped at -100), written out so that it also
    runs inside CUDA autocast, where ``F.binary_cross_entropy`` refuses to.
    """
    p = prediction.float()
    t = target.float()
    log_p = torch.clamp(torch.log(p), min=-100.0)
    log_1mp = torch.clamp(torch.log1p(-p), min=-100.0)
    return -(t * log_p + (1 - t) * log_1mp).mean()


class LocalAttentionModule(nn.Module):
    """Four 3×3 convolutions and a sigmoid: C×H×W features → 1×H×W attention map (§III-B).

    ``widths`` are the outputs of the first three convolutions (the fourth outputs 1 channel).
    """

    def __init__(self, in_channels: int = 512, widths: tuple[int, int, int] = (256, 128, 64)):
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"LocalAttentionModule: widths must list 3 widths (4 convs, the last → 1), got {widths}")
        layers: list[nn.Module] = []
        cin = in_channels
        for width in widths:
            layers += list(conv_norm_act(cin, width))
            cin = width
        layers += [nn.Conv2d(cin, 1, 3, padding=1, bias=True)]
        self.convs = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.convs(features))


class LAN(FERModel):
    """ResNet-18 conv5_x features, LAN attention map, global + local feature fusion, FC (§III-B).

    ``aux["attention_map"]`` is ``F_m`` (B×7×7, in (0, 1)); ``aux["features"]`` is ``F_o``
    (B×512×7×7), which :func:`ferlib.train.guidance.guidance_maps` can turn into guidance maps.
    """

    card_name = "lan"

    def __init__(
        self,
        num_classes: int = 7,
        fusion: str = "add",
        alpha: float = 0.5,
        lan_widths: tuple[int, int, int] = (256, 128, 64),
        attention: bool = True,
    ):
        super().__init__()
        if fusion not in LAN_FUSIONS:
            raise ValueError(f"LAN: fusion must be one of {LAN_FUSIONS} (lan.txt Table 6), got {fusion!r}")
        if alpha < 0:
            raise ValueError(f"LAN: alpha weighs the guidance BCE loss (Eq. 5) and must be ≥ 0, got {alpha}")
        if not attention and fusion != "add":
            raise ValueError(
                f"LAN: attention=False (no attention branch, f = f_o) has no {fusion!r} fusion; "
                "leave fusion='add' for this control"
            )
        self.fusion = fusion
        self.alpha = float(alpha)
        stages = resnet_stages(18)
        self.backbone = nn.Sequential(stages)
        self.lan_module = LocalAttentionModule(512, tuple(lan_widths)) if attention else None
        self.fc = nn.Linear(1024 if fusion == "concat" else 512, num_classes)

    def forward(
        self, images: torch.Tensor, landmarks5: torch.Tensor | None = None, landmarks8: torch.Tensor | None = None
    ) -> ModelOutput:
        f_map = self.backbone(images)  # F_o
        if self.lan_module is None:  # the control without the attention branch: f = f_o
            logits = self.fc(f_map.mean(dim=(2, 3)))
            return ModelOutput(logits=logits, aux={"features": f_map})
        attention = self.lan_module(f_map)  # F_m, B×1×H×W
        attended = f_map * attention  # Eq. 1
        f_o = f_map.mean(dim=(2, 3))
        f_a = attended.mean(dim=(2, 3))
        if self.fusion == "add":
            f = f_o + f_a  # Eq. 2
        elif self.fusion == "concat":
            f = torch.cat([f_o, f_a], dim=1)
        else:
            f = 0.5 * (f_o + f_a)
        logits = self.fc(f)
        return ModelOutput(logits=logits, aux={"attention_map": attention[:, 0], "features": f_map})

    def loss(self, output: ModelOutput, batch: dict[str, Any]) -> torch.Tensor:
        """Eq. 5: ``CE(logits, label) + α · BCE(attention_map, batch["guidance"])``.

        The BCE (Eq. 6) is the mean over the B×7×7 positions. When ``batch`` has no ``"guidance"``
        (guidance maps not computed yet, e.g. during a warm-up before
        :func:`ferlib.train.guidance.fit_guidance`), the loss is the cross-entropy alone.
        """
        ce = cross_entropy(output, batch)
        guidance = batch.get("guidance")
        if guidance is None or self.alpha == 0 or self.lan_module is None:
            return ce
        attention = output.aux["attention_map"]
        guidance = guidance.to(device=attention.device, dtype=attention.dtype)
        if guidance.shape != attention.shape:
            raise ValueError(
                f"LAN.loss (ferlib/models/lan.py): batch['guidance'] has shape {tuple(guidance.shape)}, "
                f"expected {tuple(attention.shape)} like the attention map; make it with "
                "ferlib.train.guidance.guidance_maps on this backbone's 7×7 features"
            )
        return ce + self.alpha * binary_cross_entropy_map(attention, guidance)

    @property
    def torchvision_stages(self) -> dict[str, str | None]:
        """Outside weights (``load_checkpoint(source="torchvision")``): a ResNet-18 fills the whole
        backbone (stem, conv2_x … conv5_x); the LAN module and the classifier start fresh."""
        return resnet_stage_map(
            {"conv1": "backbone.stem.conv1", "bn1": "backbone.stem.bn1"}
            | {f"layer{i}": f"backbone.layer{i}" for i in range(1, 5)}
        )

    def cam_targets(self) -> dict[str, nn.Module]:
        # layer4 gives F_o (the CAM of the "input features" in Fig. 3); the LAN module's last conv
        # is where the attention map is made.
        targets = {"backbone": self.backbone.layer4}
        if self.lan_module is not None:
            targets["lan_module"] = self.lan_module
        return targets

    def parts(self) -> dict[str, nn.Module]:
        parts = {"backbone": self.backbone, "lan_module": self.lan_module, "head": self.fc}
        return {k: v for k, v in parts.items() if v is not None}


LAN_CARD = PaperCard(
    attention=lan_attention,  # the network's own attention maps (_attention.py)
    citation=Citation(
        ("Sunyoung Cho", "Jwajin Lee"),
        "Learning local attention with guidance map for pose robust facial expression recognition",
        "IEEE Access",
        2022,
        "10.1109/ACCESS.2022.3198658",
        "lan.txt",
    ),
    claims=Claims(
        ferlib_params_7cls=12_729_864,
        notes=("lan.txt reports no parameter count; ferlib's figure depends on the chosen LAN widths",),
        facts={"alpha_default": 0.5},
    ),
    results=(
        ReportedResult("RAF-DB", 87.09, "lan.txt Table 2"),
        ReportedResult("KDEF", 95.39, "lan.txt Table 1"),
        ReportedResult("FERPlus", 88.45, "lan.txt Table 3"),
        ReportedResult("AffectNet", 60.88, "lan.txt Table 4 (and Table 6, addition)"),
    ),
    recipe="lan",
    ablations=(
        AblationGrid(
            "lan-alpha",
            "lan",
            "lan.txt §IV (α = 0.5 used)",
            "—",
            ablation_rows(
                ("α = 0.5 (LAN)", {"alpha": 0.5}, None),
                ("α = 0 (no guidance)", {"alpha": 0.0}, None),
                ("α = 1", {"alpha": 1.0}, None),
            ),
        ),
        AblationGrid(
            "lan-fusion",
            "lan",
            "lan.txt Table 6",
            "AffectNet",
            ablation_rows(
                ("addition (LAN)", {"fusion": "add"}, 60.88),
                ("concatenation", {"fusion": "concat"}, 60.20),
                ("averaging", {"fusion": "average"}, 59.40),
            ),
        ),
    ),
    primary_cam_target="backbone",
)


@register_model(
    "lan",
    paper="Cho & Lee, local attention network with guidance map, pose-robust FER (lan.txt, §III)",
    card=LAN_CARD,
)
def lan(
    num_classes: int = 7,
    fusion: str = "add",
    alpha: float = 0.5,
    lan_widths: tuple[int, int, int] = (256, 128, 64),
    attention: bool = True,
) -> LAN:
    """LAN (lan.txt): ResNet-18 + local attention module; fusion add|concat|average; α for the BCE loss."""
    return LAN(num_classes, fusion=fusion, alpha=alpha, lan_widths=lan_widths, attention=attention)
