"""MA-Net: global multi-scale and local attention network (Zhao, Liu & Wang, IEEE TIP 2021; ``ma-net.txt``).

Layout (paper §III-A, Fig. 1) at 224×224 input:

* **Pre-extractor** — ResNet-18 ``conv1`` + ``layer1`` + ``layer2`` taken from torchvision
  (``weights=None``) → S ∈ 128×28×28 ("one 2D convolution layer and four basic blocks").
* **Global branch: multi-scale module** (§III-B) — four symmetric multi-scale blocks
  (:class:`MultiScaleBlock`, n = 4, Eqs. 1-3) in two stages 128→256 (stride 2) and 256→512
  (stride 2) → 512×7×7 → GAP → 512 → FC.
* **Local branch: local attention module** (§III-C) — S split 2×2 into four 14×14 maps
  (:func:`ma_net_regions`), each through its own two stages of attentive blocks
  (:func:`AttentiveBlock`: the shared :class:`~ferlib.models.blocks.CBAMBasicBlock`, Eq. 4)
  128→256 (stride 2) and 256→512
  (stride 1) → four 512×7×7 maps, tiled back to 512×14×14 → GAP → 512 → FC.
* **Decision-level fusion** (§III-D) — two cross-entropy losses (Eq. 5) combined as
  ``L = λ·L_local + (1−λ)·L_global`` with λ = 0.6 (Eq. 6, Fig. 6); at inference the logits are
  combined with the same weights, ``λ·z_local + (1−λ)·z_global`` (as the public training script
  does).

Module names follow the public checkpoint closely enough that
:func:`ferlib.models.checkpoints.load_checkpoint` maps it one to one (see
:func:`manet_official_key_map`). With 7-class heads the model has exactly 50,547,214 parameters
(the paper's "50.54 M"; BN running statistics are buffers and not counted) and about 3.65 GMACs
(the paper's "3.65 G FLOPs" are multiply-accumulates).

Ablation variants (keyword arguments of ``create_model("ma-net", ...)``):

* ``global_branch`` — ``"symmetric"`` (Eqs. 1-3, default), ``"res2net"`` (Res2Net's one-directional
  hierarchy, Table I "Baseline + Multi-scale"), ``"lts"`` (ResNet-18's last two stages, Tables
  I-II) or ``None`` (one-branch networks of Table I).
* ``local_branch`` — ``"attention"`` (default), ``"feature"`` (the same regions without CBAM:
  Table I "Local Feature"), ``"lts"`` (ResNet-18's last two stages on the whole map, Table II) or
  ``None``.
* ``split``/``overlap`` — region strategy of Table III: 1×1; 2×2 with overlap 0 (default) or 6;
  3×3 with overlap 1 or 7.
* ``fusion`` — ``"decision"`` (default) or ``"feature"`` (Table IV: the two 512-d vectors are
  concatenated and one FC classifies them).
* ``lam`` — λ of Eq. 6.

Table I's one-branch baseline is ``global_branch="lts", local_branch=None`` (plain ResNet-18);
Table II's two-branch baseline is ``global_branch="lts", local_branch="lts"``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from ferlib.models._attention import ma_net_attention
from ferlib.models._base import FERModel
from ferlib.models._card import (
    LANDMARK5_LABELS,
    AblationGrid,
    BoxLayer,
    CheckpointFormat,
    Citation,
    Claims,
    PaperCard,
    RegionPanel,
    RegionView,
    ReportedResult,
    ablation_rows,
)
from ferlib.models._ma_net_keys import manet_official_key_map
from ferlib.models._stacked import run_stacked, use_stacked
from ferlib.models.blocks import CBAMBasicBlock, conv_norm_act, downsample
from ferlib.models.losses import decision_fusion_logits, decision_fusion_loss
from ferlib.models.output import ModelOutput
from ferlib.models.registry import register_model

__all__ = [
    "AttentiveBlock",
    "MANet",
    "MultiScaleBlock",
    "ma_net_regions",
    "manet_official_key_map",
]

#: Region strategies evaluated in Table III (split, overlap) on the 28×28 map.
TABLE_III_STRATEGIES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 6), (3, 1), (3, 7))


def ma_net_regions(grid: int = 28, split: int = 2, overlap: int = 0) -> torch.Tensor:
    """Boxes of the local feature maps S_i on a ``grid``×``grid`` map (§III-C, Fig. 5, Table III).

    The map is cut into ``split``×``split`` equal square regions, neighbours sharing ``overlap``
    rows/columns: side ``s = (grid + (split−1)·overlap) / split`` and starts ``i·(s − overlap)``.
    On the 28×28 map: 1×1 → one 28-cell region; 2×2/overlap 0 → 14-cell regions at 0 and 14
    (the paper's setting); 2×2/overlap 6 → 17-cell regions at 0 and 11; 3×3/overlap 1 → 10-cell
    regions at 0, 9, 18; 3×3/overlap 7 → 14-cell regions at 0, 7, 14.

    Returns an int64 tensor ``split²×4`` of ``(x0, y0, x1, y1)`` in map cells (``x1``/``y1``
    exclusive), row-major (top-left first). Multiply by ``image_size / grid`` for pixels.
    """
    if split < 1 or overlap < 0:
        raise ValueError(f"ma_net_regions needs split >= 1 and overlap >= 0; got split={split}, overlap={overlap}")
    if split == 1 and overlap:
        raise ValueError("a 1×1 split has no neighbours to overlap; use overlap=0")
    total = grid + (split - 1) * overlap
    if total % split:
        raise ValueError(
            f"a {grid}×{grid} map cannot be cut into {split}×{split} equal regions with overlap {overlap} "
            f"(({grid} + {split - 1}·{overlap}) / {split} is not an integer); Table III uses "
            f"{', '.join(f'{s}×{s}/overlap {o}' for s, o in TABLE_III_STRATEGIES)} on the 28×28 map"
        )
    side = total // split
    if side <= overlap:
        raise ValueError(f"overlap {overlap} must be smaller than the region side {side}")
    return torch.tensor(_region_bounds(grid, split, overlap), dtype=torch.int64)


def _region_bounds(grid: int, split: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Plain-int boxes of :func:`ma_net_regions` (no tensors: static for torch.compile)."""
    side = (grid + (split - 1) * overlap) // split
    starts = [i * (side - overlap) for i in range(split)]
    return [(x0, y0, x0 + side, y0 + side) for y0 in starts for x0 in starts]


class MultiScaleBlock(nn.Module):
    """Multi-scale block of Fig. 2(b): a 3×3 convolution, then multi-scale 3×3 convolutions on n
    channel subsets, then the residual shortcut.

    ``X = ReLU(BN(conv3×3(x)))`` is split into n subsets X_i. With ``symmetric=True`` (MA-Net,
    Eqs. 1-3) a left-to-right cascade ``Y_i^left = P_i^left(X_i + Y_{i−1}^left)`` and a
    right-to-left cascade ``Y_i^right = P_i^right(X_i + Y_{i+1}^right)`` run side by side and
    ``Y_i = Y_i^left + Y_i^right``. With ``symmetric=False`` it is Res2Net's one-directional
    hierarchy (Gao et al. 2019) used for Table I's "Baseline + Multi-scale": ``Y_1 = X_1``,
    ``Y_i = P_i(X_i + Y_{i−1})``. The Y_i are concatenated, added to the (down-sampled) input and
    passed through ReLU. Each ``P`` is conv3×3 → BN; the cascaded input is rectified before the
    addition so every branch sees non-negative context, as in the basic block.

    ``left.{i}`` / ``right.{i}`` hold ``P_{i+1}^left`` / ``P_{i+1}^right`` (public names
    ``conv1_2_{i+1}``/``bn1_2_{i+1}`` and ``conv2_2_{i+1}``/``bn2_2_{i+1}``).
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, scales: int = 4, symmetric: bool = True):
        super().__init__()
        if cout % scales:
            raise ValueError(f"MultiScaleBlock needs cout divisible by scales; got {cout}, n={scales}")
        width = cout // scales
        self.scales = scales
        self.symmetric = symmetric
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=False)
        # Res2Net passes X_1 through unchanged, so it has n−1 convolutions.
        n_left = scales if symmetric else scales - 1
        self.left = nn.ModuleList(conv_norm_act(width, width, act=False, named=True) for _ in range(n_left))
        self.right = (
            nn.ModuleList(conv_norm_act(width, width, act=False, named=True) for _ in range(scales))
            if symmetric
            else None
        )
        self.downsample = downsample(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        subsets = torch.chunk(self.relu(self.bn1(self.conv1(x))), self.scales, dim=1)
        n = self.scales
        if self.symmetric:
            left: list[torch.Tensor] = []
            for i in range(n):  # Eq. 1
                inp = subsets[i] if i == 0 else subsets[i] + self.relu(left[-1])
                left.append(self.left[i](inp))
            right: list[torch.Tensor] = [None] * n  # type: ignore[list-item]
            for i in reversed(range(n)):  # Eq. 2
                inp = subsets[i] if i == n - 1 else subsets[i] + self.relu(right[i + 1])
                right[i] = self.right[i](inp)  # type: ignore[index]
            outs = [lft + rgt for lft, rgt in zip(left, right)]  # Eq. 3
        else:
            outs = [subsets[0]]
            for i in range(1, n):
                inp = subsets[i] if i == 1 else subsets[i] + self.relu(outs[-1])
                outs.append(self.left[i - 1](inp))
        return self.relu(torch.cat(outs, dim=1) + identity)


def AttentiveBlock(cin: int, cout: int, stride: int = 1, attention: bool = True, reduction: int = 16) -> CBAMBasicBlock:
    """Attentive block of Fig. 2(c): ResNet basic block with CBAM (reduction 16) on the second
    convolution's output before the shortcut, ``F_r = M_s(F) ⊗ (M_c(F) ⊗ F)`` (Eq. 4): the shared
    :class:`~ferlib.models.blocks.CBAMBasicBlock`, shortcut built first as the public code does.
    ``attention=False`` gives the plain basic block ("local feature" of Table I)."""
    return CBAMBasicBlock(cin, cout, stride, attention=attention, reduction=reduction, shortcut_first=True)


def _two_stages(make, cin: int = 128, strides: tuple[int, int] = (2, 2)) -> nn.Sequential:
    """Two stages of two blocks each, 128→256→512 ("layer3", "layer4" of ResNet-18)."""
    return nn.Sequential(
        OrderedDict(
            layer3=nn.Sequential(make(cin, 256, strides[0]), make(256, 256, 1)),
            layer4=nn.Sequential(make(256, 512, strides[1]), make(512, 512, 1)),
        )
    )


def _resnet18_last_two_stages() -> nn.Sequential:
    """The "LTS" branch of Tables I-II: torchvision ResNet-18's layer3 + layer4 (fresh weights)."""
    tv = torchvision.models.resnet18(weights=None)
    return nn.Sequential(OrderedDict(layer3=tv.layer3, layer4=tv.layer4))


class LocalAttentionModule(nn.Module):
    """Local attention module (§III-C): region split, one attentive network per region, tiling.

    ``regions.{k}`` is the network of region k (row-major; public ``layer3_1_p{k+1}`` /
    ``layer4_1_p{k+1}``). The last stage keeps stride 1, so each 14×14 region ends at 7×7 and the
    four maps tile back to 14×14 (the output is what Grad-CAM hooks for the "local" branch).
    ``batched_regions`` (``None``: on accelerators) runs the four networks as one batched call with the
    same parameters (:func:`ferlib.models._stacked.run_stacked`).
    """

    batched_regions: bool | None = None

    def __init__(self, split: int = 2, overlap: int = 0, attention: bool = True, cin: int = 128):
        super().__init__()
        self.split = split
        self.overlap = overlap
        ma_net_regions(28, split, overlap)  # validate the strategy early, with the paper's grid

        def make(ci: int, co: int, stride: int) -> nn.Module:
            return AttentiveBlock(ci, co, stride, attention=attention)

        self.regions = nn.ModuleList(_two_stages(make, cin, strides=(2, 1)) for _ in range(split * split))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        h, w = s.shape[-2:]
        if h != w:
            raise ValueError(f"MA-Net's local branch needs a square feature map; got {h}×{w}")
        boxes = _region_bounds(int(h), self.split, self.overlap)
        if len(boxes) != len(self.regions) or boxes[-1][2] != h:
            ma_net_regions(int(h), self.split, self.overlap)  # raises, naming the problem
        crops = [s[:, :, y0:y1, x0:x1] for (x0, y0, x1, y1) in boxes]
        if len({c.shape for c in crops}) == 1 and use_stacked(self.batched_regions, self.regions, s):
            maps = list(run_stacked(self.regions, torch.stack(crops)).unbind(0))  # one batched call (_stacked.py)
        else:
            maps = [net(crop) for net, crop in zip(self.regions, crops)]
        rows = [torch.cat(maps[r * self.split : (r + 1) * self.split], dim=3) for r in range(self.split)]
        return torch.cat(rows, dim=2)


class MultiScaleModule(nn.Module):
    """Multi-scale module (§III-B): four multi-scale blocks, 128→256 (s2) → 512 (s2)."""

    def __init__(self, symmetric: bool = True, scales: int = 4, cin: int = 128):
        super().__init__()

        def make(ci: int, co: int, stride: int) -> nn.Module:
            return MultiScaleBlock(ci, co, stride, scales=scales, symmetric=symmetric)

        stages = _two_stages(make, cin, strides=(2, 2))
        self.layer3, self.layer4 = stages.layer3, stages.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(x))


class Branch(nn.Module):
    """A branch: ``features`` (a spatial map) → GAP → optional ``head`` FC (Eq. 5's W, b)."""

    def __init__(self, features: nn.Module, num_classes: int | None):
        super().__init__()
        self.features = features
        self.head = nn.Linear(512, num_classes) if num_classes else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        fmap = self.features(x)
        vec = torch.flatten(F.adaptive_avg_pool2d(fmap, 1), 1)
        return fmap, vec, (self.head(vec) if self.head is not None else None)


def _kaiming_fan_out(module: nn.Module) -> None:
    """The public MA-Net code's initialisation of its branches: every convolution Kaiming-normal
    with fan-out (ReLU gain), BatchNorm weight 1 and bias 0. PyTorch's default Conv2d init has a
    standard deviation of 1/√(3·fan_in), i.e. √(fan_out / (6·fan_in)) of Kaiming fan-out's
    √(2/fan_out): 0.58× for the convolutions that double the width, 0.41× for the others. The
    pre-extractor comes from torchvision, which already uses this initialisation. It matters for
    the from-scratch rows of the ablation tables (ma-net.txt Tables I–IV)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


_GLOBAL_KINDS = ("symmetric", "res2net", "lts", None)
_LOCAL_KINDS = ("attention", "feature", "lts", None)


class MANet(FERModel):
    """MA-Net and its ablations (see the module docstring for the variants and their tables)."""

    card_name = "ma-net"

    def __init__(
        self,
        num_classes: int = 7,
        *,
        global_branch: str | None = "symmetric",
        local_branch: str | None = "attention",
        split: int = 2,
        overlap: int = 0,
        fusion: str = "decision",
        lam: float = 0.6,
        scales: int = 4,
    ):
        super().__init__()
        if global_branch not in _GLOBAL_KINDS:
            raise ValueError(f"global_branch must be one of {_GLOBAL_KINDS}; got {global_branch!r}")
        if local_branch not in _LOCAL_KINDS:
            raise ValueError(f"local_branch must be one of {_LOCAL_KINDS}; got {local_branch!r}")
        if global_branch is None and local_branch is None:
            raise ValueError("MA-Net needs at least one branch; set global_branch or local_branch")
        if fusion not in ("decision", "feature"):
            raise ValueError(f"fusion must be 'decision' or 'feature' (Table IV); got {fusion!r}")
        two_branch = global_branch is not None and local_branch is not None
        if fusion == "feature" and not two_branch:
            raise ValueError("feature-level fusion (Table IV) needs both branches")
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam (λ of Eq. 6) must lie in [0, 1]; got {lam}")
        self.num_classes = num_classes
        self.fusion = fusion
        self.lam = float(lam)
        self.global_kind = global_branch
        self.local_kind = local_branch

        tv = torchvision.models.resnet18(weights=None)
        self.pre_extractor = nn.Sequential(
            OrderedDict(
                conv1=tv.conv1, bn1=tv.bn1, relu=tv.relu, maxpool=tv.maxpool, layer1=tv.layer1, layer2=tv.layer2
            )
        )
        branch_classes = num_classes if fusion == "decision" else None

        self.local_branch: Branch | None = None
        if local_branch == "lts":
            self.local_branch = Branch(_resnet18_last_two_stages(), branch_classes)
        elif local_branch is not None:
            module = LocalAttentionModule(split, overlap, attention=local_branch == "attention")
            self.local_branch = Branch(module, branch_classes)

        self.global_branch: Branch | None = None
        if global_branch == "lts":
            self.global_branch = Branch(_resnet18_last_two_stages(), branch_classes)
        elif global_branch is not None:
            module = MultiScaleModule(symmetric=global_branch == "symmetric", scales=scales)
            self.global_branch = Branch(module, branch_classes)

        self.fusion_head = nn.Linear(1024, num_classes) if fusion == "feature" else None
        for branch in (self.local_branch, self.global_branch):
            if branch is not None:
                _kaiming_fan_out(branch)

    # -- forward ---------------------------------------------------------------------------
    def forward(
        self, images: torch.Tensor, landmarks5: torch.Tensor | None = None, landmarks8: torch.Tensor | None = None
    ) -> ModelOutput:
        """``images`` B×3×224×224 (ImageNet-normalised). MA-Net uses no landmarks (its regions are
        fixed cuts of the feature map); the arguments exist for the common model API."""
        s = self.pre_extractor(images)
        branch_logits: dict[str, torch.Tensor] = {}
        aux: dict[str, torch.Tensor] = {"pre_features": s}
        vectors: dict[str, torch.Tensor] = {}
        for name, branch in (("local", self.local_branch), ("global", self.global_branch)):
            if branch is None:
                continue
            fmap, vec, logits = branch(s)
            aux[f"{name}_features"] = fmap
            vectors[name] = vec
            if logits is not None:
                branch_logits[name] = logits
        if self.local_branch is not None and isinstance(self.local_branch.features, LocalAttentionModule):
            local = self.local_branch.features  # type: ignore[union-attr]
            bounds = _region_bounds(int(s.shape[-1]), local.split, local.overlap)
            scale = images.shape[-1] / s.shape[-1]
            boxes = torch.tensor(bounds, dtype=images.dtype, device=images.device) * scale
            aux["region_boxes"] = boxes.unsqueeze(0).expand(images.shape[0], -1, -1)
        if self.fusion_head is not None:
            logits = self.fusion_head(torch.cat([vectors["local"], vectors["global"]], dim=1))
        elif len(branch_logits) == 2:
            logits = decision_fusion_logits(branch_logits["local"], branch_logits["global"], self.lam)
        else:
            logits = next(iter(branch_logits.values()))
        return ModelOutput(logits=logits, branch_logits=branch_logits, aux=aux)

    def loss(self, output: ModelOutput, batch: dict[str, Any]) -> torch.Tensor:
        """Eq. 6: ``λ·CE(z_local, y) + (1−λ)·CE(z_global, y)`` (each CE is Eq. 5); one-branch and
        feature-level-fusion variants have a single classifier and use its cross-entropy."""
        return decision_fusion_loss(output, batch, "local", "global", self.lam)

    # -- introspection ------------------------------------------------------------------------
    @property
    def torchvision_stages(self) -> dict[str, str]:
        """Where torchvision ResNet stages load (used by ``load_checkpoint(source="torchvision")``):
        the stem, layer1 and layer2 into the pre-extractor; layer3/layer4 only into a branch that
        is ResNet-18's last two stages (the global one first)."""
        stages = {name: f"pre_extractor.{name}" for name in ("conv1", "bn1", "layer1", "layer2")}
        for branch, kind in (("global_branch", self.global_kind), ("local_branch", self.local_kind)):
            if kind == "lts" and "layer3" not in stages:
                stages["layer3"] = f"{branch}.features.layer3"
                stages["layer4"] = f"{branch}.features.layer4"
        return stages

    def cam_targets(self) -> dict[str, nn.Module]:
        """Grad-CAM layers: the global branch's last block (``"multi_scale"``, or ``"global"`` for
        the LTS variant) and the local attention module, whose output is the tiled 14×14 map."""
        targets: dict[str, nn.Module] = {}
        if self.global_branch is not None:
            key = "multi_scale" if self.global_kind in ("symmetric", "res2net") else "global"
            targets[key] = self.global_branch.features.layer4[-1]
        if self.local_branch is not None:
            feats = self.local_branch.features
            targets["local"] = feats if isinstance(feats, LocalAttentionModule) else feats.layer4[-1]
        return targets

    def parts(self) -> dict[str, nn.Module]:
        """Parts for parameter/MAC counts: pre-extractor, local branch (+ its FC), global branch
        (+ its FC); the feature-fusion classifier is counted apart."""
        parts: dict[str, nn.Module] = {"pre_extractor": self.pre_extractor}
        if self.local_branch is not None:
            parts["local"] = self.local_branch
        if self.global_branch is not None:
            parts["global"] = self.global_branch
        if self.fusion_head is not None:
            parts["fusion"] = self.fusion_head
        return parts


# -- region views (the explorer, notebook 02) ------------------------------------------------------


def _split_view(split: int, overlap: int) -> RegionView:
    """A fixed split of the feature map (Table III): the boxes do not depend on the landmarks."""
    name = f"MA-Net: {split}×{split} split" if not overlap else f"MA-Net: {split}×{split} overlap {overlap}"

    def compute(landmarks5: Any, image_size: int, grid_size: int, patch_size: int) -> dict[str, np.ndarray]:
        return {"grid_boxes": ma_net_regions(grid_size, split, overlap).numpy()}

    def panels(geo: Mapping[str, Any], landmarks5: Any, image_size: int, grid_size: int) -> tuple[RegionPanel, ...]:
        return (
            RegionPanel(
                "face",
                name,
                boxes=(BoxLayer(geo["grid_boxes"], None, image_size / grid_size),),
                points=((landmarks5, LANDMARK5_LABELS, "#FF2D2D"),),
            ),
            RegionPanel(
                "grid",
                f"{grid_size}×{grid_size} grid (landmark-free)",
                boxes=(BoxLayer(geo["grid_boxes"], None, 1.0, "filled"),),
            ),
        )

    return RegionView(name, compute, panels)


# -- paper card -------------------------------------------------------------------------------------

_PUBLIC_CODE_NOTE = "public code: the paper's code (github.com/zengqunzhao/MA-Net) keeps the best test-set epoch"

MA_NET_CARD = PaperCard(
    attention=ma_net_attention,  # the network's own attention maps (_attention.py)
    citation=Citation(
        ("Zengqun Zhao", "Qingshan Liu", "Shanmin Wang"),
        "Learning deep global multi-scale and local attention features for facial expression recognition in the wild",
        "IEEE TIP",
        2021,
        paper_file="ma-net.txt",
    ),
    claims=Claims(
        params={"total": 50.54e6},
        gmacs={"total": 3.65},
        reference_params={"pre_extractor": 0.68e6, "local": 42.31e6, "global": 7.55e6},
        reference_gmacs={"pre_extractor": 0.99, "local": 2.06, "global": 0.59},
        ferlib_params_7cls=50_547_214,
        notes=(
            "paper §IV-B: 50.54 M parameters, 3.65 G FLOPs (multiply-accumulates)",
            "reference figures: per-part split measured on the public code with 7-class heads",
        ),
    ),
    results=(
        ReportedResult(
            "RAF-DB", 88.40, "ma-net.txt abstract (MS-Celeb-1M pre-training)", "MS-Celeb-1M", True, _PUBLIC_CODE_NOTE
        ),
        ReportedResult("CAER-S", 88.42, "ma-net.txt abstract", "MS-Celeb-1M", True, _PUBLIC_CODE_NOTE),
        ReportedResult("AffectNet-7", 64.53, "ma-net.txt abstract", "MS-Celeb-1M", True, _PUBLIC_CODE_NOTE),
        ReportedResult("AffectNet-8", 60.29, "ma-net.txt abstract", "MS-Celeb-1M", True, _PUBLIC_CODE_NOTE),
        ReportedResult("SFEW 2.0", 59.40, "ma-net.txt abstract", "MS-Celeb-1M, FER2013", True, _PUBLIC_CODE_NOTE),
    ),
    recipe="ma-net",
    ablations=(
        AblationGrid(
            "ma-net-multiscale",
            "ma-net",
            "ma-net.txt Table I (one branch)",
            "RAF-DB, no pre-training",
            ablation_rows(
                ("symmetric multi-scale", {"global_branch": "symmetric", "local_branch": None}, 83.74),
                ("baseline (LTS)", {"global_branch": "lts", "local_branch": None}, 82.59),
                ("Res2Net multi-scale", {"global_branch": "res2net", "local_branch": None}, 82.89),
                ("local feature", {"global_branch": None, "local_branch": "feature"}, 83.87),
                ("local feature + attention", {"global_branch": None, "local_branch": "attention"}, 84.65),
            ),
        ),
        AblationGrid(
            "ma-net-regions",
            "ma-net",
            "ma-net.txt Table III",
            "RAF-DB, no pre-training",
            ablation_rows(
                ("2×2, overlap 0 (MA-Net)", {"split": 2, "overlap": 0}, 86.32),
                ("1×1", {"split": 1, "overlap": 0}, 84.58),
                ("2×2, overlap 6", {"split": 2, "overlap": 6}, 85.14),
                ("3×3, overlap 1", {"split": 3, "overlap": 1}, 85.41),
                ("3×3, overlap 7", {"split": 3, "overlap": 7}, 85.29),
            ),
        ),
        AblationGrid(
            "ma-net-fusion",
            "ma-net",
            "ma-net.txt Table IV",
            "RAF-DB, no pre-training",
            ablation_rows(
                ("decision-level (MA-Net)", {"fusion": "decision"}, 86.34),
                ("feature-level", {"fusion": "feature"}, 82.76),
            ),
        ),
        AblationGrid(
            "ma-net-lambda",
            "ma-net",
            "ma-net.txt Fig. 6 (best λ = 0.6; values not printed)",
            "RAF-DB",
            ablation_rows(
                ("λ = 0.6 (MA-Net)", {"lam": 0.6}, 86.34),
                ("λ = 0.2", {"lam": 0.2}, None),
                ("λ = 0.9", {"lam": 0.9}, None),
            ),
        ),
    ),
    primary_cam_target="multi_scale",
    checkpoint_formats=(
        CheckpointFormat(
            "manet-official",
            manet_official_key_map,
            "public MA-Net checkpoints (MS-Celeb-1M pre-training with 12,666-way heads, or fine-tuned 7-class)",
            heads=("local_branch.head", "global_branch.head", "fusion_head"),
        ),
    ),
    region_views=(_split_view(2, 0), _split_view(3, 7)),
)


@register_model(
    "ma-net",
    paper="Zhao, Liu & Wang, 'Learning deep global multi-scale and local attention features for facial "
    "expression recognition in the wild', IEEE TIP 2021 (ma-net.txt)",
    description="MA-Net: ResNet-18 pre-extractor, symmetric multi-scale global branch, 2×2 local attention "
    "branch, decision-level fusion λ=0.6",
    card=MA_NET_CARD,
)
def ma_net(num_classes: int = 7, **variant: Any) -> MANet:
    """MA-Net (ma-net.txt §III); keyword variants as :class:`MANet`."""
    return MANet(num_classes, **variant)
