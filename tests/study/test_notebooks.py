"""The study notebooks: committed form, parameters, nbval in the smoke profile, and the helpers
they call (ferlib.plots, ferlib.widgets, the ablation grids; ferlib.explain's own tests are in
tests/explain/).

``test_nbval_smoke`` runs, in a subprocess::

    FERLIB_PROFILE=smoke FERLIB_RUNS=<tmp> python -m pytest --nbval-lax --nbval-current-env \
        --nbval-sanitize-with notebooks/sanitize.cfg notebooks/0*.ipynb

so every notebook executes top to bottom in a fresh kernel and the cells marked
``# NBVAL_CHECK_OUTPUT`` must reproduce their committed (default-profile) outputs; then it checks the
metrics that run wrote against ``notebooks/baselines/smoke_metrics.json``.
"""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from ferlib.models import ablation_grids
from ferlib.study import (
    NOTEBOOKS,
    STANDARD_PARAMETERS,
    absolute_paths_in,
    baseline_path,
    check_run,
)

REPO = Path(__file__).resolve().parents[2]
NB_DIR = REPO / "notebooks"
CHECK = "# NBVAL_CHECK_OUTPUT"
ALLOWED_IMPORTS = {
    "ferlib",
    "numpy",
    "pandas",
    "matplotlib",
    "torch",
    "torchvision",
    "IPython",
    "ipywidgets",
    "PIL",
    "skimage",
    "sklearn",
    "seaborn",
    "json",
    "dataclasses",
    "pathlib",
    "os",
    "math",
    "collections",
}


def _read(name: str):
    return nbformat.read(str(NB_DIR / name), as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_matches_its_jupytext_source(name):
    import jupytext

    src = NB_DIR / "src" / name.replace(".ipynb", ".py")
    assert src.exists(), f"{src} missing: notebooks are written as jupytext percent sources"
    expected = [c.source.strip() for c in jupytext.read(str(src)).cells if c.cell_type == "code"]
    actual = [c.source.strip() for c in _code_cells(_read(name))]
    assert actual == expected, (
        f"{name} differs from {src.name}; regenerate it: "
        f"jupytext --to ipynb -o notebooks/{name} {src.relative_to(REPO)} (then rerun the study export)"
    )


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_holds_literals_and_derivations_come_next(name):
    cells = _code_cells(_read(name))
    first = cells[0]
    assert "parameters" in first.metadata.get("tags", []), f"{name}: first code cell must be tagged 'parameters'"
    tree = ast.parse(first.source)
    names = []
    for stmt in tree.body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1, f"{name}: only `name = literal` lines"
        ast.literal_eval(stmt.value)  # raises on anything computed
        names.append(stmt.targets[0].id)
    assert set(STANDARD_PARAMETERS) <= set(names), f"{name}: missing {set(STANDARD_PARAMETERS) - set(names)}"
    assert "prepare_notebook(" in cells[1].source, f"{name}: the cell after the parameters must derive the context"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_clean_and_has_checked_outputs(name):
    nb = _read(name)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "papermill" not in nb.metadata and "widgets" not in nb.metadata
    checked = 0
    counts = [c.execution_count for c in _code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{name}: execution counts must be 1..n (nbval refuses output cells without a count)"
    )
    for cell in _code_cells(nb):
        assert "papermill" not in cell.metadata, f"{name}: papermill cell metadata left in"
        assert "injected-parameters" not in cell.metadata.get("tags", [])
        for out in cell.outputs:
            data = out.get("data", {})
            assert "image/svg+xml" not in data, f"{name}: figures must be PNG"
            assert not (out.get("output_type") == "stream" and out.get("name") == "stderr"), f"{name}: stderr left in"
            assert out.get("output_type") != "error", f"{name}: committed with an error output"
        if cell.source.lstrip().startswith(CHECK):
            checked += 1
            assert cell.outputs, (
                f"{name}: a {CHECK} cell has no committed output (nbval would pass trivially); "
                "commit the notebooks executed with the default profile"
            )
            text = "".join(o.get("text", "") for o in cell.outputs)
            assert " s\n" not in text and "seconds" not in text, f"{name}: timings in a checked cell"
    assert checked >= 1, f"{name}: no {CHECK} cell"
    assert absolute_paths_in(nb) == [], f"{name}: absolute paths in the committed notebook"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_imports_only_ferlib_and_scientific_libraries(name):
    nb = _read(name)
    for cell in _code_cells(nb):
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            else:
                continue
            for mod in mods:
                assert mod.split(".")[0] in ALLOWED_IMPORTS, f"{name} imports {mod}"
    prose = " ".join(c.source for c in nb.cells if c.cell_type == "markdown").lower()
    assert "synthetic" in prose or "synthfer" in prose


@pytest.mark.slow
def test_nbval_smoke(tmp_path):
    """nbval on all five notebooks in the smoke profile, then the regression check on its metrics."""
    env = dict(os.environ, FERLIB_PROFILE="smoke", FERLIB_RUNS=str(tmp_path / "runs"), TQDM_DISABLE="1")
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--nbval-lax",
        "--nbval-current-env",
        "--nbval-sanitize-with",
        str(NB_DIR / "sanitize.cfg"),
        "--rootdir",
        str(tmp_path),
        *[str(NB_DIR / n) for n in NOTEBOOKS],
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, f"nbval failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
    result = check_run(tmp_path / "runs" / "notebooks-smoke", baseline_path("smoke", NB_DIR))
    assert result.ok, result.summary()


# --------------------------------------------------------------------------------------------
# Helpers the notebooks call
# --------------------------------------------------------------------------------------------


def test_amp_net_boxes_and_region_explorer_follow_the_landmarks():
    from ferlib.plots import amp_net_boxes
    from ferlib.widgets import REGION_VIEWS, RegionExplorer, demo_faces

    lm = np.array([[80.0, 96], [144, 96], [112, 124], [88, 160], [136, 160]])
    geo = amp_net_boxes(lm)
    # grid points (10, 12), (18, 12), (14, 16), (11, 20), (17, 20); x_top = x_bottom = 14, y_center = 16
    assert geo["division"].tolist() == [14.0, 14.0, 16.0]
    assert geo["ap"][0].tolist() == [5.0, 7.0, 15.0, 17.0]
    faces = demo_faces()
    ex = RegionExplorer({"frontal": faces["frontal"]})
    base = ex.state("frontal", view=REGION_VIEWS[0])
    moved = ex.state("frontal", point=0, dx=16, dy=0, view=REGION_VIEWS[0])
    assert moved["ap"][0][0] == base["ap"][0][0] + 2  # 16 px = 2 grid cells
    turned = ex.state("frontal", yaw=35, view=REGION_VIEWS[0])
    assert not np.allclose(turned["landmarks5"], base["landmarks5"])
    ma = ex.state("frontal", point=0, dx=16, view=REGION_VIEWS[1])
    assert ma["grid_boxes"].tolist() == [[0, 0, 14, 14], [14, 0, 28, 14], [0, 14, 14, 28], [14, 14, 28, 28]]
    man = ex.state("frontal", view=REGION_VIEWS[3])
    assert man["pixel_boxes"].shape == (8, 4)
    png = ex.render("frontal", view=REGION_VIEWS[0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    box = ex.widget()
    assert "ferlib-region-explorer" in box._dom_classes
    before = ex.controls["image"].value
    ex.controls["yaw"].value = 20.0
    assert ex.controls["image"].value != before  # the observer redrew


def test_ablation_grids_name_real_model_keywords():
    from ferlib.models import create_model
    from ferlib.models.amp_net import AMPNet
    from ferlib.models.ffra_net import FFRANet
    from ferlib.models.lan import lan
    from ferlib.models.ma_net import MANet
    from ferlib.models.man import man
    from ferlib.profiles import PROFILES

    constructors = {
        "amp-net": AMPNet,
        "amp-net-r18": AMPNet,
        "ma-net": MANet,
        "lan": lan,
        "ffra-net": FFRANet,
        "man": man,
    }
    seen: dict[str, set] = {}
    for grid in ablation_grids().values():
        for row in grid.rows:
            seen.setdefault(row.model or grid.model, set()).update(row.variant)
    for model, keys in seen.items():
        if not keys:  # baselines built with their defaults
            continue
        params = set(inspect.signature(constructors[model]).parameters)
        assert keys <= params, f"{model}: {keys - params} are not constructor arguments"
    for prof in PROFILES.values():
        for name in prof.ablations:
            grid = ablation_grids()[name]
            rows = grid.select(prof.ablation_points)
            assert max((r.paper or -1) for r in grid.rows) in [r.paper or -1 for r in rows]
    # the grids the fast profiles run really build
    for name in set(PROFILES["smoke"].ablations) | set(PROFILES["default"].ablations):
        grid = ablation_grids()[name]
        for row in grid.select(PROFILES["default"].ablation_points):
            create_model(row.model or grid.model, **row.variant)
