"""Sweeps: rerun the study once per parameter set of a YAML file, with a ``sweep.md`` summary."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ferlib.fileio import atomic_write_json, atomic_write_text
from ferlib.runs import new_run_dir
from ferlib.study.check import format_value
from ferlib.study.context import notebook_key
from ferlib.study.results import StudyConfig, StudyResult
from ferlib.study.runner import run_study

_CONFIG_KEYS = ("profile", "dataset", "data_root", "models", "device", "seed", "notebooks")


def load_sweep(path: str | os.PathLike, base: StudyConfig) -> list[tuple[str, StudyConfig]]:
    """Read a sweep file: a YAML list of parameter sets, each overriding ``base``.

    Each item is a mapping; ``name`` labels it, ``profile``/``dataset``/``data_root``/``models``/
    ``device``/``seed``/``notebooks`` set the study options, anything else is a notebook parameter
    (like ``-p``). A top-level mapping ``{base: {...}, runs: [...]}`` sets shared values first.
    """
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"sweep file {path} not found")
    data = yaml.safe_load(path.read_text())
    shared: dict[str, Any] = {}
    if isinstance(data, dict):
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
        changes: dict[str, Any] = {}
        params = dict(base.parameters)
        for key, value in merged.items():
            if key in _CONFIG_KEYS:
                if key in ("models", "notebooks") and value is not None:
                    value = (value,) if isinstance(value, str) else tuple(value)
                if key == "notebooks":
                    value = tuple(v if v.endswith(".ipynb") else v + ".ipynb" for v in value)
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
) -> tuple[Path, list[tuple[str, StudyResult]]]:
    """Run the study once per parameter set of sweep file ``path``.

    Each set gets ``<sweep folder>/<NN>-<name>/`` (a complete study folder with its report), and
    the sweep folder gets ``sweep.md``: one row per set with its status and headline numbers.
    A failing set is reported and the sweep goes on with the next one.
    """
    sets = load_sweep(path, base)
    root = Path(run_dir) if run_dir is not None else new_run_dir("sweep", runs_root)
    root.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, StudyResult]] = []
    for i, (label, cfg) in enumerate(sets, 1):
        if echo is not None:
            echo(f"== sweep set {i}/{len(sets)}: {label}")
        sub = root / f"{i:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', label)}"
        results.append((label, run_study(cfg, run_dir=sub, echo=echo)))
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
