"""Paper cards (ferlib/models/_card.py) and the model contract (ferlib/models/_base.py).

The old tables the cards replace are transcribed here from ``ferlib/study.py`` (``ABLATION_GRIDS``,
``PAPER_RESULTS``) and ``ferlib/train/recipes.py`` (``MODEL_RECIPES``) as they were before the move,
so the look-ups must give back exactly what the tables held.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from ferlib.models import (
    AblationGrid,
    AblationRow,
    FERModel,
    ModelOutput,
    ablation_grids,
    create_model,
    get_card,
    list_models,
    model_inputs,
    paper_results,
    recipe_name,
    region_views,
)
from ferlib.models.blocks import CBAMBasicBlock
from ferlib.models.checkpoints import CheckpointError, checkpoint_sources, load_checkpoint
from ferlib.models.losses import cross_entropy, decision_fusion_loss

ROOT = Path(__file__).resolve().parents[2]
PAPER_MODELS = ("amp-net", "amp-net-r18", "ma-net", "lan", "ffra-net", "man")
BASELINES = ("resnet18", "resnet34", "vgg16", "vgg16-se")
FAMILIES = PAPER_MODELS + BASELINES

#: ``study.ABLATION_GRIDS`` before the move: (name, model, source, paper_dataset, rows (label, variant, paper, model)).
OLD_ABLATION_GRIDS = [
    (
        "amp-net-modules",
        "amp-net",
        "amp-net.txt Tables I–II",
        "RAF-DB, no pre-training",
        [
            ("GP+LP+AP (AMP-Net)", {"branches": ("gp", "lp", "ap")}, 88.06, None),
            ("GP (gate-OSA)", {"branches": ("gp",)}, 86.32, None),
            ("GP (OSA)", {"branches": ("gp",), "gp_block": "osa"}, 86.08, None),
            ("LP", {"branches": ("lp",)}, 86.02, None),
            ("AP", {"branches": ("ap",)}, 84.33, None),
            ("GP+LP", {"branches": ("gp", "lp")}, 87.23, None),
            ("GP+AP", {"branches": ("gp", "ap")}, 86.77, None),
            ("LP+AP", {"branches": ("lp", "ap")}, 86.67, None),
        ],
    ),
    (
        "amp-net-lp-scheme",
        "amp-net",
        "amp-net.txt Table III (LP module alone)",
        "RAF-DB, no pre-training",
        [
            ("scheme 4: PBD + LBP (proposed)", {"branches": ("lp",), "lp_scheme": 4}, 86.02, None),
            ("scheme 2: equal 2×2 split", {"branches": ("lp",), "lp_scheme": 2}, 84.65, None),
            ("scheme 1: PBD + ROI Align", {"branches": ("lp",), "lp_scheme": 1}, 79.35, None),
            ("scheme 3: modified PBD + LBP", {"branches": ("lp",), "lp_scheme": 3}, 85.27, None),
        ],
    ),
    (
        "amp-net-region-size",
        "amp-net-r18",
        "amp-net.txt Fig. 8(a) (only L = 10 printed)",
        "RAF-DB",
        [
            ("L = 10", {"region_size": 10}, 88.06, None),
            ("L = 6", {"region_size": 6}, None, None),
            ("L = 14", {"region_size": 14}, None, None),
            ("L = 8", {"region_size": 8}, None, None),
            ("L = 12", {"region_size": 12}, None, None),
        ],
    ),
    (
        "amp-net-lambda",
        "amp-net-r18",
        "amp-net.txt Fig. 8(b) (only λ = 0.5 printed)",
        "RAF-DB",
        [
            ("λ = 0.5", {"lam": 0.5}, 88.06, None),
            ("λ = 0.2", {"lam": 0.2}, None, None),
            ("λ = 0.8", {"lam": 0.8}, None, None),
        ],
    ),
    (
        "ma-net-multiscale",
        "ma-net",
        "ma-net.txt Table I (one branch)",
        "RAF-DB, no pre-training",
        [
            ("symmetric multi-scale", {"global_branch": "symmetric", "local_branch": None}, 83.74, None),
            ("baseline (LTS)", {"global_branch": "lts", "local_branch": None}, 82.59, None),
            ("Res2Net multi-scale", {"global_branch": "res2net", "local_branch": None}, 82.89, None),
            ("local feature", {"global_branch": None, "local_branch": "feature"}, 83.87, None),
            ("local feature + attention", {"global_branch": None, "local_branch": "attention"}, 84.65, None),
        ],
    ),
    (
        "ma-net-regions",
        "ma-net",
        "ma-net.txt Table III",
        "RAF-DB, no pre-training",
        [
            ("2×2, overlap 0 (MA-Net)", {"overlap": 0, "split": 2}, 86.32, None),
            ("1×1", {"overlap": 0, "split": 1}, 84.58, None),
            ("2×2, overlap 6", {"overlap": 6, "split": 2}, 85.14, None),
            ("3×3, overlap 1", {"overlap": 1, "split": 3}, 85.41, None),
            ("3×3, overlap 7", {"overlap": 7, "split": 3}, 85.29, None),
        ],
    ),
    (
        "ma-net-fusion",
        "ma-net",
        "ma-net.txt Table IV",
        "RAF-DB, no pre-training",
        [
            ("decision-level (MA-Net)", {"fusion": "decision"}, 86.34, None),
            ("feature-level", {"fusion": "feature"}, 82.76, None),
        ],
    ),
    (
        "ma-net-lambda",
        "ma-net",
        "ma-net.txt Fig. 6 (best λ = 0.6; values not printed)",
        "RAF-DB",
        [
            ("λ = 0.6 (MA-Net)", {"lam": 0.6}, 86.34, None),
            ("λ = 0.2", {"lam": 0.2}, None, None),
            ("λ = 0.9", {"lam": 0.9}, None, None),
        ],
    ),
    (
        "lan-alpha",
        "lan",
        "lan.txt §IV (α = 0.5 used)",
        "—",
        [
            ("α = 0.5 (LAN)", {"alpha": 0.5}, None, None),
            ("α = 0 (no guidance)", {"alpha": 0.0}, None, None),
            ("α = 1", {"alpha": 1.0}, None, None),
        ],
    ),
    (
        "lan-fusion",
        "lan",
        "lan.txt Table 6",
        "AffectNet",
        [
            ("addition (LAN)", {"fusion": "add"}, 60.88, None),
            ("concatenation", {"fusion": "concat"}, 60.2, None),
            ("averaging", {"fusion": "average"}, 59.4, None),
        ],
    ),
    (
        "ffra-net-fusion",
        "ffra-net",
        "ffra-net.txt Table 1",
        "SG_RAF-DB (sunglasses)",
        [
            ("weighted (FFRA-Net)", {"fusion": "weighted"}, 79.5, None),
            ("add", {"fusion": "add"}, 77.87, None),
            ("concat", {"fusion": "concat"}, 76.69, None),
        ],
    ),
    (
        "ffra-net-modules",
        "ffra-net",
        "ffra-net.txt Table 2",
        "SG_RAF-DB (sunglasses)",
        [
            ("multi-scale + local attention", {"local_attention": True, "multi_scale": True}, 79.5, None),
            ("neither (baseline)", {"local_attention": False, "multi_scale": False}, 77.44, None),
            ("multi-scale only", {"local_attention": False, "multi_scale": True}, 78.62, None),
            ("local attention only", {"local_attention": True, "multi_scale": False}, 79.37, None),
        ],
    ),
    (
        "ffra-net-lambda",
        "ffra-net",
        "ffra-net.txt §4.3 (λ = 0.6 used)",
        "SG_RAF-DB",
        [
            ("λ = 0.6 (FFRA-Net)", {"lam": 0.6}, 79.5, None),
            ("λ = 0.3", {"lam": 0.3}, None, None),
            ("λ = 0.9", {"lam": 0.9}, None, None),
        ],
    ),
    (
        "man-baselines",
        "man",
        "man.txt Table 3 (from scratch)",
        "RAF-DB, trained from scratch",
        [
            ("RASnet + ERSnet (MAN)", {}, 75.59, None),
            ("VGG16", {}, 73.63, "vgg16"),
            ("VGG16 + SE", {}, 73.27, "vgg16-se"),
        ],
    ),
]

#: ``study.PAPER_RESULTS`` before the move.
OLD_PAPER_RESULTS = {
    "amp-net": {"rafdb": 89.25, "source": "amp-net.txt Table IV (VGGFace2 pre-training)"},
    "amp-net-r18": {"rafdb": 88.84, "source": "amp-net.txt Table IV, AMP-Net* (ResNet-18)"},
    "ma-net": {"rafdb": 88.4, "source": "ma-net.txt abstract (MS-Celeb-1M pre-training)"},
    "lan": {"rafdb": 87.09, "source": "lan.txt Table 2"},
    "ffra-net": {"rafdb": 88.66, "source": "ffra-net.txt Table 5"},
    "man": {"rafdb": 85.69, "source": "man.txt Table 3 (VGG-Face initialisation; 75.59 from scratch)"},
    "vgg16": {"rafdb": 83.89, "source": "man.txt Table 3, VGG fine-tuning"},
    "vgg16-se": {"rafdb": 83.28, "source": "man.txt Table 3, VGG+SE"},
    "resnet18": {"rafdb": None, "source": "plain baseline (no paper number)"},
}

#: ``train.recipes.MODEL_RECIPES`` before the move (everything else: "baseline").
OLD_MODEL_RECIPES = {
    "amp-net": "amp-net",
    "amp-net-r18": "amp-net",
    "ma-net": "ma-net",
    "lan": "lan",
    "ffra-net": "ffra-net",
    "man": "man",
}

#: ``widgets.REGION_VIEWS`` before the move.
OLD_REGION_VIEWS = ("AMP-Net: PBD + LBP + AP", "MA-Net: 2×2 split", "MA-Net: 3×3 overlap 7", "MAN: Table 2 regions")

#: ``explain.PRIMARY_TARGETS`` before the move: the first of these among ``cam_targets()`` was shown.
OLD_PRIMARY_TARGETS = ("layer4", "last_stage", "multi_scale", "gp", "backbone", "conv5_3", "global")


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: create_model(name) for name in FAMILIES}


# -- cards ---------------------------------------------------------------------------------------


def test_every_family_model_is_registered_with_a_complete_card(models):
    assert set(FAMILIES) <= set(list_models())
    papers = {p.name for p in (ROOT.parent / "shared" / "papers").glob("*.txt")} or {
        "amp-net.txt",
        "ma-net.txt",
        "lan.txt",
        "ffra-net.txt",
        "man.txt",
    }
    for name in FAMILIES:
        card = get_card(name)
        assert card is not None, name
        assert card.citation is not None and card.citation.authors and card.citation.year > 2000, name
        assert isinstance(models[name], FERModel), name
        assert card.primary_cam_target in models[name].cam_targets(), name
        assert models[name].primary_cam_target == card.primary_cam_target, name
        assert card.claims.ferlib_params_7cls is None or card.claims.ferlib_params_7cls == sum(
            p.numel() for p in models[name].parameters()
        ), name
        if name in PAPER_MODELS:
            assert card.citation.paper_file in papers, name
            assert card.result("RAF-DB") is not None, name
            assert (ROOT / "ferlib" / "recipes" / f"{card.recipe}.yaml").is_file(), name
    assert get_card("no-such-model") is None


def test_citations_say_what_the_papers_say():
    assert get_card("ma-net").citation.authors == ("Zengqun Zhao", "Qingshan Liu", "Shanmin Wang")
    assert get_card("ma-net").citation.short() == "Zhao, Liu & Wang, IEEE TIP 2021"
    assert "local attention" in get_card("lan").citation.title.lower()
    assert "feature fusion residual attention network" in get_card("ffra-net").citation.title.lower()
    assert get_card("man").citation.doi == "10.1109/ACCESS.2020.2963913"


def test_paper_totals_are_the_papers_figures():
    assert get_card("amp-net").claims.total_params() == 105.67e6
    assert get_card("ma-net").claims.total_params() == 50.54e6
    assert get_card("ma-net").claims.total_gmacs() == 3.65
    for name in ("lan", "ffra-net", "man"):  # these papers state no parameter count
        assert get_card(name).claims.total_params() is None
        assert any("no parameter count" in note for note in get_card(name).claims.notes)
    # Headlines measured as the public codes do (best test-set epoch) are marked as such.
    assert get_card("ma-net").result("RAF-DB").best_epoch_on_test
    assert not get_card("lan").result("RAF-DB").best_epoch_on_test


def test_ablation_grids_are_the_old_table():
    grids = ablation_grids()
    assert list(grids) == [g[0] for g in OLD_ABLATION_GRIDS]
    for name, model, source, dataset, rows in OLD_ABLATION_GRIDS:
        grid = grids[name]
        assert (grid.name, grid.model, grid.source, grid.paper_dataset) == (name, model, source, dataset)
        assert [(r.label, dict(r.variant), r.paper, r.model) for r in grid.rows] == rows, name
        assert all(isinstance(r, AblationRow) for r in grid.rows) and isinstance(grid, AblationGrid)


def test_ablation_grid_select_keeps_the_papers_setting():
    grid = ablation_grids()["ma-net-regions"]
    assert grid.select(None) == grid.rows and grid.select(9) == grid.rows
    assert [r.label for r in grid.select(2)] == ["2×2, overlap 0 (MA-Net)", "1×1"]
    grid = AblationGrid(
        "g", "m", "s", "d", (AblationRow("a", {}, 1.0), AblationRow("b", {}, 3.0), AblationRow("c", {}, 2.0))
    )
    assert [r.label for r in grid.select(1)] == ["b"]  # the best row replaces the last chosen one


def test_paper_results_and_recipes_are_the_old_tables():
    assert paper_results() == OLD_PAPER_RESULTS
    assert list(paper_results()) == list(OLD_PAPER_RESULTS)
    for name in list_models():
        assert recipe_name(name) == OLD_MODEL_RECIPES.get(name, "baseline"), name
    assert recipe_name("no-such-model") == "baseline"


def test_region_views_and_primary_targets_match_the_old_dispatch(models):
    assert tuple(region_views()) == OLD_REGION_VIEWS
    for name, model in models.items():
        targets = model.cam_targets()
        old = next((t for t in OLD_PRIMARY_TARGETS if t in targets), next(iter(targets)))
        assert model.primary_cam_target == old, name
    lts = create_model("ma-net", global_branch="lts")
    assert lts.primary_cam_target == "global"  # the card's target is absent: the variant's first


# -- ferlib models -------------------------------------------------------------------------------


def test_models_command_prints_every_paper_total(capsys):
    from ferlib.cli import main

    names = ["amp-net", "ma-net", "lan", "ffra-net", "man"]
    assert main(["models", *names]) == 0
    table = capsys.readouterr().out
    totals = {line.split()[0]: line.split()[1:] for line in table.splitlines() if line.split()[1:2] == ["total"]}
    assert sorted(totals) == sorted(names)
    # columns after "total": measured M, paper M, ref M, GMACs, paper G, ref G
    assert totals["amp-net"][2] == "105.67" and totals["amp-net"][3] == "59.40" and totals["amp-net"][5] == "1.69"
    assert totals["ma-net"][1:3] == ["50.55", "50.54"] and totals["ma-net"][5] == "3.65"
    for name in ("lan", "ffra-net", "man"):
        assert totals[name][2] == "n/s" and totals[name][5] == "n/s", totals[name]
    assert "lan.txt reports no parameter count" in table


# -- shared blocks and losses ---------------------------------------------------------------------


def test_cbam_basic_block_keeps_the_public_checkpoint_names():
    expected = {
        "conv1.weight",
        "bn1.weight",
        "conv2.weight",
        "bn2.weight",
        "cbam.ChannelGate.mlp.1.weight",
        "cbam.ChannelGate.mlp.3.bias",
        "cbam.SpatialGate.spatial.conv.weight",
        "cbam.SpatialGate.spatial.bn.running_mean",
        "downsample.0.weight",
        "downsample.1.running_var",
    }
    for first in (True, False):
        keys = set(CBAMBasicBlock(128, 256, 2, shortcut_first=first).state_dict())
        assert expected <= keys
        assert not any(k.startswith("downsample") for k in CBAMBasicBlock(64, 64, 1, shortcut_first=first).state_dict())
    ma = create_model("ma-net").state_dict()
    assert "local_branch.features.regions.3.layer4.1.cbam.SpatialGate.spatial.bn.weight" in ma
    assert "global_branch.features.layer3.0.left.2.conv.weight" in ma
    amp = create_model("amp-net-r18").state_dict()
    assert "ap.branches.4.blocks.0.downsample.1.weight" in amp
    assert sum(p.numel() for p in create_model("ma-net").parameters()) == 50_547_214


def test_cbam_basic_block_with_attention_off_is_a_plain_basic_block():
    from torchvision.models.resnet import BasicBlock

    torch.manual_seed(0)
    ours = CBAMBasicBlock(32, 64, 2, attention=False, shortcut_first=True).eval()
    theirs = BasicBlock(
        32, 64, 2, downsample=torch.nn.Sequential(torch.nn.Conv2d(32, 64, 1, 2, bias=False), torch.nn.BatchNorm2d(64))
    ).eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 32, 16, 16)
    torch.testing.assert_close(ours(x), theirs(x))


def test_losses_by_hand():
    logits = torch.tensor([[0.0, float(np.log(3.0))], [0.0, 0.0]])
    out = ModelOutput(logits=logits, branch_logits={"a": logits, "b": torch.zeros(2, 2)})
    batch = {"label": [1, 0]}  # a plain list works too
    ce = cross_entropy(out, batch)
    assert ce.item() == pytest.approx((-np.log(0.75) - np.log(0.5)) / 2)
    fused = decision_fusion_loss(out, batch, "a", "b", 0.3)
    assert fused.item() == pytest.approx(0.3 * ce.item() + 0.7 * np.log(2.0))
    assert decision_fusion_loss(out, batch, "a", "missing", 0.3).item() == pytest.approx(ce.item())
    with pytest.raises(KeyError, match="batch\\['label'\\]"):
        cross_entropy(out, {})


# -- contract ---------------------------------------------------------------------------------------


def test_needs_landmarks_and_model_inputs_per_variant():
    batch = {"image": torch.zeros(1), "landmarks5": torch.ones(1, 5, 2), "landmarks8": torch.ones(1, 8, 2)}
    assert set(model_inputs(create_model("amp-net-r18"), batch)) == {"landmarks5"}
    assert model_inputs(create_model("amp-net-r18", branches=("gp",)), batch) == {}
    assert model_inputs(create_model("amp-net-r18", branches=("gp", "lp"), lp_scheme=2), batch) == {}
    for name in ("ma-net", "lan", "ffra-net", "resnet18"):
        assert model_inputs(create_model(name), batch) == {}, name


def test_default_stages_and_set_stage():
    model = create_model("resnet18")
    assert model.stages() == ("main",) and model.set_stage("main") is model
    with pytest.raises(ValueError, match="main"):
        model.set_stage("rasnet")
    assert create_model("man").stages() == ("rasnet", "ersnet")


def test_checkpoint_formats_come_from_the_cards(tmp_path):
    assert set(checkpoint_sources()) == {"manet-official", "ampnet-official", "torchvision", "vgg-face", "ferlib"}
    assert get_card("ma-net").checkpoint_format("manet-official") is not None
    path = tmp_path / "x.pth"
    torch.save({"fc.weight": torch.zeros(7, 512)}, path)
    with pytest.raises(CheckpointError, match="no own formats"):
        load_checkpoint(create_model("resnet18"), path, source="manet-official")
    with pytest.raises(ValueError, match="unknown checkpoint source"):
        load_checkpoint(create_model("resnet18"), path, source="nope")


# -- layering -------------------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_models_floor_imports_nothing_above_it_and_registry_no_family():
    higher = ("ferlib.train", "ferlib.explain", "ferlib.study", "ferlib.plots", "ferlib.widgets", "ferlib.commands")
    for path in (ROOT / "ferlib" / "models").glob("*.py"):
        if path.name == "guidance.py":  # a training procedure, moving to ferlib/train
            continue
        bad = [m for m in _imports(path) if m.startswith(higher)]
        assert not bad, (path.name, bad)
    registry = _imports(ROOT / "ferlib" / "models" / "registry.py")
    assert not [
        m
        for m in registry
        if m.startswith("ferlib.models")
        and m
        not in (
            "ferlib.models._card",
            "ferlib.models._card.AblationGrid",
            "ferlib.models._card.PaperCard",
            "ferlib.models._card.RegionView",
        )
    ]
    assert not [m for m in _imports(ROOT / "ferlib" / "plots.py") if m.startswith("ferlib.explain")]
    explain_files = sorted((ROOT / "ferlib" / "explain").glob("*.py"))
    assert explain_files, "ferlib/explain/ (the explain package) not found"
    generic = "".join(p.read_text() for p in explain_files) + (ROOT / "ferlib" / "widgets.py").read_text()
    assert 'startswith("AMP-Net")' not in generic and 'startswith("ap_")' not in generic


def test_amp_net_places_patch_local_cams_into_their_boxes():
    from ferlib.models._amp_net_view import amp_net_geometry

    model = create_model("amp-net-r18")
    lm = torch.tensor([[[80.0, 96], [144, 96], [112, 124], [88, 160], [136, 160]]])
    cams = np.ones((1, 224, 224), np.float32)
    placed = model.place_cams("ap_eye1", cams, {"landmarks5": lm}, 224)
    x0, y0, x1, y1 = (amp_net_geometry(lm[0])["ap"][0] * 8).astype(int)  # (5, 7, 15, 17) cells → pixels
    assert (x0, y0, x1, y1) == (40, 56, 120, 136)
    assert placed[0, y0:y1, x0:x1].min() == 1.0 and placed.sum() == (x1 - x0) * (y1 - y0)
    assert model.place_cams("gp", cams, {"landmarks5": lm}, 224) is cams  # already in image layout
