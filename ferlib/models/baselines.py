"""Plain backbones the papers compare against, and the torchvision stage slices the networks reuse.

Registered baselines (all ``weights=None``: nothing downloads; load outside weights explicitly):

* ``resnet18`` / ``resnet34`` — torchvision ResNet with a ``num_classes`` head. ResNet-18 is the
  baseline of LAN (lan.txt Table 5, "Resnet-18"), FFRA-Net (ffra-net.txt Table 2, first row;
  Table 3, "Baseline") and MA-Net; ResNet-34 is AMP-Net's backbone family.
* ``vgg16`` — VGG16 fine-tuning baseline of the Multiple Attention Network (man.txt §IV-C,
  Tables 3 and 5): five conv blocks and three FC layers (dropout 0.5), the last FC resized to the
  class count.
* ``vgg16-se`` — the same with one SE block between conv blocks 4 and 5 (man.txt §IV-C, "VGG+SE").

Helpers shared with the paper networks (LAN, FFRA-Net, MAN build on these slices instead of
re-writing the backbones):

* :func:`resnet_stages` — a torchvision ResNet cut into ``stem``/``layer1``…``layer4``, keeping
  torchvision's sub-module names inside each stage.
* :func:`vgg16_stages` — torchvision VGG16 cut between conv block 4 (after ``pool4``,
  ``features[:24]``, 512×14×14 at 224 px) and conv block 5 (``features[24:]``).
* :func:`cross_entropy_loss` — the plain classification loss (an alias of
  :func:`ferlib.models.losses.cross_entropy`, the :class:`~ferlib.models.FERModel` default).

Module names keep torchvision's so that outside weights map with a prefix only:
ResNet ``conv1/bn1/layer1…layer4/fc`` stay as they are; VGG16 ``features.k`` maps to
``blocks1_4.k`` for ``k < 24`` and ``block5.(k-24)`` for ``k ≥ 24``; ``classifier.k`` keeps its name.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from ferlib.models._base import FERModel
from ferlib.models._card import Citation, Claims, PaperCard, ReportedResult
from ferlib.models._weight_layouts import resnet_stage_map, vgg16_stage_map
from ferlib.models.blocks import SEModule
from ferlib.models.losses import cross_entropy
from ferlib.models.output import ModelOutput
from ferlib.models.registry import register_model

#: Index in torchvision's ``vgg16().features`` where conv block 5 starts (after pool4).
VGG16_BLOCK5_START = 24
#: Index of the ReLU after conv5_3 inside ``block5`` (torchvision ``features[29]``): the last
#: conv activation, the usual (guided) Grad-CAM target for VGG.
VGG16_CONV5_3_RELU = 29 - VGG16_BLOCK5_START


#: The plain classification loss (kept under its old name; see :mod:`ferlib.models.losses`).
cross_entropy_loss = cross_entropy


def resnet_stages(depth: int = 18) -> OrderedDict[str, nn.Module]:
    """torchvision ResNet-``depth`` (``weights=None``) as ordered stages.

    Returns ``stem`` (``conv1``, ``bn1``, ``relu``, ``maxpool``: 64×56×56 at 224 px), ``layer1``
    (64×56×56), ``layer2`` (128×28×28), ``layer3`` (256×14×14) and ``layer4`` (512×7×7).
    """
    builders = {18: torchvision.models.resnet18, 34: torchvision.models.resnet34}
    if depth not in builders:
        raise ValueError(f"resnet_stages: depth must be one of {sorted(builders)}, got {depth}")
    net = builders[depth](weights=None)
    stem = nn.Sequential(OrderedDict(conv1=net.conv1, bn1=net.bn1, relu=net.relu, maxpool=net.maxpool))
    return OrderedDict(stem=stem, layer1=net.layer1, layer2=net.layer2, layer3=net.layer3, layer4=net.layer4)


def vgg16_stages() -> tuple[nn.Sequential, nn.Sequential, nn.Module, nn.Sequential]:
    """torchvision VGG16 (``weights=None``) as ``(blocks1_4, block5, avgpool, classifier)``.

    ``blocks1_4`` ends with pool4 (512×14×14 at 224 px, stride 16), ``block5`` is conv5_1–conv5_3
    and pool5 (512×7×7), ``classifier`` the three FC layers with ReLU and dropout 0.5 whose last
    layer still has 1000 outputs (callers replace it).
    """
    net = torchvision.models.vgg16(weights=None)
    blocks1_4 = nn.Sequential(*list(net.features.children())[:VGG16_BLOCK5_START])
    block5 = nn.Sequential(*list(net.features.children())[VGG16_BLOCK5_START:])
    return blocks1_4, block5, net.avgpool, net.classifier


class ResNetClassifier(FERModel):
    """torchvision ResNet-18/34 with a ``num_classes`` FC head; CE loss."""

    def __init__(self, num_classes: int = 7, depth: int = 18):
        super().__init__()
        stages = resnet_stages(depth)
        # torchvision names at the top level, so torchvision/face-recognition weights load as they are.
        self.conv1 = stages["stem"].conv1
        self.bn1 = stages["stem"].bn1
        self.relu = stages["stem"].relu
        self.maxpool = stages["stem"].maxpool
        self.layer1, self.layer2 = stages["layer1"], stages["layer2"]
        self.layer3, self.layer4 = stages["layer3"], stages["layer4"]
        self.fc = nn.Linear(512, num_classes)

    def forward(
        self, images: torch.Tensor, landmarks5: torch.Tensor | None = None, landmarks8: torch.Tensor | None = None
    ) -> ModelOutput:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        logits = self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
        return ModelOutput(logits=logits)

    @property
    def torchvision_stages(self) -> dict[str, str | None]:
        """Outside weights (``source="torchvision"``): the whole ResNet; ``fc`` is the head (loaded
        when its class count is the model's, skipped as an identity head otherwise)."""
        return resnet_stage_map({name: name for name in ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")}, "fc")

    def cam_targets(self) -> dict[str, nn.Module]:
        return {"layer4": self.layer4}

    def parts(self) -> dict[str, nn.Module]:
        return {
            "stem": nn.ModuleList([self.conv1, self.bn1]),
            "layer1": self.layer1,
            "layer2": self.layer2,
            "layer3": self.layer3,
            "layer4": self.layer4,
            "head": self.fc,
        }


class VGG16Classifier(FERModel):
    """VGG16 with the last FC resized to ``num_classes`` (man.txt §III, "backbone"); optional SE.

    ``se=True`` inserts :class:`~ferlib.models.blocks.SEModule` (reduction 16) on the 512×14×14
    map between conv blocks 4 and 5: the "VGG+SE" baseline of man.txt §IV-C.
    """

    def __init__(self, num_classes: int = 7, se: bool = False, se_reduction: int = 16):
        super().__init__()
        self.blocks1_4, self.block5, self.avgpool, self.classifier = vgg16_stages()
        self.classifier[6] = nn.Linear(4096, num_classes)
        self.se = SEModule(512, reduction=se_reduction) if se else nn.Identity()

    def forward(
        self, images: torch.Tensor, landmarks5: torch.Tensor | None = None, landmarks8: torch.Tensor | None = None
    ) -> ModelOutput:
        x = self.block5(self.se(self.blocks1_4(images)))
        logits = self.classifier(torch.flatten(self.avgpool(x), 1))
        return ModelOutput(logits=logits)

    @property
    def torchvision_stages(self) -> dict[str, str | None]:
        """Outside weights (``source="torchvision"`` VGG16 or ``"vgg-face"``): the 13 convolutions and
        fc6/fc7 — man.txt §IV-C's baselines are "initialized with VGG-Face" as a whole ("VGG
        fine-tuning"); fc8 is the head (an identity head of another class count is skipped). The SE
        block of ``vgg16-se`` starts fresh."""
        return vgg16_stage_map("blocks1_4", "block5", classifier="classifier", head="classifier.6")

    def cam_targets(self) -> dict[str, nn.Module]:
        targets = {"conv5_3": self.block5[VGG16_CONV5_3_RELU]}
        if isinstance(self.se, SEModule):
            targets["se"] = self.se
        return targets

    def parts(self) -> dict[str, nn.Module]:
        parts = {"blocks1_4": self.blocks1_4, "block5": self.block5, "classifier": self.classifier}
        if isinstance(self.se, SEModule):
            parts["se"] = self.se
        return parts


_NO_PARAM_CLAIM = "the citing papers report accuracy only, no parameter count"

RESNET = Citation(
    ("Kaiming He", "Xiangyu Zhang", "Shaoqing Ren", "Jian Sun"),
    "Deep residual learning for image recognition",
    "CVPR",
    2016,
    "10.1109/CVPR.2016.90",
)
VGG = Citation(
    ("Karen Simonyan", "Andrew Zisserman"),
    "Very deep convolutional networks for large-scale image recognition",
    "ICLR",
    2015,
)

VGG16_CARD = PaperCard(
    citation=VGG,
    claims=Claims(ferlib_params_7cls=134_289_223, notes=(_NO_PARAM_CLAIM,)),
    results=(
        ReportedResult("RAF-DB", 83.89, "man.txt Table 3, VGG fine-tuning", "VGG-Face"),
        ReportedResult("RAF-DB (from scratch)", 73.63, "man.txt Table 3", "none"),
        ReportedResult("CK+", 92.27, "man.txt Table 5", "VGG-Face"),
    ),
    primary_cam_target="conv5_3",
)
VGG16_SE_CARD = PaperCard(
    citation=VGG,
    claims=Claims(ferlib_params_7cls=134_322_535, notes=(_NO_PARAM_CLAIM,)),
    results=(
        ReportedResult("RAF-DB", 83.28, "man.txt Table 3, VGG+SE", "VGG-Face"),
        ReportedResult("RAF-DB (from scratch)", 73.27, "man.txt Table 3", "none"),
        ReportedResult("CK+", 93.11, "man.txt Table 5", "VGG-Face"),
    ),
    primary_cam_target="conv5_3",
)
RESNET18_CARD = PaperCard(
    citation=RESNET,
    claims=Claims(ferlib_params_7cls=11_180_103, notes=(_NO_PARAM_CLAIM,)),
    results=(
        ReportedResult("Pose-RAF-DB (>30°)", 84.04, "lan.txt Table 5, Resnet-18"),
        ReportedResult("FM_RAF-DB", 75.98, "ffra-net.txt Table 2, baseline"),
        ReportedResult("SG_RAF-DB", 77.44, "ffra-net.txt Table 2, baseline"),
    ),
    primary_cam_target="layer4",
    note="plain baseline (no paper number)",
)
RESNET34_CARD = PaperCard(
    citation=RESNET,
    claims=Claims(ferlib_params_7cls=21_288_263, notes=(_NO_PARAM_CLAIM,)),
    primary_cam_target="layer4",
)


# Registered VGG first: ``paper_results()`` lists the baselines in this order.
@register_model(
    "vgg16",
    paper="Simonyan & Zisserman 2015; 'VGG fine-tuning' baseline of man.txt Tables 3 and 5",
    card=VGG16_CARD,
)
def vgg16(num_classes: int = 7) -> VGG16Classifier:
    """VGG16 (torchvision, weights=None), three FC layers with dropout 0.5, last FC = classes."""
    return VGG16Classifier(num_classes, se=False)


@register_model(
    "vgg16-se",
    paper="man.txt §IV-C 'VGG+SE': SE block between conv blocks 4 and 5 of VGG16",
    card=VGG16_SE_CARD,
)
def vgg16_se(num_classes: int = 7, se_reduction: int = 16) -> VGG16Classifier:
    """VGG16 with an SE block (reduction 16) on the 512×14×14 map between conv blocks 4 and 5."""
    return VGG16Classifier(num_classes, se=True, se_reduction=se_reduction)


@register_model(
    "resnet18",
    paper="He et al., CVPR 2016 (baseline in lan.txt, ffra-net.txt, ma-net.txt)",
    card=RESNET18_CARD,
)
def resnet18(num_classes: int = 7) -> ResNetClassifier:
    """ResNet-18 (torchvision, weights=None) with a ``num_classes`` head."""
    return ResNetClassifier(num_classes, depth=18)


@register_model(
    "resnet34",
    paper="He et al., CVPR 2016 (AMP-Net's backbone family)",
    card=RESNET34_CARD,
)
def resnet34(num_classes: int = 7) -> ResNetClassifier:
    """ResNet-34 (torchvision, weights=None) with a ``num_classes`` head."""
    return ResNetClassifier(num_classes, depth=34)
