"""AMP-Net's public checkpoint names ↔ ferlib's (../shared/checkpoint-formats/ampnet-official-*.json).

The public code (github.com/liuhw01/AMP-Net) saves a DataParallel state dict whose names follow its
own module layout (``layer3_<stage>_<region>``, ``stage<k>.OSA<k>_1...``); these pure functions map
them one to one onto :class:`ferlib.models.amp_net.AMPNet`'s names, used by the card's
``ampnet-official`` checkpoint format.
"""

from __future__ import annotations

import re

import torch.nn as nn

#: Public modules the public forward never calls (the paper's parameter count includes them).
AMPNET_OFFICIAL_UNUSED_PREFIXES: tuple[str, ...] = (
    "layer4_2_",
    "Occlusionlayer.",
    "Occlusionlayer1.",
    "fc_1_1.",
    "fc_2_1.",
    "fc_4.",
    "fc_4_1.",
)

_OSA_LAYER = re.compile(r"^stage(\d)\.OSA\1_1\.layers\.(\d+)\.OSA\1_1_\2/(conv|norm|pw_cbam\.sigatten\.fc2)\.(.+)$")
_OSA_CONCAT = re.compile(r"^stage(\d)\.OSA\1_1\.concat\.OSA\1_1_concat/(conv|norm)\.(.+)$")
_OSA_ESE = re.compile(r"^stage(\d)\.OSA\1_1\.ese\.fc\.(.+)$")
_LP_BLOCK = re.compile(r"^layer3_([12])_([1-4])\.(\d+)\.(.+)$")
_AP_BLOCK = re.compile(r"^layer4_1_([1-5])\.(\d+)\.(.+)$")
_FC = {"fc_1.": "fusion.lp_fc.", "fc_2.": "fusion.ap_fc.", "fc_5.": "fusion.lap_head.", "fc_3.": "fusion.gp_head."}


def map_ampnet_official_key(key: str) -> str | None:
    """ferlib name of a public AMP-Net checkpoint key (``module.`` optional), or ``None`` for the
    public modules the forward never uses (:data:`AMPNET_OFFICIAL_UNUSED_PREFIXES`).

    Raises ``KeyError`` for a name that is not part of the public layout at all.
    """
    k = key[len("module.") :] if key.startswith("module.") else key
    if k.startswith(AMPNET_OFFICIAL_UNUSED_PREFIXES):
        return None
    if k.startswith(("conv1.", "bn1.")):
        return f"pre_extractor.stem.{k}"
    if k.startswith(("layer1.", "layer2.")):
        return f"pre_extractor.{k}"
    m = _LP_BLOCK.match(k)
    if m:
        stage, region, block, rest = int(m[1]), int(m[2]), int(m[3]), m[4]
        return f"lp.branches.{region - 1}.blocks.{2 * (stage - 1) + block}.{rest}"
    m = _AP_BLOCK.match(k)
    if m:
        return f"ap.branches.{int(m[1]) - 1}.blocks.{m[2]}.{m[3]}"
    m = _OSA_LAYER.match(k)
    if m:
        sub = {"conv": "conv", "norm": "norm", "pw_cbam.sigatten.fc2": "gate.fc"}[m[3]]
        return f"gp.blocks.{int(m[1]) - 2}.layers.{m[2]}.{sub}.{m[4]}"
    m = _OSA_CONCAT.match(k)
    if m:
        return f"gp.blocks.{int(m[1]) - 2}.concat.{m[2]}.{m[3]}"
    m = _OSA_ESE.match(k)
    if m:
        return f"gp.blocks.{int(m[1]) - 2}.ese.fc.{m[2]}"
    for prefix, target in _FC.items():
        if k.startswith(prefix):
            return target + k[len(prefix) :]
    raise KeyError(
        f"{key!r} is not a key of the public AMP-Net checkpoint layout "
        "(see ../shared/checkpoint-formats/ampnet-official-*.json)"
    )


_F_LP = re.compile(r"^lp\.branches\.(\d)\.blocks\.(\d)\.(.+)$")
_F_AP = re.compile(r"^ap\.branches\.(\d)\.blocks\.(\d)\.(.+)$")
_F_OSA_LAYER = re.compile(r"^gp\.blocks\.(\d)\.layers\.(\d+)\.(conv|norm|gate\.fc)\.(.+)$")
_F_OSA_CONCAT = re.compile(r"^gp\.blocks\.(\d)\.concat\.(conv|norm)\.(.+)$")
_F_OSA_ESE = re.compile(r"^gp\.blocks\.(\d)\.ese\.fc\.(.+)$")


def _public_key(name: str) -> str | None:
    """Inverse of :func:`map_ampnet_official_key` (without ``module.``); ``None`` if no public twin."""
    if name.startswith("pre_extractor.stem."):
        return name[len("pre_extractor.stem.") :]
    if name.startswith(("pre_extractor.layer1.", "pre_extractor.layer2.")):
        return name[len("pre_extractor.") :]
    m = _F_LP.match(name)
    if m:
        region, block, rest = int(m[1]), int(m[2]), m[3]
        return f"layer3_{block // 2 + 1}_{region + 1}.{block % 2}.{rest}"
    m = _F_AP.match(name)
    if m:
        return f"layer4_1_{int(m[1]) + 1}.{m[2]}.{m[3]}"
    m = _F_OSA_LAYER.match(name)
    if m:
        s = int(m[1]) + 2
        sub = {"conv": "conv", "norm": "norm", "gate.fc": "pw_cbam.sigatten.fc2"}[m[3]]
        return f"stage{s}.OSA{s}_1.layers.{m[2]}.OSA{s}_1_{m[2]}/{sub}.{m[4]}"
    m = _F_OSA_CONCAT.match(name)
    if m:
        s = int(m[1]) + 2
        return f"stage{s}.OSA{s}_1.concat.OSA{s}_1_concat/{m[2]}.{m[3]}"
    m = _F_OSA_ESE.match(name)
    if m:
        s = int(m[1]) + 2
        return f"stage{s}.OSA{s}_1.ese.fc.{m[2]}"
    for public, ours in _FC.items():
        if name.startswith(ours):
            return public + name[len(ours) :]
    return None


def ampnet_official_key_map(model: nn.Module, prefix: str = "module.") -> dict[str, str]:
    """``{public checkpoint key: ferlib state-dict key}`` for every entry of ``model.state_dict()``
    that has a public counterpart (all of them for the default ``amp-net``; the extra tensors of
    ``gp_residual=True`` or ``gate_width="channel"`` have none, and are left out).

    Public keys absent from the map are either unused by the public forward
    (:data:`AMPNET_OFFICIAL_UNUSED_PREFIXES`) or belong to branches this variant does not build.
    """
    out: dict[str, str] = {}
    for name in model.state_dict():
        public = _public_key(name)
        if public is not None:
            out[prefix + public] = name
    return out
