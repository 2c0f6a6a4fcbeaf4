"""AMP-Net: adaptive multilayer perceptual attention network (amp-net.txt, Liu et al., §III, Eqs. 1–8).

>>> from ferlib.models import create_model
>>> model = create_model("amp-net", num_classes=7)                    # ResNet-34 pre-extractor
>>> out = model(images, landmarks5=landmarks5)                         # B×3×224×224, B×5×2 pixels
>>> out.logits, out.branch_logits["gp"], out.branch_logits["lap"], out.aux["lp_boxes"]

Structure (Fig. 2):

* **pre-extractor** — torchvision ResNet-34 (``amp-net``) or ResNet-18 (``amp-net-r18``) stem +
  layer1 + layer2 (conv1–conv3): 128×28×28 at 224 px.
* **GP** (§III-B) — three gate-OSA blocks (n = 3, C1 = 128/144/160, C3 = 256/384/512; gate Eq. 1,
  1×1 reduction, eSE), GAP → 512. The first block keeps 28×28 and a 3×3/2 max-pool precedes the
  second and third (28 → 14 → 7), as in the public code: three halvings would end at 4×4, not the
  paper's 512×7×7, and the published 0.71 GMACs of the GP match exactly this layout.
* **LP** (§III-C) — PBD (Eqs. 2–4) + LBP (or another Table III scheme, see
  :mod:`ferlib.models.regions`) → four 128×14×14 maps, each through its own four attention blocks
  (Eq. 5: two 3×3 convs, CBAM, shortcut; 128→256 stride 2, 256→256, 256→512, 512→512) → 4×512×7×7,
  GAP → 2048.
* **AP** (§III-D) — five L×L patches around the Eq. 6 centres (L = 10), each through two attention
  blocks (128→256 stride 2, 256→256) → 5×256, → 1280.
* **fusion** (§III-E) — FC 2048→512 (LP) and FC 1280→512 (AP), concatenated (1024) → FC c gives
  ``z_LA``; FC 512→c on the GP feature gives ``z_G``.

Loss (Eqs. 7–8): ``L = λ·CE(z_G) + (1 − λ)·CE(z_LA)``, λ = 0.5. **Test-time logits** (the paper does
not write them down): ``logits = λ·z_G + (1 − λ)·z_LA``, the same weighting as the loss — this is what
the public code's validation does (``β·output1 + (1 − β)·output2`` with β = 0.5 and its two heads).

Parameters and MACs. Only modules the forward uses are built: with 7 classes ``amp-net`` has
59.44 M parameters (pre-extractor 1.35 M, LP 42.31 M, AP 10.58 M, GP 3.48 M, fusion FCs 1.72 M) and
4.72 GMACs at 224 px (1.69 / 2.06 / 0.26 / 0.71 / ~0). The paper's 105.67 M also counts modules the
public forward never calls (``layer4_2_*``, ``Occlusionlayer*``, ``fc_1_1``, ``fc_2_1``, ``fc_4``,
``fc_4_1``: about 46 M with the 8,631-way pre-training heads). :meth:`AMPNet.parts` returns
``pre_extractor``, ``lp``, ``ap``, ``gp`` (the four published per-part figures) and ``fusion`` (the FC
layers, which the published per-part figures leave out).

Differences from the public code, on purpose: landmarks are an argument of ``forward`` (no mutable
``set_rect`` state), regions are cut by batched gathers instead of per-sample loops, PBD special case
2 (missing point) is implemented as the paper describes (the public code has only case 1), and no
horizontal flip touches the landmarks here (the public flip corrupts them; augmentation belongs to
the data pipeline, which flips points with :data:`ferlib.data.schema.LANDMARK5_FLIP_PERM`).

Ablation variants (keyword arguments of ``create_model``): ``branches`` (any non-empty subset of
``("gp", "lp", "ap")``, Tables I–II), ``gp_block`` (``"gate-osa"`` | ``"osa"``, Table I),
``lp_scheme`` (1–4 of Table III), ``region_size`` (L, Fig. 8(a)), ``lam`` (λ, Fig. 8(b)), plus
``gate_width``, ``gp_residual`` and ``osa_dropout`` (see :class:`ferlib.models.osa.OSABlock`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ferlib.models._amp_net_keys import (
    map_ampnet_official_key,
)
from ferlib.models._amp_net_view import AMP_NET_VIEW, amp_net_geometry
from ferlib.models._attention import amp_net_attention, amp_net_lp_regions_to_image
from ferlib.models._base import FERModel
from ferlib.models._card import (
    AblationGrid,
    CheckpointFormat,
    Citation,
    Claims,
    PaperCard,
    ReportedResult,
    ablation_rows,
)
from ferlib.models._stacked import run_stacked, use_stacked
from ferlib.models._weight_layouts import resnet_stage_map
from ferlib.models.baselines import resnet_stages
from ferlib.models.blocks import CBAMBasicBlock
from ferlib.models.losses import decision_fusion_logits, decision_fusion_loss
from ferlib.models.osa import OSABlock
from ferlib.models.output import ModelOutput
from ferlib.models.regions import (
    AP_PATCH_NAMES,
    LP_REGION_NAMES,
    ap_patch_boxes,
    equal_split_boxes,
    extract_patches,
    landmarks_to_grid,
    location_based_padding,
    lp_scheme_index,
    paste_patch_cam,
    pose_based_division,
    roi_align_regions,
)
from ferlib.models.registry import register_model

BRANCHES: tuple[str, ...] = ("gp", "lp", "ap")
#: GP stage widths (§III-B): input, C1 (3×3 layers), C3 (after the 1×1 reduction).
GP_IN = (128, 256, 384)
GP_C1 = (128, 144, 160)
GP_C3 = (256, 384, 512)
#: Attention-block stages (cin, cout, stride) of one LP region and of one AP patch.
LP_BLOCKS = ((128, 256, 2), (256, 256, 1), (256, 512, 1), (512, 512, 1))
AP_BLOCKS = ((128, 256, 2), (256, 256, 1))


def AttentionBlock(cin: int, cout: int, stride: int = 1) -> CBAMBasicBlock:
    """Attention block, Eq. 5 / Fig. 3(c): the shared :class:`~ferlib.models.blocks.CBAMBasicBlock`
    (3×3 conv-BN-ReLU-3×3 conv-BN, CBAM reduction 16, 1×1 conv + BN shortcut built last)."""
    return CBAMBasicBlock(cin, cout, stride, shortcut_first=False)


class AttentionBranch(nn.Module):
    """Attention blocks in series for one region; returns the features and the last spatial attention.

    ``output`` is an identity on the branch output: the Grad-CAM target of this branch.
    """

    def __init__(self, stages: Sequence[tuple[int, int, int]]):
        super().__init__()
        self.blocks = nn.ModuleList(AttentionBlock(cin, cout, stride) for cin, cout, stride in stages)
        self.output = nn.Identity()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attention = x.new_zeros(())
        for block in self.blocks:
            x, attention = block.forward_with_attention(x)
        return self.output(x), attention


class LocalPerception(nn.Module):
    """LP module (§III-C): regions of the 128×r×r map → four attention branches → B×2048.

    ``scheme`` is Table III's: 1 PBD + ROI Align, 2 equal 2×2 split, 3 modified PBD + LBP,
    4 PBD + LBP (proposed). The four branch outputs are tiled 2×2 (left-top, right-top / left-bottom,
    right-bottom) into ``canvas`` — the Grad-CAM target, laid out like the face since LBP puts every
    region next to the shared division points — and pooled per quadrant (= GAP of each branch).
    ``batched_regions`` (``None``: on accelerators) runs the branches as one batched call with the same
    parameters (:func:`ferlib.models._stacked.run_stacked`).
    """

    batched_regions: bool | None = None

    def __init__(self, scheme: int | str = 4):
        super().__init__()
        self.scheme = lp_scheme_index(scheme)
        self.branches = nn.ModuleList(AttentionBranch(LP_BLOCKS) for _ in LP_REGION_NAMES)
        self.canvas = nn.Identity()

    @property
    def needs_landmarks(self) -> bool:
        return self.scheme != 2

    def region_boxes(self, grid_landmarks: torch.Tensor | None, batch: int, grid_size: int, device) -> torch.Tensor:
        if self.scheme == 2:
            return equal_split_boxes(batch, grid_size, device=device)
        assert grid_landmarks is not None
        return pose_based_division(grid_landmarks, grid_size, "modified" if self.scheme == 3 else "proposed")

    def forward(
        self, x: torch.Tensor, grid_landmarks: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, _, r, _ = x.shape
        boxes = self.region_boxes(grid_landmarks, b, r, x.device)
        if self.scheme == 1:
            regions = roi_align_regions(x, boxes)
        else:
            regions = location_based_padding(x, boxes)  # B×4×C×S×S
        if use_stacked(self.batched_regions, self.branches, x):  # the four branches as one call (_stacked.py)
            stacked, att_stacked = run_stacked(self.branches, regions.transpose(0, 1))
            outs, attentions = list(stacked.unbind(0)), list(att_stacked.unbind(0))
        else:
            outs, attentions = [], []
            for k, branch in enumerate(self.branches):
                out, att = branch(regions[:, k])
                outs.append(out)
                attentions.append(att)
        canvas = self.canvas(torch.cat([torch.cat(outs[:2], dim=3), torch.cat(outs[2:], dim=3)], dim=2))
        pooled = F.adaptive_avg_pool2d(canvas, 2)  # B×512×2×2, one cell per region
        feature = pooled.permute(0, 2, 3, 1).reshape(b, -1)  # [LT, RT, LB, RB] × 512
        return feature, boxes, torch.cat(attentions, dim=1)


class AttentionPerception(nn.Module):
    """AP module (§III-D): five L×L patches (Eq. 6) → attention branches → GAP → B×1280
    (``batched_regions`` as :class:`LocalPerception`'s)."""

    batched_regions: bool | None = None

    def __init__(self, region_size: int = 10):
        super().__init__()
        if region_size < 2:
            raise ValueError(f"AP region size L must be ≥ 2 (paper: 6-14, default 10), got {region_size}")
        self.region_size = int(region_size)
        self.branches = nn.ModuleList(AttentionBranch(AP_BLOCKS) for _ in AP_PATCH_NAMES)

    def forward(self, x: torch.Tensor, grid_landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        boxes = ap_patch_boxes(grid_landmarks, x.shape[-1], self.region_size)
        patches = extract_patches(x, boxes, self.region_size)  # B×5×C×L×L
        if use_stacked(self.batched_regions, self.branches, x):  # the five branches as one call (_stacked.py)
            stacked, att_stacked = run_stacked(self.branches, patches.transpose(0, 1))
            feats = [torch.flatten(F.adaptive_avg_pool2d(out, 1), 1) for out in stacked.unbind(0)]
            attentions = list(att_stacked.unbind(0))
        else:
            feats, attentions = [], []
            for k, branch in enumerate(self.branches):
                out, att = branch(patches[:, k])
                feats.append(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))
                attentions.append(att)
        return torch.cat(feats, dim=1), boxes, torch.cat(attentions, dim=1)


class GlobalPerception(nn.Module):
    """GP module (§III-B): three (gate-)OSA blocks, max-pool before the 2nd and 3rd, GAP → B×512."""

    def __init__(self, gate: bool = True, gate_width: str = "scalar", residual: bool = False, dropout: float = 0.5):
        super().__init__()
        self.blocks = nn.ModuleList(
            OSABlock(cin, c1, c3, 3, gate=gate, gate_width=gate_width, residual=residual, dropout=dropout)
            for cin, c1, c3 in zip(GP_IN, GP_C1, GP_C3)
        )
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            if i > 0:
                x = self.pool(x)
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class Fusion(nn.Module):
    """§III-E: LP FC 2048→512 and AP FC 1280→512, concatenated → FC c (``z_LA``); GP FC 512→c (``z_G``).

    With only one of LP/AP, ``lap_head`` reads that branch's 512-d feature alone.
    """

    def __init__(self, num_classes: int, branches: Sequence[str]):
        super().__init__()
        self.lp_fc = nn.Linear(4 * 512, 512) if "lp" in branches else None
        self.ap_fc = nn.Linear(5 * 256, 512) if "ap" in branches else None
        n_local = ("lp" in branches) + ("ap" in branches)
        self.lap_head = nn.Linear(512 * n_local, num_classes) if n_local else None
        self.gp_head = nn.Linear(512, num_classes) if "gp" in branches else None

    def forward(
        self, lp: torch.Tensor | None, ap: torch.Tensor | None, gp: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        logits: dict[str, torch.Tensor] = {}
        if self.gp_head is not None:
            logits["gp"] = self.gp_head(gp)
        local = []
        if self.lp_fc is not None:
            local.append(self.lp_fc(lp))
        if self.ap_fc is not None:
            local.append(self.ap_fc(ap))
        if self.lap_head is not None:
            logits["lap"] = self.lap_head(torch.cat(local, dim=1))
        return logits


class AMPNet(FERModel):
    """AMP-Net (amp-net.txt Fig. 2). See the module docstring for structure, loss and variants.

    Args:
        num_classes: c.
        depth: 34 (paper) or 18 (``amp-net-r18``, Tables IV–V) for the torchvision pre-extractor.
        branches: non-empty subset of ``("gp", "lp", "ap")`` (Tables I–II).
        gp_block: ``"gate-osa"`` (proposed) or ``"osa"`` (Table I "GP (OSA)").
        lp_scheme: Table III scheme, 1–4 or a name of :data:`ferlib.models.regions.LP_SCHEMES`.
        region_size: AP patch side L on the feature grid (6, 8, 10, 12, 14 in Fig. 8(a)).
        lam: λ of Eq. 7, the weight of the GP loss (and of ``z_G`` in the test-time logits).
        gate_width: ``"scalar"`` (public code) or ``"channel"``; see :class:`ferlib.models.osa.GateLayer`.
        gp_residual: add the paper's projected shortcut to each OSA block (absent in the public code).
        osa_dropout: Dropout2d after each OSA block (public code: 0.5).
    """

    def __init__(
        self,
        num_classes: int = 7,
        *,
        depth: int = 34,
        branches: Sequence[str] = BRANCHES,
        gp_block: str = "gate-osa",
        lp_scheme: int | str = 4,
        region_size: int = 10,
        lam: float = 0.5,
        gate_width: str = "scalar",
        gp_residual: bool = False,
        osa_dropout: float = 0.5,
    ):
        super().__init__()
        branches = tuple(branches)
        unknown = set(branches) - set(BRANCHES)
        if not branches or unknown:
            raise ValueError(f"AMP-Net branches must be a non-empty subset of {BRANCHES}, got {branches}")
        if gp_block not in ("gate-osa", "osa"):
            raise ValueError(f"AMP-Net gp_block must be 'gate-osa' or 'osa' (Table I), got {gp_block!r}")
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"AMP-Net lam (λ of Eq. 7) must be in [0, 1], got {lam}")
        self.branches = tuple(b for b in BRANCHES if b in branches)
        self.lam = float(lam)
        stages = resnet_stages(depth)
        self.pre_extractor = nn.Sequential(
            OrderedDict(stem=stages["stem"], layer1=stages["layer1"], layer2=stages["layer2"])
        )
        self.lp = LocalPerception(lp_scheme) if "lp" in self.branches else None
        self.ap = AttentionPerception(region_size) if "ap" in self.branches else None
        self.gp = (
            GlobalPerception(gp_block == "gate-osa", gate_width, gp_residual, osa_dropout)
            if "gp" in self.branches
            else None
        )
        self.fusion = Fusion(num_classes, self.branches)
        self._init_weights()

    def _init_weights(self) -> None:
        # As the public code: He init (fan-out) for every conv, BN weight 1 / bias 0.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    card_name = "amp-net"

    @property
    def needs_landmarks(self) -> tuple[str, ...]:
        """``("landmarks5",)`` when AP or a landmark-based LP scheme is built; GP alone (or LP with
        the equal split, scheme 2) needs none."""
        uses = self.ap is not None or (self.lp is not None and self.lp.needs_landmarks)
        return ("landmarks5",) if uses else ()

    def forward(
        self, images: torch.Tensor, landmarks5: torch.Tensor | None = None, landmarks8: torch.Tensor | None = None
    ) -> ModelOutput:
        if self.needs_landmarks and landmarks5 is None:
            users = " and ".join(
                name
                for name, module in (("LP", self.lp), ("AP", self.ap))
                if module is not None and (name == "AP" or self.lp.needs_landmarks)
            )
            raise ValueError(
                "AMP-Net needs landmarks5 (B×5×2 pixel xy of the input, RetinaFace order, NaN if unknown) for its "
                f"{users} module; pass forward(images, landmarks5=batch['landmarks5']) (see ferlib/data/schema.py), "
                "or build create_model('amp-net', branches=('gp',)) / branches=('gp', 'lp'), lp_scheme=2, "
                "which need none."
            )
        x = self.pre_extractor(images)
        grid = None
        if landmarks5 is not None and self.needs_landmarks:
            grid = landmarks_to_grid(landmarks5.to(x.device), tuple(images.shape[-2:]), x.shape[-1])
        aux: dict[str, torch.Tensor] = {}
        lp_feat = ap_feat = gp_feat = None
        if self.lp is not None:
            lp_feat, aux["lp_boxes"], aux["lp_attention"] = self.lp(x, grid)
        if self.ap is not None:
            ap_feat, aux["ap_boxes"], aux["ap_attention"] = self.ap(x, grid)
        if self.gp is not None:
            gp_feat = self.gp(x)
        branch_logits = self.fusion(lp_feat, ap_feat, gp_feat)
        if "gp" in branch_logits and "lap" in branch_logits:
            logits = decision_fusion_logits(branch_logits["gp"], branch_logits["lap"], self.lam)
        else:
            logits = next(iter(branch_logits.values()))
        return ModelOutput(logits=logits, branch_logits=branch_logits, aux=aux)

    def loss(self, output: ModelOutput, batch: dict[str, Any]) -> torch.Tensor:
        """Eqs. 7–8: ``λ·CE(z_G, y) + (1 − λ)·CE(z_LA, y)``; plain CE when only one head exists."""
        return decision_fusion_loss(output, batch, "gp", "lap", self.lam)

    @property
    def torchvision_stages(self) -> dict[str, str | None]:
        """Outside weights (``load_checkpoint(source="torchvision")``): a ResNet-34 (``amp-net``) or
        ResNet-18 (``amp-net-r18``) fills the pre-extractor (stem, layer1, layer2: conv1–conv3);
        GP, LP, AP and the fusion layers start fresh."""
        return resnet_stage_map(
            {"conv1": "pre_extractor.stem.conv1", "bn1": "pre_extractor.stem.bn1"}
            | {f"layer{i}": f"pre_extractor.layer{i}" for i in (1, 2)}
        )

    def cam_targets(self) -> dict[str, nn.Module]:
        """Grad-CAM layers: ``gp`` (last OSA block, 512×7×7), ``lp`` (the 2×2 tiling of the four padded
        region canvases, 512×14×14; :meth:`place_cams` puts each region back on the face), ``ap_<patch>``
        (each AP branch, 256×L/2×L/2, patch-local: :meth:`place_cams` pastes it into ``aux["ap_boxes"]``)."""
        targets: dict[str, nn.Module] = {}
        if self.gp is not None:
            targets["gp"] = self.gp.blocks[-1]
        if self.lp is not None:
            targets["lp"] = self.lp.canvas
        if self.ap is not None:
            for name, branch in zip(AP_PATCH_NAMES, self.ap.branches):
                targets[f"ap_{name}"] = branch.output
        return targets

    def place_cams(self, target: str, cams: np.ndarray, inputs: Mapping[str, Any], image_size: int) -> np.ndarray:
        """An ``ap_<patch>`` CAM is patch-local (L/2 × L/2 cells of one L×L patch): paste each back
        into its patch box (Eq. 6) on the face. The ``lp`` CAM lies on the 2×2 tiling of the four
        padded region canvases: each region's part goes back to the region's place (padding dropped).
        ``gp`` is already in image layout."""
        if target == "lp" and self.lp is not None:
            lm = inputs.get("landmarks5")
            lm = None if lm is None else torch.as_tensor(lm)
            placed = amp_net_lp_regions_to_image(self, torch.as_tensor(np.asarray(cams)), lm, image_size)
            return placed.amax(dim=1).numpy()
        if not target.startswith("ap_") or self.ap is None or "landmarks5" not in inputs:
            return cams
        k = AP_PATCH_NAMES.index(target[3:])
        grid = image_size // 8
        out = []
        for cam, lm in zip(cams, inputs["landmarks5"]):
            # grid cells → pixels (stride 8)
            boxes = amp_net_geometry(lm, image_size, grid, patch_size=self.ap.region_size)["ap"] * 8
            out.append(paste_patch_cam(cam, boxes[k], image_size))
        return np.stack(out)

    def parts(self) -> dict[str, nn.Module]:
        """``pre_extractor``, ``lp``, ``ap``, ``gp`` (as the published per-part figures) and ``fusion``."""
        parts: dict[str, nn.Module] = {"pre_extractor": self.pre_extractor}
        for name in ("lp", "ap", "gp"):
            module = getattr(self, name)
            if module is not None:
                parts[name] = module
        parts["fusion"] = self.fusion
        return parts


# --------------------------------------------------------------------------------------------------
# Paper card.

AMP_NET_CITATION = Citation(
    ("Hanwei Liu", "Huiling Cai", "Qingcheng Lin", "Xuefeng Li", "Hui Xiao"),
    "Adaptive multilayer perceptual attention network for facial expression recognition",
    "IEEE TCSVT",
    2022,
    paper_file="amp-net.txt",
)

_PUBLIC_CODE_NOTE = "public code: the paper's code (github.com/liuhw01/AMP-Net) keeps the best test-set epoch"

AMP_NET_ABLATIONS = (
    AblationGrid(
        "amp-net-modules",
        "amp-net",
        "amp-net.txt Tables I–II",
        "RAF-DB, no pre-training",
        ablation_rows(
            ("GP+LP+AP (AMP-Net)", {"branches": ("gp", "lp", "ap")}, 88.06),
            ("GP (gate-OSA)", {"branches": ("gp",)}, 86.32),
            ("GP (OSA)", {"branches": ("gp",), "gp_block": "osa"}, 86.08),
            ("LP", {"branches": ("lp",)}, 86.02),
            ("AP", {"branches": ("ap",)}, 84.33),
            ("GP+LP", {"branches": ("gp", "lp")}, 87.23),
            ("GP+AP", {"branches": ("gp", "ap")}, 86.77),
            ("LP+AP", {"branches": ("lp", "ap")}, 86.67),
        ),
    ),
    AblationGrid(
        "amp-net-lp-scheme",
        "amp-net",
        "amp-net.txt Table III (LP module alone)",
        "RAF-DB, no pre-training",
        ablation_rows(
            ("scheme 4: PBD + LBP (proposed)", {"branches": ("lp",), "lp_scheme": 4}, 86.02),
            ("scheme 2: equal 2×2 split", {"branches": ("lp",), "lp_scheme": 2}, 84.65),
            ("scheme 1: PBD + ROI Align", {"branches": ("lp",), "lp_scheme": 1}, 79.35),
            ("scheme 3: modified PBD + LBP", {"branches": ("lp",), "lp_scheme": 3}, 85.27),
        ),
    ),
    AblationGrid(
        "amp-net-region-size",
        "amp-net-r18",
        "amp-net.txt Fig. 8(a) (only L = 10 printed)",
        "RAF-DB",
        ablation_rows(
            ("L = 10", {"region_size": 10}, 88.06),
            ("L = 6", {"region_size": 6}, None),
            ("L = 14", {"region_size": 14}, None),
            ("L = 8", {"region_size": 8}, None),
            ("L = 12", {"region_size": 12}, None),
        ),
    ),
    AblationGrid(
        "amp-net-lambda",
        "amp-net-r18",
        "amp-net.txt Fig. 8(b) (only λ = 0.5 printed)",
        "RAF-DB",
        ablation_rows(
            ("λ = 0.5", {"lam": 0.5}, 88.06),
            ("λ = 0.2", {"lam": 0.2}, None),
            ("λ = 0.8", {"lam": 0.8}, None),
        ),
    ),
)

AMP_NET_CHECKPOINTS = (
    CheckpointFormat(
        "ampnet-official",
        map_ampnet_official_key,
        "public AMP-Net checkpoints (VGGFace2 pre-training with 8,631-way heads, or fine-tuned); "
        "public modules the forward never uses map to None",
        heads=("fusion.gp_head", "fusion.lap_head"),
    ),
)

AMP_NET_CARD = PaperCard(
    attention=amp_net_attention,  # the network's own attention maps (_attention.py)
    citation=AMP_NET_CITATION,
    claims=Claims(
        params={"total": 105.67e6},
        gmacs={"total": 1.69},
        reference_params={"total": 59.4e6, "pre_extractor": 1.35e6, "lp": 42.31e6, "ap": 10.58e6, "gp": 3.48e6},
        reference_gmacs={"pre_extractor": 1.69, "lp": 2.06, "ap": 0.26, "gp": 0.71},
        notes=(
            "the paper's 105.67 M (§IV-B) counts modules the public forward never uses (layer4_2_*, "
            "Occlusionlayer*, fc_1_1, fc_2_1, fc_4, fc_4_1); ferlib builds only the forward-used 59.4 M",
            "§IV-B states 1.69 FLOPs without a unit or scope; it equals the pre-extractor's GMACs, while the "
            "whole public forward is about 4.72 GMACs at 224 px",
            "reference figures: measured on the public code's forward, per part",
        ),
    ),
    results=(
        ReportedResult(
            "RAF-DB", 89.25, "amp-net.txt Table IV (VGGFace2 pre-training)", "VGGFace2", True, _PUBLIC_CODE_NOTE
        ),
        ReportedResult("AffectNet-7", 64.54, "amp-net.txt abstract", "VGGFace2", True, _PUBLIC_CODE_NOTE),
        ReportedResult("AffectNet-8", 61.74, "amp-net.txt abstract", "VGGFace2", True, _PUBLIC_CODE_NOTE),
        ReportedResult("SFEW 2.0", 61.17, "amp-net.txt abstract", "VGGFace2", True, _PUBLIC_CODE_NOTE),
        ReportedResult("FER-2013", 74.48, "amp-net.txt abstract", "VGGFace2", True, _PUBLIC_CODE_NOTE),
        ReportedResult("FED-RO", 71.75, "amp-net.txt abstract", "VGGFace2", True, _PUBLIC_CODE_NOTE),
        ReportedResult("RAF-DB (no pre-training)", 88.06, "amp-net.txt Table II", "none", True, _PUBLIC_CODE_NOTE),
    ),
    recipe="amp-net",
    ablations=AMP_NET_ABLATIONS,
    primary_cam_target="gp",
    checkpoint_formats=AMP_NET_CHECKPOINTS,
    region_views=(AMP_NET_VIEW,),
)

AMP_NET_R18_CARD = PaperCard(
    attention=amp_net_attention,  # the network's own attention maps (_attention.py)
    citation=AMP_NET_CITATION,
    claims=Claims(
        reference_params={"lp": 42.31e6, "ap": 10.58e6, "gp": 3.48e6},
        reference_gmacs={"lp": 2.06, "ap": 0.26, "gp": 0.71},
        notes=(
            "the paper gives no parameter count for the ResNet-18 variant (Tables IV-V)",
            "reference figures: measured on the public code's forward, per part",
        ),
    ),
    results=(
        ReportedResult(
            "RAF-DB", 88.84, "amp-net.txt Table IV, AMP-Net* (ResNet-18)", "VGGFace2", True, _PUBLIC_CODE_NOTE
        ),
        ReportedResult("AffectNet-7", 64.32, "amp-net.txt Table V, AMP-Net*", "VGGFace2", True, _PUBLIC_CODE_NOTE),
        ReportedResult("AffectNet-8", 61.39, "amp-net.txt Table V, AMP-Net*", "VGGFace2", True, _PUBLIC_CODE_NOTE),
    ),
    recipe="amp-net",
    primary_cam_target="gp",
    checkpoint_formats=AMP_NET_CHECKPOINTS,
    region_views=(),
)


@register_model(
    "amp-net",
    paper="Liu et al., Adaptive multilayer perceptual attention network for FER (amp-net.txt)",
    inputs=("landmarks5",),
    card=AMP_NET_CARD,
)
def amp_net(num_classes: int = 7, **variant: Any) -> AMPNet:
    """AMP-Net with a ResNet-34 pre-extractor (GP gate-OSA + LP PBD/LBP + AP, λ = 0.5)."""
    return AMPNet(num_classes, depth=34, **variant)


@register_model(
    "amp-net-r18",
    paper="amp-net.txt Tables IV-V, 'AMP-Net*' (ResNet-18 backbone)",
    inputs=("landmarks5",),
    card=AMP_NET_R18_CARD,
)
def amp_net_r18(num_classes: int = 7, **variant: Any) -> AMPNet:
    """AMP-Net with a ResNet-18 pre-extractor (the paper's 'AMP-Net*')."""
    return AMPNet(num_classes, depth=18, **variant)
