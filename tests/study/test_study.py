"""The study runner: papermill execution, stop-at-failure, reports, sweeps, regression checks, CLI.

Uses tiny throwaway notebooks written into ``tmp_path`` (no torch in their kernels), so every
behaviour of ``ferlib.study`` is exercised with real papermill/kernel runs in a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from ferlib.cli import main
from ferlib.profiles import PROFILE_ENV, get_profile, profile_name
from ferlib.study import (
    StudyConfig,
    absolute_paths_in,
    check_metrics,
    clean_notebook,
    flatten_metrics,
    load_sweep,
    parse_parameter,
    run_study,
    run_sweep,
)

PARAMS = 'profile = None\ndataset = "synthfer"\nrun_dir = None\nfactor = 2\n'
RECORD = (
    "from ferlib.profiles import get_profile\n"
    "from ferlib.runs import RunFolder\n"
    "from ferlib.study import NotebookContext\n"
    "ctx = NotebookContext({name!r}, get_profile(profile), RunFolder.at(run_dir), dataset=dataset)\n"
    "ctx.record(headline=['value'], value=21 * factor, profile_seen=ctx.profile.name, nested={{'n': 3}})\n"
    "print('recorded', 21 * factor)\n"
)


def _notebook(path: Path, cells: list[str], tagged: bool = True) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, src in enumerate(cells):
        cell = nbformat.v4.new_code_cell(src)
        if i == 0 and tagged:
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "01_landmarks.ipynb", [PARAMS, RECORD.format(name="01_landmarks.ipynb")])
    _notebook(
        nbs / "02_subregions.ipynb",
        [PARAMS, "x = 1", "y = x + 1\nraise ValueError('boom at cell two')", "print('never')"],
    )
    _notebook(nbs / "03_training.ipynb", [PARAMS, RECORD.format(name="03_training.ipynb")])
    return nbs


def test_run_study_runs_in_order_injects_parameters_and_stops_at_first_failure(study_dir, tmp_path):
    cfg = StudyConfig(
        profile="smoke",
        notebooks=("01_landmarks.ipynb", "02_subregions.ipynb", "03_training.ipynb"),
        notebook_dir=str(study_dir),
        parameters={"factor": 5},
    )
    out = tmp_path / "run"
    study = run_study(cfg, run_dir=out)

    assert [r.status for r in study.notebooks] == ["ok", "failed", "not run"]
    assert not study.ok
    first, failed, _ = study.notebooks
    # -p factor=5 reached the kernel, profile too
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["01_landmarks"]["value"] == 105
    assert metrics["01_landmarks"]["profile_seen"] == "smoke"
    assert "03_training" not in metrics  # stopped before it
    assert first.headline == {"value": 105}
    # the failing cell is numbered as in the source notebook (the injected cell does not count)
    assert failed.failed_cell == 2
    assert failed.failed_source == "y = x + 1"
    assert "ValueError: boom at cell two" in failed.error
    assert "02_subregions.ipynb failed in cell 2" in failed.failure_message()
    # executed notebooks, config, versions, study.json and the reports
    assert (out / "notebooks" / "01_landmarks.ipynb").exists()
    assert (out / "notebooks" / "02_subregions.ipynb").exists()
    assert not (out / "notebooks" / "03_training.ipynb").exists()
    saved = json.loads((out / "study.json").read_text())
    assert [n["status"] for n in saved["notebooks"]] == ["ok", "failed", "not run"]
    assert json.loads((out / "config.json").read_text())["parameters"] == {"factor": 5}
    assert (out / "versions.json").exists()
    report = (out / "report.md").read_text()
    assert "value = 105" in report and "FAILED" in report and "boom at cell two" in report
    assert "SynthFER (synthetic" in report
    assert '<tr class="failed">' in (out / "report.html").read_text()


def test_undeclared_parameter_is_refused_before_anything_runs(study_dir, tmp_path):
    cfg = StudyConfig(notebooks=("01_landmarks.ipynb",), notebook_dir=str(study_dir), parameters={"fator": 3})
    with pytest.raises(ValueError, match=r"\['fator'\] are declared by none"):
        run_study(cfg, run_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "notebooks").exists()


def test_notebook_without_parameters_cell_is_refused(tmp_path):
    _notebook(tmp_path / "01_landmarks.ipynb", [PARAMS], tagged=False)
    cfg = StudyConfig(notebooks=("01_landmarks.ipynb",), notebook_dir=str(tmp_path))
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        run_study(cfg, run_dir=tmp_path / "run")


def test_parse_parameter():
    assert parse_parameter("epochs=3") == ("epochs", 3)
    assert parse_parameter("models=[lan, ma-net]") == ("models", ["lan", "ma-net"])
    assert parse_parameter("lam=0.4") == ("lam", 0.4)
    assert parse_parameter("data_root=") == ("data_root", None)
    with pytest.raises(ValueError, match="key=value"):
        parse_parameter("epochs")
    with pytest.raises(ValueError, match="key=value"):
        parse_parameter("bad-key=1")


def test_check_metrics_directions_tolerances_and_missing():
    metrics = {
        "01_landmarks": {"nme": 0.08, "faces": 5, "headline": ["nme"]},
        "03_training": {"resnet18": {"acc": 0.50}},
    }
    assert flatten_metrics(metrics) == {
        "01_landmarks.nme": 0.08,
        "01_landmarks.faces": 5,
        "03_training.resnet18.acc": 0.5,
    }
    base = {
        "metrics": {
            "01_landmarks.nme": {"value": 0.05, "abs_tol": 0.02, "direction": "lower"},  # 0.08 > 0.07
            "01_landmarks.faces": {"value": 5},  # exact
            "03_training.resnet18.acc": {"value": 0.55, "abs_tol": 0.1, "direction": "higher"},
            "03_training.lan.acc": {"value": 0.3},  # missing
        }
    }
    res = check_metrics(metrics, base)
    by = {r.metric: r for r in res.rows}
    assert not res.ok
    assert not by["01_landmarks.nme"].ok and "outside" in by["01_landmarks.nme"].reason
    assert by["01_landmarks.faces"].ok
    assert by["03_training.resnet18.acc"].ok
    assert not by["03_training.lan.acc"].ok and "missing" in by["03_training.lan.acc"].reason
    # improvements never fail a one-sided check; the two-sided one catches both directions
    better = {
        "01_landmarks": {"nme": 0.001, "faces": 6},
        "03_training": {"resnet18": {"acc": 0.99}, "lan": {"acc": 0.3}},
    }
    res2 = {r.metric: r.ok for r in check_metrics(better, base).rows}
    assert res2 == {
        "01_landmarks.nme": True,
        "01_landmarks.faces": False,
        "03_training.resnet18.acc": True,
        "03_training.lan.acc": True,
    }
    # relative tolerance and equality of non-numbers
    rel = check_metrics(
        {"a": {"p": 103, "s": "x"}}, {"metrics": {"a.p": {"value": 100, "rel_tol": 0.05}, "a.s": {"value": "y"}}}
    )
    assert [r.ok for r in rel.rows] == [True, False]
    with pytest.raises(ValueError, match="direction"):
        check_metrics({"a": {"p": 1}}, {"metrics": {"a.p": {"value": 1, "direction": "up"}}})


def test_load_sweep_merges_base_and_separates_study_options(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "base: {profile: smoke, factor: 1}\n"
        "runs:\n"
        "  - {name: a, factor: 2, notebooks: ['01_landmarks']}\n"
        "  - {models: lan, seed: 3}\n"
    )
    sets = load_sweep(sweep, StudyConfig(profile="default"))
    assert [name for name, _ in sets] == ["a", "set2"]
    a, b = sets[0][1], sets[1][1]
    assert a.profile == "smoke" and a.parameters == {"factor": 2}
    assert a.notebooks == ("01_landmarks.ipynb",)
    assert b.models == ("lan",) and b.seed == 3 and b.parameters == {"factor": 1}
    bad = tmp_path / "bad.yaml"
    bad.write_text("factor: 2\n")
    with pytest.raises(ValueError, match="YAML list of parameter sets"):
        load_sweep(bad, StudyConfig())


def test_sweep_runs_each_set_and_writes_a_comparison(study_dir, tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("- {name: two, factor: 2}\n- {name: ten, factor: 10}\n")
    base = StudyConfig(profile="smoke", notebooks=("01_landmarks.ipynb",), notebook_dir=str(study_dir))
    root, results = run_sweep(sweep, base, run_dir=tmp_path / "sweep")
    assert [r.ok for _, r in results] == [True, True]
    values = [json.loads((r.run_dir / "metrics.json").read_text())["01_landmarks"]["value"] for _, r in results]
    assert values == [42, 210]
    table = (root / "sweep.md").read_text()
    assert "01-two" in table and "02-ten" in table and "value = 210" in table


def test_cli_runs_checks_and_reports_exit_codes(study_dir, tmp_path, capsys):
    run_dir = tmp_path / "cli-run"
    rc = main(
        [
            "study",
            "--profile",
            "smoke",
            "--notebook-dir",
            str(study_dir),
            "--notebooks",
            "01",
            "-p",
            "factor=3",
            "--run-dir",
            str(run_dir),
        ]
    )
    assert rc == 0
    assert json.loads((run_dir / "metrics.json").read_text())["01_landmarks"]["value"] == 63
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"metrics": {"01_landmarks.value": {"value": 60, "abs_tol": 5}}}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"metrics": {"01_landmarks.value": {"value": 80, "abs_tol": 5, "direction": "higher"}}}))
    assert main(["study", "--check-run", str(run_dir), "--baseline", str(good)]) == 0
    assert main(["study", "--check-run", str(run_dir), "--baseline", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "regression check passed" in out and "regression check FAILED" in out
    # --check runs, then writes the check into study.json and the report (check_study)
    checked = tmp_path / "cli-checked"
    assert (
        main(
            [
                "study",
                "--profile",
                "smoke",
                "--notebook-dir",
                str(study_dir),
                "--notebooks",
                "01",
                "-p",
                "factor=3",
                "--run-dir",
                str(checked),
                "--check",
                "--baseline",
                str(bad),
            ]
        )
        == 1
    )
    study = json.loads((checked / "study.json").read_text())
    assert study["ok"] is False and study["check"]["rows"][0]["actual"] == 63 and study["check"]["ok"] is False
    assert "## Regression check" in (checked / "report.md").read_text()
    capsys.readouterr()
    # a failing notebook gives exit code 1 and names the cell
    rc = main(["study", "--notebook-dir", str(study_dir), "--notebooks", "02", "--run-dir", str(tmp_path / "fail")])
    assert rc == 1
    assert "02_subregions.ipynb failed in cell 2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["study", "--notebooks", "07"])


RECORD_RESUME = (
    "import os\n"
    "from ferlib.profiles import get_profile\n"
    "from ferlib.runs import RunFolder\n"
    "from ferlib.study import NotebookContext\n"
    "ctx = NotebookContext('01_landmarks.ipynb', get_profile(profile), RunFolder.at(run_dir), dataset=dataset)\n"
    "ctx.record(value=factor, resumes=ctx.train_config('lan').resume)\n"
)


def test_resume_reruns_the_notebooks_into_the_same_study_with_resuming_training_configs(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "01_landmarks.ipynb", [PARAMS, RECORD_RESUME])
    run_dir = tmp_path / "run"
    cfg = StudyConfig(
        profile="smoke", notebooks=("01_landmarks.ipynb",), notebook_dir=str(nbs), parameters={"factor": 1}
    )
    assert run_study(cfg, run_dir=run_dir).ok
    assert json.loads((run_dir / "metrics.json").read_text())["01_landmarks"] == {"value": 1, "resumes": False}
    with pytest.raises(FileExistsError, match="already holds a study"):
        run_study(cfg, run_dir=run_dir)
    again = StudyConfig(**{**cfg.__dict__, "parameters": {"factor": 2}})
    assert run_study(again, run_dir=run_dir, resume=True).ok
    # same folder, the notebook ran again, and its training configs resume (finished runs are read back)
    assert json.loads((run_dir / "metrics.json").read_text())["01_landmarks"] == {"value": 2, "resumes": True}
    assert "FERLIB_STUDY_RESUME" not in __import__("os").environ  # restored after the run
    other = StudyConfig(**{**cfg.__dict__, "profile": "default"})
    with pytest.raises(ValueError, match="profile: folder has 'smoke', now 'default'"):
        run_study(other, run_dir=run_dir, resume=True)
    with pytest.raises(FileNotFoundError, match="holds no study"):
        run_study(cfg, run_dir=tmp_path / "empty", resume=True)
    args = ["study", "--profile", "smoke", "--notebook-dir", str(nbs), "--notebooks", "01"]
    assert main([*args, "--resume"]) == 2
    assert "--resume continues the single study in --run-dir" in capsys.readouterr().err
    assert main([*args, "--run-dir", str(run_dir), "--resume", "-p", "factor=3"]) == 0
    assert json.loads((run_dir / "metrics.json").read_text())["01_landmarks"]["value"] == 3


def test_profiles_env_default_overrides_and_errors(monkeypatch):
    monkeypatch.setenv(PROFILE_ENV, "smoke")
    assert profile_name(None) == "smoke" and get_profile().name == "smoke"
    assert get_profile("full").name == "full"  # the argument wins over the environment
    monkeypatch.delenv(PROFILE_ENV)
    assert profile_name(None) == "default"
    p = get_profile("smoke", ablation_points=3, models="lan", cam_images=None)
    assert p.ablation_points == 3 and p.models == ("lan",) and p.cam_images == get_profile("smoke").cam_images
    with pytest.raises(ValueError, match="unknown study profile 'fast'"):
        get_profile("fast")
    with pytest.raises(TypeError, match="unknown profile field"):
        get_profile("smoke", epoch=3)
    with pytest.raises(TypeError, match="unknown profile field"):
        get_profile("smoke", epochs=3)  # a training budget: the engine profile's, not the study's
    # the slow CAM methods stay out of the fast profiles
    for name in ("smoke", "default"):
        assert not {"ScoreCAM", "AblationCAM"} & set(get_profile(name).cam_methods)
    assert get_profile("smoke").tqdm_disable


def test_clean_notebook_strips_injected_cell_metadata_and_stderr():
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"duration": 1.0}
    nb.metadata["widgets"] = {"state": {}}
    nb.metadata["kernelspec"] = {"name": "ferlib-venv", "display_name": "x", "language": "python"}
    params = nbformat.v4.new_code_cell("profile = None")
    params.metadata["tags"] = ["parameters"]
    injected = nbformat.v4.new_code_cell('run_dir = "/home/alice/ferlib/runs/x"')
    injected.metadata["tags"] = ["injected-parameters"]
    code = nbformat.v4.new_code_cell("print(1)", execution_count=4)
    code.metadata["papermill"] = {"duration": 2.0}
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="1\n"),
        nbformat.v4.new_output("stream", name="stderr", text="Warning at /tmp/x.py:3\n"),
    ]
    nb.cells = [params, injected, code]
    assert absolute_paths_in(nb) == [(1, "/home/alice"), (2, "/tmp/x.py")]
    clean_notebook(nb)
    assert len(nb.cells) == 2 and nb.cells[0].metadata["tags"] == ["parameters"]
    assert "papermill" not in nb.metadata and "widgets" not in nb.metadata
    assert "papermill" not in nb.cells[1].metadata
    assert [c.execution_count for c in nb.cells] == [1, 2]  # renumbered (nbval needs counts)
    assert [o["text"] for o in nb.cells[1].outputs] == ["1\n"]
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert absolute_paths_in(nb) == []


def test_export_notebooks_cleans_and_refuses_absolute_paths(study_dir, tmp_path):
    from ferlib.study import export_notebooks

    cfg = StudyConfig(profile="smoke", notebooks=("01_landmarks.ipynb",), notebook_dir=str(study_dir))
    out = tmp_path / "run"
    assert run_study(cfg, run_dir=out).ok
    target = tmp_path / "committed"
    target.mkdir()
    written = export_notebooks(out, target)
    nb = nbformat.read(str(written[0]), as_version=4)
    assert [c.metadata.get("tags", []) for c in nb.cells] == [["parameters"], []]  # injected cell gone
    assert "papermill" not in nb.metadata
    assert nb.cells[1].outputs[0]["text"] == "recorded 42\n"  # outputs kept
    # a notebook that prints an absolute path is refused
    _notebook(study_dir / "02_subregions.ipynb", [PARAMS, "print('/tmp/somewhere/file.png')"])
    cfg2 = StudyConfig(profile="smoke", notebooks=("02_subregions.ipynb",), notebook_dir=str(study_dir))
    assert run_study(cfg2, run_dir=tmp_path / "run2").ok
    with pytest.raises(ValueError, match="absolute path"):
        export_notebooks(tmp_path / "run2", target)
    # a failed run is never exported
    _notebook(study_dir / "03_training.ipynb", [PARAMS, "raise RuntimeError('no')"])
    cfg3 = StudyConfig(profile="smoke", notebooks=("03_training.ipynb",), notebook_dir=str(study_dir))
    run_study(cfg3, run_dir=tmp_path / "run3")
    with pytest.raises(ValueError, match="did not finish"):
        export_notebooks(tmp_path / "run3", target)


def test_prepare_notebook_context_trains_with_the_engine_profile_and_writes_figures(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ferlib.study import prepare_notebook

    monkeypatch.setenv("FERLIB_RUNS", str(tmp_path))
    ctx = prepare_notebook("03_training.ipynb", profile="default", models="lan", ablation_points=3)
    assert ctx.run_dir == tmp_path / "notebooks-default"  # run_dir=None: shared per-profile folder
    assert ctx.models == ("lan",) and ctx.profile.ablation_points == 3
    assert ctx.dataset_label == "SynthFER (synthetic, frontal preset), profile default, seed(s) 0"
    assert ctx.train_profile.name == "study-default" and ctx.synthfer_preset == "frontal"
    cfg = ctx.train_config("lan", 2, epochs=5)
    assert (cfg.model, cfg.seed, cfg.epochs, cfg.profile) == ("lan", 2, 5, "study-default")
    assert cfg.run_dir == str(ctx.run_dir / "train" / "lan" / "seed-2") and not cfg.tensorboard
    assert cfg.lr is None and cfg.batch_size is None  # the engine profile caps them (max_lr 0.01)
    assert not cfg.resume
    monkeypatch.setenv("FERLIB_STUDY_RESUME", "1")  # a resumed study (ferlib study --resume)
    assert ctx.train_config("lan", 2).resume
    monkeypatch.delenv("FERLIB_STUDY_RESUME")
    ablation = ctx.train_config("lan", profile=ctx.profile.ablation_profile, model_kwargs={"alpha": 0.5})
    assert (ablation.seed, ablation.profile, ablation.model_kwargs) == (0, "ablation-default", {"alpha": 0.5})
    full = prepare_notebook(
        "03_training.ipynb", profile="full", dataset="rafdb", data_root="/data/raf", run_dir=tmp_path / "f"
    )
    assert full.dataset_label == "rafdb, profile full, seed(s) 0,1,2"
    assert full.train_config("lan", 1).root == "/data/raf" and full.train_config("lan", 1).profile == "study-full"
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    path = ctx.save_figure(fig, "curves")
    assert path.name == "03_curves.png" and path.read_bytes()[:4] == b"\x89PNG"
    ctx.record(headline=["a.b"], a={"b": 1.5})
    ctx.record(c=2)
    assert ctx.metrics_of("03_training") == {"a": {"b": 1.5}, "headline": ["a.b"], "c": 2}
    with pytest.raises(KeyError, match="headline metric"):
        ctx.record(headline=["nope"])


def test_study_modules_import_one_way():
    """Each module of ferlib.study imports only modules listed before it (no cycles, no pairs)."""
    import ast

    import ferlib.study

    # stats, figures and exercises are called from inside the notebooks and import no study module
    order = ["stats", "figures", "exercises", "context", "check", "results", "report", "runner", "sweep", "export"]
    pkg = Path(ferlib.study.__file__).parent
    assert sorted(p.stem for p in pkg.glob("*.py") if p.stem != "__init__") == sorted(order)
    for i, name in enumerate(order):
        tree = ast.parse((pkg / f"{name}.py").read_text())
        imported = {
            node.module.split(".")[2]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ferlib.study.")
        }
        assert imported <= set(order[:i]), f"ferlib/study/{name}.py imports {imported - set(order[:i])}"
        assert len((pkg / f"{name}.py").read_text().splitlines()) < 600
