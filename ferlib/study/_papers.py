"""The papers' ablation tables (notebook 04) and reported results (notebook 03), as data.

Moved unchanged from the former ``ferlib/study.py``; these facts belong to the model families'
paper cards, where the per-family ablation grids and reported results will be looked up instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class AblationRow:
    """One configuration of an ablation table: a label, model variant keywords, the paper's number."""

    label: str
    variant: Mapping[str, Any]
    paper: float | None = None
    #: Model name when the row uses another network than the grid's (baselines).
    model: str | None = None


@dataclass(frozen=True)
class AblationGrid:
    name: str
    model: str
    source: str  # paper, table/figure
    paper_dataset: str  # what the paper's numbers were measured on
    rows: tuple[AblationRow, ...]

    def select(self, points: int | None) -> tuple[AblationRow, ...]:
        """The first ``points`` rows, always including the row that is the paper's own setting
        (the row with the highest paper number) so that the comparison has its reference."""
        if points is None or points >= len(self.rows):
            return self.rows
        numbered = [r for r in self.rows if r.paper is not None]
        best = max(numbered, key=lambda r: r.paper) if numbered else self.rows[0]
        chosen = list(self.rows[:points])
        if best not in chosen:
            chosen[-1] = best
        return tuple(chosen)


def _rows(*items: tuple) -> tuple[AblationRow, ...]:
    return tuple(AblationRow(*item) for item in items)


#: The papers' ablation tables. Numbers are the papers' (accuracy %, on ``paper_dataset``); ferlib
#: runs the same variants on the study's dataset and shows both, labelled, side by side.
ABLATION_GRIDS: dict[str, AblationGrid] = {
    g.name: g
    for g in (
        AblationGrid("amp-net-modules", "amp-net", "amp-net.txt Tables I–II", "RAF-DB, no pre-training", _rows(
            ("GP+LP+AP (AMP-Net)", {"branches": ("gp", "lp", "ap")}, 88.06),
            ("GP (gate-OSA)", {"branches": ("gp",)}, 86.32),
            ("GP (OSA)", {"branches": ("gp",), "gp_block": "osa"}, 86.08),
            ("LP", {"branches": ("lp",)}, 86.02),
            ("AP", {"branches": ("ap",)}, 84.33),
            ("GP+LP", {"branches": ("gp", "lp")}, 87.23),
            ("GP+AP", {"branches": ("gp", "ap")}, 86.77),
            ("LP+AP", {"branches": ("lp", "ap")}, 86.67),
        )),
        AblationGrid("amp-net-lp-scheme", "amp-net", "amp-net.txt Table III (LP module alone)", "RAF-DB, no pre-training", _rows(
            ("scheme 4: PBD + LBP (proposed)", {"branches": ("lp",), "lp_scheme": 4}, 86.02),
            ("scheme 2: equal 2×2 split", {"branches": ("lp",), "lp_scheme": 2}, 84.65),
            ("scheme 1: PBD + ROI Align", {"branches": ("lp",), "lp_scheme": 1}, 79.35),
            ("scheme 3: modified PBD + LBP", {"branches": ("lp",), "lp_scheme": 3}, 85.27),
        )),
        AblationGrid("amp-net-region-size", "amp-net-r18", "amp-net.txt Fig. 8(a) (only L = 10 printed)", "RAF-DB", _rows(
            ("L = 10", {"region_size": 10}, 88.06),
            ("L = 6", {"region_size": 6}, None),
            ("L = 14", {"region_size": 14}, None),
            ("L = 8", {"region_size": 8}, None),
            ("L = 12", {"region_size": 12}, None),
        )),
        AblationGrid("amp-net-lambda", "amp-net-r18", "amp-net.txt Fig. 8(b) (only λ = 0.5 printed)", "RAF-DB", _rows(
            ("λ = 0.5", {"lam": 0.5}, 88.06),
            ("λ = 0.2", {"lam": 0.2}, None),
            ("λ = 0.8", {"lam": 0.8}, None),
        )),
        AblationGrid("ma-net-multiscale", "ma-net", "ma-net.txt Table I (one branch)", "RAF-DB, no pre-training", _rows(
            ("symmetric multi-scale", {"global_branch": "symmetric", "local_branch": None}, 83.74),
            ("baseline (LTS)", {"global_branch": "lts", "local_branch": None}, 82.59),
            ("Res2Net multi-scale", {"global_branch": "res2net", "local_branch": None}, 82.89),
            ("local feature", {"global_branch": None, "local_branch": "feature"}, 83.87),
            ("local feature + attention", {"global_branch": None, "local_branch": "attention"}, 84.65),
        )),
        AblationGrid("ma-net-regions", "ma-net", "ma-net.txt Table III", "RAF-DB, no pre-training", _rows(
            ("2×2, overlap 0 (MA-Net)", {"split": 2, "overlap": 0}, 86.32),
            ("1×1", {"split": 1, "overlap": 0}, 84.58),
            ("2×2, overlap 6", {"split": 2, "overlap": 6}, 85.14),
            ("3×3, overlap 1", {"split": 3, "overlap": 1}, 85.41),
            ("3×3, overlap 7", {"split": 3, "overlap": 7}, 85.29),
        )),
        AblationGrid("ma-net-fusion", "ma-net", "ma-net.txt Table IV", "RAF-DB, no pre-training", _rows(
            ("decision-level (MA-Net)", {"fusion": "decision"}, 86.34),
            ("feature-level", {"fusion": "feature"}, 82.76),
        )),
        AblationGrid("ma-net-lambda", "ma-net", "ma-net.txt Fig. 6 (best λ = 0.6; values not printed)", "RAF-DB", _rows(
            ("λ = 0.6 (MA-Net)", {"lam": 0.6}, 86.34),
            ("λ = 0.2", {"lam": 0.2}, None),
            ("λ = 0.9", {"lam": 0.9}, None),
        )),
        AblationGrid("lan-alpha", "lan", "lan.txt §IV (α = 0.5 used)", "—", _rows(
            ("α = 0.5 (LAN)", {"alpha": 0.5}, None),
            ("α = 0 (no guidance)", {"alpha": 0.0}, None),
            ("α = 1", {"alpha": 1.0}, None),
        )),
        AblationGrid("lan-fusion", "lan", "lan.txt Table 6", "AffectNet", _rows(
            ("addition (LAN)", {"fusion": "add"}, 60.88),
            ("concatenation", {"fusion": "concat"}, 60.20),
            ("averaging", {"fusion": "average"}, 59.40),
        )),
        AblationGrid("ffra-net-fusion", "ffra-net", "ffra-net.txt Table 1", "SG_RAF-DB (sunglasses)", _rows(
            ("weighted (FFRA-Net)", {"fusion": "weighted"}, 79.50),
            ("add", {"fusion": "add"}, 77.87),
            ("concat", {"fusion": "concat"}, 76.69),
        )),
        AblationGrid("ffra-net-modules", "ffra-net", "ffra-net.txt Table 2", "SG_RAF-DB (sunglasses)", _rows(
            ("multi-scale + local attention", {"multi_scale": True, "local_attention": True}, 79.50),
            ("neither (baseline)", {"multi_scale": False, "local_attention": False}, 77.44),
            ("multi-scale only", {"multi_scale": True, "local_attention": False}, 78.62),
            ("local attention only", {"multi_scale": False, "local_attention": True}, 79.37),
        )),
        AblationGrid("ffra-net-lambda", "ffra-net", "ffra-net.txt §4.3 (λ = 0.6 used)", "SG_RAF-DB", _rows(
            ("λ = 0.6 (FFRA-Net)", {"lam": 0.6}, 79.50),
            ("λ = 0.3", {"lam": 0.3}, None),
            ("λ = 0.9", {"lam": 0.9}, None),
        )),
        AblationGrid("man-baselines", "man", "man.txt Table 3 (from scratch)", "RAF-DB, trained from scratch", _rows(
            ("RASnet + ERSnet (MAN)", {}, 75.59),
            ("VGG16", {}, 73.63, "vgg16"),
            ("VGG16 + SE", {}, 73.27, "vgg16-se"),
        )),
    )
}


#: Each paper's reported RAF-DB accuracy (%) for the model ferlib builds under that name, with its
#: conditions. Shown beside ferlib's numbers only as a reference; a SynthFER run is not comparable.
PAPER_RESULTS: dict[str, dict[str, Any]] = {
    "amp-net": {"rafdb": 89.25, "source": "amp-net.txt Table IV (VGGFace2 pre-training)"},
    "amp-net-r18": {"rafdb": 88.84, "source": "amp-net.txt Table IV, AMP-Net* (ResNet-18)"},
    "ma-net": {"rafdb": 88.40, "source": "ma-net.txt abstract (MS-Celeb-1M pre-training)"},
    "lan": {"rafdb": 87.09, "source": "lan.txt Table 2"},
    "ffra-net": {"rafdb": 88.66, "source": "ffra-net.txt Table 5"},
    "man": {"rafdb": 85.69, "source": "man.txt Table 3 (VGG-Face initialisation; 75.59 from scratch)"},
    "vgg16": {"rafdb": 83.89, "source": "man.txt Table 3, VGG fine-tuning"},
    "vgg16-se": {"rafdb": 83.28, "source": "man.txt Table 3, VGG+SE"},
    "resnet18": {"rafdb": None, "source": "plain baseline (no paper number)"},
}
