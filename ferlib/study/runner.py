"""Running the study: execute the notebooks in order with papermill into one run folder.

:func:`run_study` executes ``notebooks/01_landmarks.ipynb`` … ``06_robustness.ipynb`` in order with
``papermill.execute_notebook`` (kernel ``python3``, working directory ``notebooks/``), into
``runs/<stamp>-study/``: the executed notebooks, the figures, ``metrics.json``, ``study.json`` and
the report. It stops at the first failing notebook and names the failing cell.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ferlib.config import to_dict
from ferlib.fileio import atomic_write_json
from ferlib.runs import RunFolder
from ferlib.study.check import CheckResult, check_run
from ferlib.study.context import (
    HEADLINE_KEY,
    KERNEL_NAME,
    NOTEBOOKS,
    RESUME_ENV,
    default_notebook_dir,
    flatten_section,
    notebook_key,
    read_run_metrics,
)
from ferlib.study.report import write_report
from ferlib.study.results import NotebookResult, StudyConfig, StudyResult


def parse_parameter(text: str) -> tuple[str, Any]:
    """``"epochs=3"`` → ``("epochs", 3)``; values are YAML (``models=[lan,ma-net]``, ``x=null``)."""
    import yaml

    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ValueError(
            f"notebook parameter {text!r} is not key=value with a Python identifier as key (example: -p epochs=3)"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ValueError(f"cannot parse the value of -p {text!r} as YAML: {exc}") from None
    return key, value


def _notebook_dir(config: StudyConfig) -> Path:
    nb_dir = Path(config.notebook_dir) if config.notebook_dir else default_notebook_dir()
    if not nb_dir.is_dir():
        raise FileNotFoundError(
            f"notebook folder {nb_dir} not found; run from a ferlib checkout or pass --notebook-dir"
        )
    return nb_dir


def _declared_parameters(path: Path) -> set[str]:
    import papermill

    return set(papermill.inspect_notebook(str(path)))


def notebook_parameters(config: StudyConfig, run_dir: Path) -> dict[str, Any]:
    """The parameters the study offers every notebook (each gets those it declares)."""
    params: dict[str, Any] = {
        "profile": config.profile,
        "dataset": config.dataset,
        "data_root": config.data_root,
        "device": config.device,
        "seed": config.seed,
        "run_dir": str(run_dir.resolve()),
    }
    if config.models is not None:
        params["models"] = list(config.models)
    params.update(config.parameters)
    return params


def plan_notebooks(config: StudyConfig, run_dir: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    """Check every notebook exists and every extra parameter is declared somewhere, before running."""
    nb_dir = _notebook_dir(config)
    offered = notebook_parameters(config, run_dir)
    plan, used = [], set()
    for name in config.notebooks:
        path = nb_dir / name
        if not path.exists():
            raise FileNotFoundError(f"notebook {path} not found; known study notebooks: {', '.join(NOTEBOOKS)}")
        declared = _declared_parameters(path)
        if not declared:
            raise ValueError(
                f"{path} has no cell tagged 'parameters'; papermill cannot inject the study's "
                "parameters (tag the first code cell 'parameters')"
            )
        params = {k: v for k, v in offered.items() if k in declared}
        used |= set(params)
        plan.append((name, path, params))
    unused = sorted(set(config.parameters) - used)
    if unused:
        raise ValueError(
            f"parameter(s) {unused} are declared by none of the notebooks "
            f"{', '.join(config.notebooks)}; check the spelling against their 'parameters' cells"
        )
    return plan


def _headline(run_dir: Path, notebook: str) -> dict[str, Any]:
    section = read_run_metrics(run_dir).get(notebook_key(notebook)) or {}
    keys = section.get(HEADLINE_KEY) or []
    flat = flatten_section({k: v for k, v in section.items() if k != HEADLINE_KEY})
    return {k: flat[k] for k in keys if k in flat}


def _failure_details(output: Path, exc: Exception) -> tuple[int | None, str | None, str]:
    """(cell index in the source notebook, first source line, error text) of a papermill failure."""
    cell_index = getattr(exc, "cell_index", None)
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    error = f"{ename}: {evalue}" if ename else f"{type(exc).__name__}: {exc}"
    raw = getattr(exc, "source", None)
    lines = [ln for ln in (raw or "").splitlines() if ln.strip()]
    source = lines[0][:80] if lines else None
    if cell_index is not None and output.exists():
        import nbformat

        nb = nbformat.read(str(output), as_version=4)
        # papermill's index ignores the red error-banner cells it adds to the output notebook
        cells = [c for c in nb.cells if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])]
        injected = sum(1 for c in cells[:cell_index] if "injected-parameters" in c.get("metadata", {}).get("tags", []))
        cell_index -= injected  # number it as in the notebook the user edits
    return cell_index, source, error


def run_notebook(
    path: Path,
    output: Path,
    parameters: Mapping[str, Any],
    *,
    cwd: Path,
    kernel: str = KERNEL_NAME,
    cell_timeout: int | None = None,
) -> NotebookResult:
    """Execute one notebook with papermill; never raises for a failing cell (see the result)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    start = time.perf_counter()
    result = NotebookResult(notebook=path.name, status="ok", output=str(output))
    kwargs: dict[str, Any] = {}
    if cell_timeout is not None:
        kwargs["execution_timeout"] = cell_timeout
    try:
        papermill.execute_notebook(
            str(path),
            str(output),
            parameters=dict(parameters),
            kernel_name=kernel,
            cwd=str(cwd),
            progress_bar=False,
            log_output=False,
            **kwargs,
        )
    except PapermillExecutionError as exc:
        result.status = "failed"
        result.failed_cell, result.failed_source, result.error = _failure_details(output, exc)
    except Exception as exc:  # kernel died, timeout, missing kernel spec...
        result.status = "failed"
        result.error = f"{type(exc).__name__}: {exc}"
    result.duration_s = time.perf_counter() - start
    return result


#: What a study writes into its run folder; a folder holding any of these holds a study.
STUDY_MARKERS = ("study.json", "metrics.json", "sweep.json")


def check_unused_run_dir(run_dir: str | os.PathLike, overwrite: bool = False, echo: Any = None) -> None:
    """Refuse a run folder that already holds a study (its ``metrics.json`` would be merged into); with
    ``overwrite`` empty it first, so that no section of the old study survives into the new one."""
    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"--run-dir {path} is a file, not a folder; choose another --run-dir")
    found = [m for m in STUDY_MARKERS if (path / m).exists()]
    if not found:
        return
    if not overwrite:
        raise FileExistsError(
            f"run folder {path} already holds a study ({', '.join(found)}); its results would mix with the new "
            "run's. Choose another --run-dir, or pass --overwrite to delete the old study's files first"
        )
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if echo is not None:
        echo(f"--overwrite: removed the earlier study in {path}")


#: The settings a resumed study must share with the study already in its folder (results would not compare).
RESUME_MUST_MATCH = ("profile", "dataset", "data_root", "seed")


def check_resumable_run_dir(run_dir: str | os.PathLike, config: StudyConfig) -> None:
    """Refuse to resume a folder that holds no study, or a study of another profile, dataset or seed."""
    saved_file = Path(run_dir) / "config.json"
    if not saved_file.is_file():
        raise FileNotFoundError(
            f"--resume: {run_dir} holds no study (no config.json); run the study into it first, without --resume"
        )
    saved = json.loads(saved_file.read_text())
    now = to_dict(config)
    diff = [k for k in RESUME_MUST_MATCH if saved.get(k) != now.get(k)]
    if diff:
        detail = ", ".join(f"{k}: folder has {saved.get(k)!r}, now {now.get(k)!r}" for k in diff)
        raise ValueError(
            f"--resume: the study in {run_dir} was run with other settings ({detail}); resume it with the same "
            "ones, or choose another --run-dir"
        )


@contextlib.contextmanager
def _resume_env(resume: bool):
    """:data:`~ferlib.study.context.RESUME_ENV` set for the kernels papermill starts, restored afterwards."""
    old = os.environ.get(RESUME_ENV)
    if resume:
        os.environ[RESUME_ENV] = "1"
    else:
        os.environ.pop(RESUME_ENV, None)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(RESUME_ENV, None)
        else:
            os.environ[RESUME_ENV] = old


def run_study(
    config: StudyConfig,
    run_dir: str | os.PathLike | None = None,
    *,
    runs_root: str | os.PathLike | None = None,
    name: str = "study",
    echo: Any = None,
    overwrite: bool = False,
    resume: bool = False,
) -> StudyResult:
    """Run the notebooks of ``config`` in order into a run folder; stop at the first failure.

    ``run_dir`` None creates ``<runs_root|$FERLIB_RUNS|runs>/<stamp>-<name>/``. A ``run_dir`` that already
    holds a study is refused unless ``overwrite`` (then its old files are removed first: a study never
    merges into an old one). With ``resume`` the study continues in ``run_dir`` (same profile, dataset and seed,
    :func:`check_resumable_run_dir`): every notebook runs again, and each training run already finished there is
    read back instead of retrained (an interrupted one continues). The notebooks and parameters are checked
    before any folder is made.
    ``echo`` (e.g. ``print``) receives one line per notebook as it finishes. Writes ``config.json``,
    ``versions.json``, ``study.json`` and ``report.md``/``report.html``.
    """
    planned_path = Path(run_dir) if run_dir is not None else Path(runs_root or ".") / "study"
    plan_notebooks(config, planned_path)  # refuses a bad notebook or parameter before anything is written
    if resume and (run_dir is None or overwrite):
        raise ValueError("--resume continues the study in --run-dir: name that folder, and leave --overwrite out")
    if run_dir is not None:
        if resume:
            check_resumable_run_dir(run_dir, config)
        else:
            check_unused_run_dir(run_dir, overwrite, echo)
    folder = RunFolder.at(run_dir) if run_dir is not None else RunFolder.create(name, runs_root)
    run_path = folder.path
    plan = plan_notebooks(config, run_path)
    folder.write_config(config)
    folder.write_versions()
    (run_path / "notebooks").mkdir(exist_ok=True)
    nb_dir = _notebook_dir(config)

    start = time.perf_counter()
    with _resume_env(resume):
        results, failed = _run_plan(plan, run_path, config, nb_dir, start, echo)
    study = StudyResult(run_path, config, results, time.perf_counter() - start)
    _write_outputs(study)
    return study


def _run_plan(plan, run_path: Path, config: StudyConfig, nb_dir: Path, start: float, echo: Any):
    """Execute the planned notebooks in order, writing the report after each; stop after the first failure."""
    results: list[NotebookResult] = []
    failed = False
    for nb_name, path, params in plan:
        if failed:
            results.append(NotebookResult(notebook=nb_name, status="not run"))
            continue
        res = run_notebook(
            path,
            run_path / "notebooks" / nb_name,
            params,
            cwd=nb_dir,
            kernel=config.kernel,
            cell_timeout=config.cell_timeout,
        )
        res.output = str(Path("notebooks") / nb_name)
        if res.status == "ok":
            res.headline = _headline(run_path, nb_name)
        results.append(res)
        if echo is not None:
            echo(
                f"{nb_name:<24} {res.status:<6} {res.duration_s:7.1f} s"
                + ("" if res.status == "ok" else f"  {res.error}")
            )
        failed = res.status != "ok"
        _write_outputs(StudyResult(run_path, config, results, time.perf_counter() - start))
    return results, failed


def check_study(study: StudyResult, baseline_file: str | os.PathLike) -> CheckResult:
    """Check a finished run's metrics against ``baseline_file`` (:func:`~ferlib.study.check_run`),
    attach the result to ``study`` and rewrite its ``study.json`` and report with it."""
    study.check = check_run(study.run_dir, baseline_file)
    _write_outputs(study)
    return study.check


def _write_outputs(study: StudyResult) -> None:
    atomic_write_json(study.run_dir / "study.json", study.to_dict())
    write_report(study)
