"""Regression check: compare a run's ``metrics.json`` with a committed baseline.

:func:`check_metrics` compares a smoke run with ``notebooks/baselines/smoke_metrics.json`` (values
with tolerances and a direction) and reports regressions row by row (:class:`CheckResult`).
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferlib.study.context import default_notebook_dir, flatten_metrics, read_run_metrics


def format_value(value: Any) -> str:
    """A metric as reports print it (4 significant digits; lists joined)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def baseline_path(profile: str = "smoke", notebook_dir: str | os.PathLike | None = None) -> Path:
    nb_dir = Path(notebook_dir) if notebook_dir else default_notebook_dir()
    return nb_dir / "baselines" / f"{profile}_metrics.json"


@dataclass
class CheckRow:
    metric: str
    expected: Any
    actual: Any
    rule: str
    ok: bool
    reason: str = ""


@dataclass
class CheckResult:
    baseline: str
    rows: list[CheckRow]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failures(self) -> list[CheckRow]:
        return [r for r in self.rows if not r.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "ok": self.ok, "rows": [dataclasses.asdict(r) for r in self.rows]}

    def summary(self) -> str:
        if self.ok:
            return f"regression check passed: {len(self.rows)} metric(s) within tolerance of {self.baseline}"
        lines = [f"regression check FAILED against {self.baseline}:"]
        lines += [f"  {r.metric}: {r.reason}" for r in self.failures]
        lines.append(
            "If the change is intended, update the baseline (value and tolerance) in that file "
            "and say why in the commit message."
        )
        return "\n".join(lines)

    def to_markdown(self) -> str:
        lines = [
            f"Baseline `{self.baseline}`: {'passed' if self.ok else 'FAILED'}",
            "",
            "| metric | baseline | this run | rule | ok |",
            "|---|---:|---:|---|---|",
        ]
        lines += [
            f"| {r.metric} | {format_value(r.expected)} | {format_value(r.actual)} | {r.rule} | "
            f"{'yes' if r.ok else 'NO: ' + r.reason} |"
            for r in self.rows
        ]
        return "\n".join(lines)

    def to_html(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr class='{'ok' if r.ok else 'failed'}'><td>{esc(r.metric)}</td><td>{esc(format_value(r.expected))}</td>"
            f"<td>{esc(format_value(r.actual))}</td><td>{esc(r.rule)}</td>"
            f"<td>{'yes' if r.ok else 'NO: ' + esc(r.reason)}</td></tr>"
            for r in self.rows
        )
        return (
            f"<p>Baseline <code>{esc(self.baseline)}</code>: {'passed' if self.ok else 'FAILED'}</p>"
            "<table><tr><th>metric</th><th>baseline</th><th>this run</th><th>rule</th><th>ok</th></tr>"
            f"{rows}</table>"
        )


def _check_one(name: str, spec: Mapping[str, Any], actual: Any) -> CheckRow:
    if not isinstance(spec, Mapping) or "value" not in spec:
        raise ValueError(
            f"baseline entry {name!r} must be a mapping with 'value' and optional "
            "'abs_tol', 'rel_tol', 'direction' (higher|lower|both)"
        )
    expected = spec["value"]
    direction = spec.get("direction", "both")
    if direction not in ("higher", "lower", "both"):
        raise ValueError(f"baseline entry {name!r}: direction must be higher, lower or both")
    if actual is None:
        return CheckRow(name, expected, None, "present", False, "missing from this run's metrics.json")
    if not isinstance(expected, (int, float)) or isinstance(expected, bool):
        ok = actual == expected
        return CheckRow(name, expected, actual, "equal", ok, "" if ok else f"expected {expected!r}, got {actual!r}")
    if not isinstance(actual, (int, float)) or isinstance(actual, bool):
        return CheckRow(name, expected, actual, "number", False, f"expected a number, got {actual!r}")
    tol = float(spec.get("abs_tol", 0.0)) + float(spec.get("rel_tol", 0.0)) * abs(float(expected))
    lo, hi = expected - tol, expected + tol
    if direction == "higher":  # a higher value is never a regression
        ok, rule = actual >= lo, f">= {format_value(lo)}"
    elif direction == "lower":  # a lower value is never a regression
        ok, rule = actual <= hi, f"<= {format_value(hi)}"
    else:
        ok, rule = lo <= actual <= hi, f"in [{format_value(lo)}, {format_value(hi)}]"
    reason = (
        ""
        if ok
        else (f"{format_value(actual)} is outside the allowed range ({rule}; baseline {format_value(expected)})")
    )
    return CheckRow(name, expected, actual, rule, ok, reason)


def check_metrics(
    metrics: Mapping[str, Any], baseline: Mapping[str, Any], baseline_name: str = "baseline"
) -> CheckResult:
    """Compare a run's nested ``metrics.json`` with a baseline ``{"metrics": {flat.name: spec}}``.

    A spec is ``{"value": v, "abs_tol": a, "rel_tol": r, "direction": "higher"|"lower"|"both"}``:
    the allowed band is ``v ± (a + r·|v|)``, open-ended on the side named by ``direction``
    (``higher`` for accuracies, ``lower`` for errors and losses, ``both`` for counts and shapes).
    Non-numeric values must be equal. A metric missing from the run fails.
    """
    specs = baseline.get("metrics")
    if not isinstance(specs, Mapping) or not specs:
        raise ValueError(f"{baseline_name}: expected a non-empty 'metrics' mapping")
    flat = flatten_metrics(metrics)
    rows = [_check_one(name, spec, flat.get(name)) for name, spec in specs.items()]
    return CheckResult(baseline_name, rows)


def check_run(run_dir: str | os.PathLike, baseline_file: str | os.PathLike) -> CheckResult:
    """:func:`check_metrics` on a run folder against a baseline file."""
    baseline_file = Path(baseline_file)
    if not baseline_file.exists():
        raise FileNotFoundError(
            f"baseline {baseline_file} not found; create it from a good smoke run "
            "(see docs/study.md, 'Regression check')"
        )
    baseline = json.loads(baseline_file.read_text())
    return check_metrics(read_run_metrics(run_dir), baseline, str(baseline_file))
