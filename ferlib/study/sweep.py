"""Sweeps: rerun the study once per parameter set of a YAML file, with a ``sweep.md`` summary."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ferlib.fileio import atomic_write_json, atomic_write_text
from ferlib.profiles import profile_name
from ferlib.runs import make_folder, new_run_dir
from ferlib.study.check import format_value
from ferlib.study.context import NOTEBOOKS, notebook_key
from ferlib.study.results import NotebookResult, StudyConfig, StudyResult
from ferlib.study.runner import check_unused_run_dir, plan_notebooks, run_study

_CONFIG_KEYS = ("profile", "dataset", "data_root", "models", "device", "seed", "notebooks")


def resolve_notebook(item: Any, where: str) -> str:
    """A study notebook from a number (``1``, ``"01"``), a name prefix (``"04_abl"``) or a file name."""
    if isinstance(item, bool) or not isinstance(item, (int, str)):
        raise ValueError(f"{where}: notebooks are given by number or name, e.g. [01, 04_ablations], got {item!r}")
    text = f"{item:02d}" if isinstance(item, int) else str(item).strip()
    matches = [nb for nb in NOTEBOOKS if nb == text or nb.startswith(text)]
    if len(matches) != 1:
        raise ValueError(
            f"{where}: {item!r} names {'no' if not matches else 'several'} study notebook(s); "
            f"use a number or name from {', '.join(NOTEBOOKS)}"
        )
    return matches[0]


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path} line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"sweep file {where}: YAML syntax error ({problem}); fix the file and rerun") from None


def load_sweep(path: str | os.PathLike, base: StudyConfig) -> list[tuple[str, StudyConfig]]:
    """Read a sweep file: a YAML list of parameter sets, each overriding ``base``.

    Each item is a mapping; ``name`` labels it, ``profile``/``dataset``/``data_root``/``models``/
    ``device``/``seed``/``notebooks`` set the study options, anything else is a notebook parameter
    (like ``-p``). A top-level mapping ``{base: {...}, runs: [...]}`` sets shared values first.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep file {path} not found")
    data = _read_yaml(path)
    shared: dict[str, Any] = {}
    if isinstance(data, dict):
        if not isinstance(data.get("base") or {}, dict):
            raise ValueError(f"{path}: 'base' must be a mapping of shared values, e.g. base: {{profile: smoke}}")
        shared = dict(data.get("base") or {})
        data = data.get("runs")
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) for d in data):
        raise ValueError(
            f"{path} must hold a non-empty YAML list of parameter sets (mappings), e.g.\n"
            "- {name: lam04, profile: smoke, notebooks: [04_ablations.ipynb], lam: 0.4}\n"
            "or a mapping with 'base' and 'runs'"
        )
    out = []
    for i, item in enumerate(data):
        merged = {**shared, **item}
        label = str(merged.pop("name", f"set{i + 1}"))
        where = f"{path} set {i + 1} ({label})"
        changes: dict[str, Any] = {}
        params = dict(base.parameters)
        for key, value in merged.items():
            if not isinstance(key, str) or not key.isidentifier():
                raise ValueError(f"{where}: {key!r} is not a parameter name (a Python identifier)")
            if key in _CONFIG_KEYS:
                if key in ("models", "notebooks") and value is not None:
                    value = (value,) if isinstance(value, (str, int)) else tuple(value)
                if key == "notebooks":
                    if value is None:
                        raise ValueError(f"{where}: notebooks must list notebooks, e.g. [01, 04]")
                    value = tuple(resolve_notebook(v, where) for v in value)
                changes[key] = value
            else:
                params[key] = value
        out.append((label, dataclasses.replace(base, parameters=params, **changes)))
    return out


def run_sweep(
    path: str | os.PathLike,
    base: StudyConfig,
    *,
    runs_root: str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
    echo: Any = None,
    overwrite: bool = False,
) -> tuple[Path, list[tuple[str, StudyResult]]]:
    """Run the study once per parameter set of sweep file ``path``.

    Every set is checked first (its notebooks exist, its parameters are declared): a bad set refuses the
    whole sweep before anything runs, naming the set. Each set gets ``<sweep folder>/<NN>-<name>/`` (a
    complete study folder with its report), and the sweep folder gets ``sweep.md``: one row per set with
    its status and headline numbers. A set that fails while running is reported and the sweep goes on
    with the next one. A ``run_dir`` that already holds a sweep or study is refused unless ``overwrite``.
    """
    sets = load_sweep(path, base)
    for i, (label, cfg) in enumerate(sets, 1):
        try:
            profile_name(cfg.profile)
            if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int):
                raise ValueError(f"seed must be an integer, got {cfg.seed!r}")
            plan_notebooks(cfg, Path("sweep") / f"{i:02d}")
        except (ValueError, FileNotFoundError) as exc:
            raise ValueError(f"sweep file {path} set {i} ({label}): {exc}; nothing was run") from None
    if run_dir is not None:
        check_unused_run_dir(run_dir, overwrite, echo)
        root = make_folder(run_dir, "sweep folder")
    else:
        root = new_run_dir("sweep", runs_root)
    results: list[tuple[str, StudyResult]] = []
    for i, (label, cfg) in enumerate(sets, 1):
        if echo is not None:
            echo(f"== sweep set {i}/{len(sets)}: {label}")
        sub = root / f"{i:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', label)}"
        try:
            res = run_study(cfg, run_dir=sub, echo=echo)
        except (ValueError, FileNotFoundError, OSError) as exc:  # reported in sweep.md; the next set still runs
            res = StudyResult(sub, cfg, [NotebookResult(nb, "failed", error=str(exc)) for nb in cfg.notebooks], 0.0)
            if echo is not None:
                echo(f"set {label} FAILED: {exc}")
        results.append((label, res))
        write_sweep_report(root, results)
    return root, results


def write_sweep_report(root: Path, results: Sequence[tuple[str, StudyResult]]) -> Path:
    lines = [
        f"# ferlib sweep — {root.name}",
        "",
        "| set | folder | profile | dataset | parameters | status | headline numbers |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, res in results:
        heads = (
            "; ".join(
                f"{notebook_key(r.notebook)}: {k} = {format_value(v)}"
                for r in res.notebooks
                for k, v in r.headline.items()
            )
            or "—"
        )
        params = ", ".join(f"{k}={v!r}" for k, v in res.config.parameters.items()) or "—"
        dataset = res.config.dataset + (" (synthetic)" if res.config.dataset == "synthfer" else "")
        lines.append(
            f"| {label} | [{res.run_dir.name}]({res.run_dir.name}/report.md) | {res.config.profile} | "
            f"{dataset} | {params} | {'ok' if res.ok else 'FAILED'} | {heads} |"
        )
    atomic_write_json(root / "sweep.json", [{"set": label, **res.to_dict()} for label, res in results])
    return atomic_write_text(root / "sweep.md", "\n".join(lines) + "\n")
