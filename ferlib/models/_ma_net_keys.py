"""MA-Net's public checkpoint names → ferlib's (../shared/checkpoint-formats/manet-official-*.json).

Pure name rules for the card's ``manet-official`` checkpoint format: the public code
(github.com/zengqunzhao/MA-Net) saves a DataParallel state dict with its own module names.
"""

from __future__ import annotations

import re

_MANET_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(conv1|bn1|layer1|layer2)\.(.+)$"), r"pre_extractor.\1.\2"),
    (re.compile(r"^layer([34])_1_p(\d+)\.(.+)$"), "local"),
    (re.compile(r"^layer([34])_2\.(\d+)\.conv([12])_2_(\d+)\.weight$"), "ms_conv"),
    (re.compile(r"^layer([34])_2\.(\d+)\.bn([12])_2_(\d+)\.(.+)$"), "ms_bn"),
    (re.compile(r"^layer([34])_2\.(.+)$"), r"global_branch.features.layer\1.\2"),
    (re.compile(r"^fc_1\.(weight|bias)$"), r"local_branch.head.\1"),
    (re.compile(r"^fc_2\.(weight|bias)$"), r"global_branch.head.\1"),
)


def manet_official_key_map(key: str) -> str | None:
    """Map a public MA-Net checkpoint name (``module.`` already stripped) to ferlib's name.

    ``layer3_1_p{k}``/``layer4_1_p{k}`` → ``local_branch.features.regions.{k−1}.layer3|4``;
    ``layer3_2``/``layer4_2`` → ``global_branch.features.layer3|4`` with the multi-scale
    convolutions ``conv1_2_i``/``conv2_2_i`` (and their BNs) → ``left.{i−1}``/``right.{i−1}``;
    ``fc_1`` (local head) → ``local_branch.head``; ``fc_2`` (global head) →
    ``global_branch.head``; stem/layer1/layer2 → ``pre_extractor``. Unknown names → ``None``.
    """
    for pattern, target in _MANET_RULES:
        m = pattern.match(key)
        if not m:
            continue
        if target == "local":
            stage, region, rest = m.groups()
            return f"local_branch.features.regions.{int(region) - 1}.layer{stage}.{rest}"
        if target in ("ms_conv", "ms_bn"):
            stage, block, side, index = m.group(1), m.group(2), m.group(3), int(m.group(4)) - 1
            direction = "left" if side == "1" else "right"
            leaf = "conv.weight" if target == "ms_conv" else f"bn.{m.group(5)}"
            return f"global_branch.features.layer{stage}.{block}.{direction}.{index}.{leaf}"
        return m.expand(target)
    return None
