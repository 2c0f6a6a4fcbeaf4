"""Multiple Attention Network: RASnet + ERSnet with the MA block (man.txt §III).

Gan, Chen, Yang & Xu, "Multiple attention network for facial expression recognition", IEEE Access 2020.

**RASnet** (region-aware sub-net, §III-A, Table 1, Eq. 1) regresses N = 8 region masks from the
image with conv + fc layers:

====  ================  ======  ======  ======  ===  =====================================
#     layer             kernel  output  stride  pad  size at 224 px input
====  ================  ======  ======  ======  ===  =====================================
1-2   conv + ReLU, max  5 / 2   64      3 / 2   1    ⌊(224+2−5)/3⌋+1 = 74 → pool 37
3-4   conv + ReLU, max  5 / 2   128     3 / 2   1    ⌊(37+2−5)/3⌋+1 = 12 → pool 6
5-6   conv + ReLU, max  3 / 2   128     1 / 2   0    6−3+1 = 4 → pool 2
7     fc                        2048                 input 128·2·2 = 512
8     fc                        N·A·B                8·14·14 = 1568
9-10  reshape, sigmoid                               N×14×14 masks in (0, 1)
====  ================  ======  ======  ======  ===  =====================================

Table 1 prints 1056 outputs for layer 8, which cannot be reshaped to its own "8×14×14" (1568):
ferlib treats 1056 as a typo and uses N·A·B = 1568. Pools use Caffe's ceil rounding (the paper's
framework; identical to floor at 224 px). Table 1 marks a ReLU only after the convolutions, so the
two fc layers are linear, as printed. RASnet is trained with the Euclidean loss (Eqs. 2–3)
against the ground-truth masks of :mod:`ferlib.models.man_masks` (Table 2, Eq. 4, λ = 1/16).

**ERSnet** (expression recognition sub-net, §III-B): VGG16 — five conv blocks and three fc layers
(ReLU, dropout 0.5), the last fc resized to the classes — with the **MA block** between conv
blocks 4 and 5, on V = 512×14×14:

* hybrid attention (Eq. 5): N sub-branches; sub-branch r computes ``t = ω₂(V ⊗ M_r) + b₂``
  (region attention, then a 1×1 convolution "buffer" with bias) and ``f_r = t ⊙ SE(t)``
  (:class:`~ferlib.models.blocks.SEModule`, reduction 16);
* weight learning (§III-B-2): five layers; the paper says only that the first two reduce the
  channels and the size, the third is an fc to N and the last two turn the vector into a
  normalised probability vector. ferlib: 1×1 conv 512 → 128 + ReLU, 2×2 max-pool (14 → 7),
  fc 128·7·7 → N, softmax → q;
* fusion (Eq. 6): ``F = Σ_r q_r f_r``, then conv block 5.

Initialisation: VGG16's conv blocks come from torchvision (``weights=None``; load VGG-Face weights
explicitly for the paper's setting: ``--init vgg_face_dag.pth --init-format vgg-face``), every other
layer (RASnet, MA block, the three fc layers) is Xavier-initialised as in §IV-B ("Xavier was used to
initialize the remaining layers"). Two choices of ferlib's on top, neither changing the paper's loss,
learning rate or optimiser (docs/training.md, "MAN, LAN and the controls", has the measurements):

* **RASnet's mean-mask prior.** With the last bias at zero every mask starts at 0.5 while the
  ground-truth masks (Table 2) are mostly 0; the summed Euclidean loss (Eq. 2) then drives the fc
  layers into saturation within a few SGD steps at lr 1e-3, after which RASnet outputs the same
  0/1 pattern for every face. :meth:`MultipleAttentionNetwork.data_init` sets the last bias to the
  logit of the training set's mean mask (:meth:`RASnet.set_mask_prior`), so RASnet starts by
  predicting the mean mask and learns the per-image deviation from it.
* **The MA block keeps the signal's scale.** Each sub-branch multiplies V by a mask (mean ≈ 0.5 at
  initialisation, smaller for the mean-mask prior), the SE gate halves it again (sigmoid(0)), and
  the weighted sum of N independent buffers with q ≈ 1/N shrinks it by √N: with plain Xavier
  buffers F is about 0.09× V at initialisation, so a VGG-Face conv block 5 would see a tenth of the
  activations it was trained on. ferlib scales each buffer's Xavier weights (man.txt §III-B-1: "a
  1×1 convolution layer that serves as a buffer") by ``2·√N / rms(M_r)`` so that F ≈ V in scale
  (:meth:`MABlock.match_scale`).

**Training** (§III-C) is two-stage: first RASnet alone (ERSnet frozen) with the mask loss, then
ERSnet alone (RASnet frozen, a mask generator) with cross-entropy (Eq. 7). The engine drives this
with :meth:`MultipleAttentionNetwork.stages` and :meth:`MultipleAttentionNetwork.set_stage`; a
``"joint"`` stage (everything trainable, loss = CE + mask loss) is also available.

Landmarks are needed only for the mask loss: ``forward`` never uses them (RASnet predicts the
masks), ``loss`` in the ``rasnet``/``joint`` stages takes ``batch["landmarks8"]`` or, where those
are missing or NaN, derives them from ``batch["landmarks5"]`` with
:func:`~ferlib.models.man_masks.landmarks5_to_8`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ferlib.models._attention import man_attention
from ferlib.models._base import FERModel
from ferlib.models._card import (
    AblationGrid,
    BoxLayer,
    Citation,
    Claims,
    PaperCard,
    RegionPanel,
    RegionView,
    ReportedResult,
    ablation_rows,
)
from ferlib.models._weight_layouts import vgg16_stage_map
from ferlib.models.baselines import VGG16_CONV5_3_RELU, vgg16_stages
from ferlib.models.blocks import SEModule
from ferlib.models.losses import cross_entropy
from ferlib.models.man_masks import (
    MAN_REGION_NAMES,
    REGION_SIZES,
    ground_truth_masks,
    landmarks5_to_8,
    region_boxes,
)
from ferlib.models.output import ModelOutput
from ferlib.models.registry import register_model

#: Clamp of the mean-mask prior before its logit (:meth:`RASnet.set_mask_prior`): logit(0.01) ≈ −4.6.
MASK_PRIOR_EPS = 0.01
#: At most this many training samples estimate the mean mask in :meth:`MultipleAttentionNetwork.data_init`.
MASK_PRIOR_SAMPLES = 4096

#: The paper's two training stages, in order (§III-C).
MAN_STAGES: tuple[str, ...] = ("rasnet", "ersnet")
_ALL_STAGES = MAN_STAGES + ("joint",)


def rasnet_feature_side(image_size: int) -> int:
    """Side of RASnet's last pooled map for a square ``image_size`` input (Table 1 arithmetic).

    224 → 74 → 37 → 12 → 6 → 4 → 2, so the first fc layer takes 128·2·2 = 512 inputs.
    """

    def conv(s: int, k: int, stride: int, pad: int) -> int:
        return (s + 2 * pad - k) // stride + 1

    def pool(s: int) -> int:  # 2×2, stride 2, Caffe's ceil rounding
        return math.ceil((s - 2) / 2) + 1

    side = pool(conv(image_size, 5, 3, 1))
    side = pool(conv(side, 5, 3, 1))
    side = pool(conv(side, 3, 1, 0))
    if side < 1:
        raise ValueError(f"RASnet: a {image_size} px input is too small for Table 1's layers")
    return side


class RASnet(nn.Module):
    """Region-aware sub-net (man.txt Table 1, Eq. 1): image → N masks of A×B in (0, 1)."""

    def __init__(self, num_regions: int = 8, image_size: int = 224, mask_size: tuple[int, int] = (14, 14)):
        super().__init__()
        self.num_regions = num_regions
        self.mask_size = tuple(mask_size)
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 5, stride=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            nn.Conv2d(64, 128, 5, stride=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            nn.Conv2d(128, 128, 3, stride=1, padding=0),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2, ceil_mode=True),
        )
        side = rasnet_feature_side(image_size)
        self.fc1 = nn.Linear(128 * side * side, 2048)
        self.fc2 = nn.Linear(2048, num_regions * self.mask_size[0] * self.mask_size[1])

    @torch.no_grad()
    def set_mask_prior(self, mean_masks: torch.Tensor, eps: float = MASK_PRIOR_EPS) -> None:
        """Set the last fc bias to ``logit(mean_masks)`` (N×A×B, clamped to [eps, 1 − eps]).

        ferlib's choice, not the paper's: RASnet then starts by predicting the training set's mean
        mask instead of 0.5 everywhere (see the module docstring). The clamp keeps the sigmoid's
        gradient alive at positions no training mask covers.
        """
        want = (self.num_regions, *self.mask_size)
        if tuple(mean_masks.shape) != want:
            raise ValueError(f"RASnet.set_mask_prior: mean_masks must be {want}, got {tuple(mean_masks.shape)}")
        p = mean_masks.to(self.fc2.bias).clamp(eps, 1 - eps)
        self.fc2.bias.copy_(torch.log(p / (1 - p)).flatten())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.features(images), 1)
        x = self.fc2(self.fc1(x))
        return torch.sigmoid(x.reshape(x.shape[0], self.num_regions, *self.mask_size))


class RegionAttentionBranch(nn.Module):
    """One hybrid-attention sub-branch (Eq. 5): ``t = conv1×1(V ⊗ M_r)``, output ``t ⊙ SE(t)``."""

    def __init__(self, channels: int = 512, se_reduction: int = 16):
        super().__init__()
        self.buffer = nn.Conv2d(channels, channels, 1, bias=True)
        self.se = SEModule(channels, reduction=se_reduction)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.se(self.buffer(features * mask))


class RegionWeightBranch(nn.Module):
    """Weight-learning branch: reduce channels and size, fc → N, softmax → q (§III-B-2)."""

    def __init__(
        self,
        channels: int = 512,
        num_regions: int = 8,
        feature_size: tuple[int, int] = (14, 14),
        reduced_channels: int = 128,
    ):
        super().__init__()
        self.reduce_channels = nn.Sequential(nn.Conv2d(channels, reduced_channels, 1), nn.ReLU(inplace=True))
        self.reduce_size = nn.MaxPool2d(2, 2, ceil_mode=True)
        pooled = [math.ceil((s - 2) / 2) + 1 for s in feature_size]
        self.fc = nn.Linear(reduced_channels * pooled[0] * pooled[1], num_regions)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.reduce_size(self.reduce_channels(features))
        return torch.softmax(self.fc(torch.flatten(x, 1)), dim=1)


class MABlock(nn.Module):
    """Multiple attention block (Fig. 2, Eqs. 5–6): ``F = Σ_r q_r f_r(V, M_r)``."""

    def __init__(
        self,
        channels: int = 512,
        num_regions: int = 8,
        feature_size: tuple[int, int] = (14, 14),
        se_reduction: int = 16,
        reduced_channels: int = 128,
    ):
        super().__init__()
        self.branches = nn.ModuleList(RegionAttentionBranch(channels, se_reduction) for _ in range(num_regions))
        self.weights = RegionWeightBranch(channels, num_regions, feature_size, reduced_channels)
        self.buffer_gains = [1.0] * num_regions  # the factor each buffer's Xavier weights carry now

    @torch.no_grad()
    def match_scale(self, mask_rms: torch.Tensor | float) -> list[float]:
        """Scale each buffer's (Xavier) weights so that F keeps V's scale at initialisation.

        ``mask_rms``: the root-mean-square of each region's mask at initialisation (N values, or
        one for all). Sub-branch r passes V ⊗ M_r (scale × rms(M_r)) through the buffer (× gain)
        and the SE gate (× 0.5 = sigmoid(0) at initialisation); the fusion Σ q_r f_r of N
        independent branches with q_r ≈ 1/N scales by 1/√N. The gain ``2·√N / rms(M_r)`` undoes
        the three. Call it before training (it rescales relative to the current gain).
        """
        n = len(self.branches)
        rms = torch.as_tensor(mask_rms, dtype=torch.float64).flatten().expand(n) if n else torch.zeros(0)
        gains = [2.0 * math.sqrt(n) / max(float(r), 1e-3) for r in rms]
        for branch, old, new in zip(self.branches, self.buffer_gains, gains):
            branch.buffer.weight.mul_(new / old)
        self.buffer_gains = gains
        return gains

    def forward(self, features: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.weights(features)  # B×N
        fused = sum(
            q[:, r, None, None, None] * branch(features, masks[:, r : r + 1]) for r, branch in enumerate(self.branches)
        )
        return fused, q


def _xavier_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class MultipleAttentionNetwork(FERModel):
    """RASnet + ERSnet (VGG16 with the MA block between conv blocks 4 and 5), man.txt §III.

    ``aux["masks"]`` holds RASnet's masks (B×N×14×14) and ``aux["region_weights"]`` the fusion
    weights q (B×N). ``stage`` picks which sub-net trains and which loss :meth:`loss` computes.
    """

    card_name = "man"

    def __init__(
        self,
        num_classes: int = 7,
        num_regions: int = 8,
        image_size: int = 224,
        mask_sizes: str = "table2",
        se_reduction: int = 16,
        weight_channels: int = 128,
        stage: str = "joint",
    ):
        super().__init__()
        if mask_sizes not in REGION_SIZES:
            raise ValueError(f"MAN: mask_sizes must be one of {sorted(REGION_SIZES)}, got {mask_sizes!r}")
        if num_regions != len(MAN_REGION_NAMES):
            raise ValueError(
                f"MAN: num_regions must be {len(MAN_REGION_NAMES)} "
                f"(the Table 2 regions: {', '.join(MAN_REGION_NAMES)}), "
                f"got {num_regions}"
            )
        if image_size % 16:
            raise ValueError(
                f"MAN: image_size must be a multiple of 16 (VGG16 stride at conv block 4), got {image_size}"
            )
        self.image_size = image_size
        self.mask_sizes = mask_sizes
        feature_size = (image_size // 16, image_size // 16)
        self.rasnet = RASnet(num_regions, image_size, feature_size)
        self.blocks1_4, self.block5, self.avgpool, self.classifier = vgg16_stages()
        self.classifier[6] = nn.Linear(4096, num_classes)
        self.ma_block = MABlock(512, num_regions, feature_size, se_reduction, weight_channels)
        #: F (Eq. 6) as one tensor, the CAM target ``ma_block`` (the MA block itself returns (F, q), which no
        #: CAM hook can take); no parameters, so checkpoints are unchanged.
        self.ma_output = nn.Identity()
        for module in (self.rasnet, self.ma_block, self.classifier):
            _xavier_init(module)
        self.ma_block.match_scale(0.5)  # an uninitialised RASnet's masks are ≈ sigmoid(0) = 0.5
        self.num_classes = num_classes
        self.mask_prior: dict[str, Any] | None = None
        self.stage = "joint"
        self.set_stage(stage)

    # -- sub-nets and stages ---------------------------------------------------------------------
    def ersnet_modules(self) -> list[nn.Module]:
        """The ERSnet: VGG16 conv blocks, MA block and classifier."""
        return [self.blocks1_4, self.ma_block, self.block5, self.classifier]

    def stages(self) -> tuple[str, ...]:
        """The paper's training stages in order: ``("rasnet", "ersnet")`` (§III-C)."""
        return MAN_STAGES

    def set_stage(self, stage: str) -> MultipleAttentionNetwork:
        """Choose what trains and what :meth:`loss` returns.

        ``"rasnet"``: only RASnet's parameters require gradients, loss = mask loss (Eqs. 2–3).
        ``"ersnet"``: only the ERSnet's, loss = cross-entropy (Eq. 7).
        ``"joint"``: everything, loss = cross-entropy + mask loss.
        """
        if stage not in _ALL_STAGES:
            raise ValueError(f"MAN.set_stage: stage must be one of {_ALL_STAGES}, got {stage!r}")
        self.stage = stage
        for p in self.rasnet.parameters():
            p.requires_grad_(stage in ("rasnet", "joint"))
        for module in self.ersnet_modules():
            for p in module.parameters():
                p.requires_grad_(stage in ("ersnet", "joint"))
        return self

    @torch.no_grad()
    def data_init(self, batches: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
        """Initialise from the training set: RASnet's mean-mask prior and the MA block's scale.

        ``batches`` are collated training batches with ``landmarks8``/``landmarks5``; at most
        :data:`MASK_PRIOR_SAMPLES` samples with usable landmarks are averaged into the mean
        ground-truth mask (Table 2, Eq. 4), whose logit becomes RASnet's last bias
        (:meth:`RASnet.set_mask_prior`) and whose per-region rms sets the buffers' gain
        (:meth:`MABlock.match_scale`). Returns a summary (also kept as ``self.mask_prior``), or
        ``None`` when no batch had usable landmarks (the model is left unchanged).
        """
        device = self.rasnet.fc2.bias.device
        total: torch.Tensor | None = None
        n = 0
        for batch in batches:
            target, valid = self.target_masks(dict(batch), device)
            if valid.any():
                part = target[valid].double().sum(0)
                total = part if total is None else total + part
                n += int(valid.sum())
            if n >= MASK_PRIOR_SAMPLES:
                break
        if total is None or n == 0:
            return None
        mean = (total / n).float()
        self.rasnet.set_mask_prior(mean)
        prior = torch.sigmoid(self.rasnet.fc2.bias.reshape(mean.shape))
        gains = self.ma_block.match_scale(prior.pow(2).mean(dim=(1, 2)).sqrt())
        self.mask_prior = {
            "samples": n,
            "mean_mask_value": round(float(mean.mean()), 6),
            "region_mean": [round(float(v), 6) for v in mean.mean(dim=(1, 2))],
            "buffer_gains": [round(g, 4) for g in gains],
            "eps": MASK_PRIOR_EPS,
        }
        return self.mask_prior

    # -- forward and losses ----------------------------------------------------------------------
    def forward(
        self, images: torch.Tensor, landmarks5: torch.Tensor | None = None, landmarks8: torch.Tensor | None = None
    ) -> ModelOutput:
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"MAN: built for {self.image_size}×{self.image_size} inputs (RASnet's fc size depends on it), "
                f"got {tuple(images.shape[-2:])}; create_model('man', image_size=...) to change"
            )
        masks = self.rasnet(images)
        if self.stage == "rasnet":
            # The RASnet stage's loss (Eqs. 2-3) needs only the masks: ERSnet (about 99.6 % of the
            # compute) is skipped and the logits are zeros, so accuracy in this stage is chance by
            # construction (the trainer selects epochs only in the last stage). The "ersnet" and
            # "joint" stages, and a freshly built model ("joint"), run the whole network.
            logits = images.new_zeros(images.shape[0], self.num_classes)
            return ModelOutput(logits=logits, aux={"masks": masks})
        features = self.blocks1_4(images)
        fused, q = self.ma_block(features, masks)
        x = self.avgpool(self.block5(self.ma_output(fused)))
        logits = self.classifier(torch.flatten(x, 1))
        return ModelOutput(logits=logits, aux={"masks": masks, "region_weights": q})

    def target_masks(self, batch: dict[str, Any], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Ground-truth masks for ``batch`` and a B-vector telling which samples have usable landmarks.

        Uses ``batch["landmarks8"]``; a sample whose 8 points are missing or NaN falls back to
        points derived from ``batch["landmarks5"]``.
        """
        lm8 = batch.get("landmarks8")
        lm5 = batch.get("landmarks5")
        if lm8 is None and lm5 is None:
            raise ValueError(
                "MAN mask loss (ferlib/models/man.py) needs batch['landmarks8'] (B×8×2, man.txt l1..l8) "
                "or batch['landmarks5'] (B×5×2) to build the Table 2 ground-truth masks; add landmarks to "
                "the dataset (ferlib landmarks extraction) or train only the 'ersnet' stage"
            )
        if lm8 is not None:
            lm8 = lm8.to(device=device, dtype=torch.float32)
            if lm5 is not None:
                derived = landmarks5_to_8(lm5.to(device=device, dtype=torch.float32))
                ok8 = torch.isfinite(lm8).all(dim=(1, 2))
                lm8 = torch.where(ok8[:, None, None], lm8, derived)
        else:
            lm8 = landmarks5_to_8(lm5.to(device=device, dtype=torch.float32))
        valid = torch.isfinite(lm8).all(dim=(1, 2))
        side = self.image_size // 16
        masks = ground_truth_masks(
            torch.nan_to_num(lm8),
            (self.image_size, self.image_size),
            (side, side),
            region_sizes=REGION_SIZES[self.mask_sizes],
        )
        return masks, valid

    def mask_loss(self, output: ModelOutput, batch: dict[str, Any]) -> torch.Tensor:
        """Euclidean loss, Eqs. 2–3: mean over samples of Σ_r Σ_ij (M_r(i,j) − M̂_r(i,j))².

        Samples without usable landmarks are left out of the mean (K counts the others); a batch
        with none gives 0 (still attached to the graph).
        """
        predicted = output.aux["masks"]
        target, valid = self.target_masks(batch, predicted.device)
        per_sample = (predicted - target).pow(2).flatten(1).sum(1)  # Eq. 2
        weights = valid.to(per_sample.dtype)
        return (per_sample * weights).sum() / weights.sum().clamp(min=1.0)  # Eq. 3

    def loss(self, output: ModelOutput, batch: dict[str, Any]) -> torch.Tensor:
        """The current stage's loss: mask loss (``rasnet``), CE (``ersnet``) or their sum (``joint``)."""
        if self.stage == "rasnet":
            return self.mask_loss(output, batch)
        if self.stage == "ersnet":
            return cross_entropy(output, batch)
        return cross_entropy(output, batch) + self.mask_loss(output, batch)

    # -- explanation and accounting ----------------------------------------------------------------
    @property
    def torchvision_stages(self) -> dict[str, str | None]:
        """Outside weights (``load_checkpoint(source="vgg-face")`` or ``"torchvision"`` VGG16): the five
        conv blocks of the ERSnet only. man.txt §IV-B: "VGG-Face [...] was used to initialize the five
        conv blocks of the backbone of ERSnet. Xavier was used to initialize the remaining layers", so
        fc6/fc7 are left out on purpose (they keep their Xavier init), as are RASnet and the MA block."""
        return vgg16_stage_map("blocks1_4", "block5", classifier=None, head=None)

    def cam_targets(self) -> dict[str, nn.Module]:
        """``conv5_3``: the last conv activation of block 5 (guided Grad-CAM of Fig. 5);
        ``ma_block``: the fused MA-block output F (Eq. 6), through :attr:`ma_output`."""
        return {"conv5_3": self.block5[VGG16_CONV5_3_RELU], "ma_block": self.ma_output}

    def parts(self) -> dict[str, nn.Module]:
        return {
            "rasnet": self.rasnet,
            "blocks1_4": self.blocks1_4,
            "ma_block": self.ma_block,
            "block5": self.block5,
            "classifier": self.classifier,
        }


# -- region view (the explorer, notebook 02) -----------------------------------------------------------


def man_region_geometry(
    landmarks5: Any, image_size: int = 224, grid_size: int = 28, patch_size: int = 10
) -> dict[str, np.ndarray]:
    """The 8 points l1..l8 derived from the 5 and the Table 2 boxes around them (pixels, xyxy)."""
    lm = torch.as_tensor(np.asarray(landmarks5, dtype=np.float32))[None]
    lm8 = landmarks5_to_8(lm)
    xywh = region_boxes(lm8, (image_size, image_size))[0]
    xyxy = torch.cat([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], dim=1)
    return {"landmarks8": lm8[0].numpy(), "pixel_boxes": xyxy.numpy()}


def man_region_panels(
    geo: Mapping[str, Any], landmarks5: Any, image_size: int, grid_size: int
) -> tuple[RegionPanel, ...]:
    """The eight points on the face; the Table 2 regions (the whole face, region 1, left out)."""
    names = tuple(f"l{i}" for i in range(1, 9))
    return (
        RegionPanel("face", "8 points derived from the 5", points=((geo["landmarks8"], names, "#FFD400"),)),
        RegionPanel(
            "face",
            "Table 2 regions",
            boxes=(BoxLayer(geo["pixel_boxes"][1:], tuple(MAN_REGION_NAMES[1:]), 1.0, "thin"),),
        ),
    )


MAN_VIEW = RegionView("MAN: Table 2 regions", man_region_geometry, man_region_panels)

MAN_CARD = PaperCard(
    attention=man_attention,  # the network's own attention maps (_attention.py)
    citation=Citation(
        ("Yanling Gan", "Jingying Chen", "Zongkai Yang", "Luhui Xu"),
        "Multiple attention network for facial expression recognition",
        "IEEE Access",
        2020,
        "10.1109/ACCESS.2020.2963913",
        "man.txt",
    ),
    claims=Claims(
        ferlib_params_7cls=141_393_647,
        notes=(
            "man.txt reports no parameter count",
            "Table 1 prints 1056 outputs for RASnet's fc8; ferlib uses N·A·B = 8·14·14 = 1568",
        ),
        facts={
            "rasnet_fc_input_at_224": 512,
            "rasnet_table1_fc8_outputs_printed": 1056,
            "rasnet_fc8_outputs_used": 1568,
        },
    ),
    results=(
        ReportedResult("RAF-DB", 85.69, "man.txt Table 3 (VGG-Face initialisation; 75.59 from scratch)", "VGG-Face"),
        ReportedResult(
            "RAF-DB (text)",
            85.82,
            "man.txt §IV-C text",
            "VGG-Face",
            note="the text of §IV-C says 85.82 where Table 3 and the abstract say 85.69",
        ),
        ReportedResult("RAF-DB (from scratch)", 75.59, "man.txt Table 3", "none"),
        ReportedResult("CK+", 96.28, "man.txt Table 5 (10-fold)", "VGG-Face"),
    ),
    recipe="man",
    ablations=(
        AblationGrid(
            "man-baselines",
            "man",
            "man.txt Table 3 (from scratch)",
            "RAF-DB, trained from scratch",
            ablation_rows(
                ("RASnet + ERSnet (MAN)", {}, 75.59),
                ("VGG16", {}, 73.63, "vgg16"),
                ("VGG16 + SE", {}, 73.27, "vgg16-se"),
            ),
        ),
    ),
    primary_cam_target="conv5_3",
    region_views=(MAN_VIEW,),
)


@register_model(
    "man",
    paper="Gan et al., Multiple attention network (RASnet + ERSnet), man.txt §III",
    card=MAN_CARD,
)
def man(
    num_classes: int = 7,
    num_regions: int = 8,
    image_size: int = 224,
    mask_sizes: str = "table2",
    se_reduction: int = 16,
    weight_channels: int = 128,
    stage: str = "joint",
) -> MultipleAttentionNetwork:
    """Multiple Attention Network (man.txt): RASnet masks + VGG16 ERSnet with the MA block."""
    return MultipleAttentionNetwork(
        num_classes,
        num_regions=num_regions,
        image_size=image_size,
        mask_sizes=mask_sizes,
        se_reduction=se_reduction,
        weight_channels=weight_channels,
        stage=stage,
    )
