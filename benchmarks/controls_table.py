"""Benchmark (not a test): the five networks beside ResNet-18 and their like-for-like controls, as a table.

Reads finished run folders (``metrics.json`` with ``test_selected``: the test accuracy of the
validation-selected epoch) and prints one Markdown row per model or control: the seeds' accuracies, mean ± std,
the 95 % interval (Student-t over seeds, or Wilson over the test faces for one seed), macro-F1, the flag of
``ferlib.study.stats`` (at chance / collapsed), and for a control the paired difference to the model it
controls (same test faces, same seeds: the mean difference over seeds with its Student-t interval).

    python benchmarks/controls_table.py --row resnet18=runs/lecture/train/resnet18 \\
        --row lan=runs/lecture/train/lan --row "lan-alpha0:lan=runs/controls/lan-alpha0" ...

``--row NAME=FOLDER`` reads ``FOLDER/seed-*/metrics.json``; ``NAME:PARTNER=FOLDER`` marks NAME as a control of
the row PARTNER.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ferlib.study.stats import seed_interval, summarize_model


def _runs(folder: Path) -> dict[int, dict]:
    runs = {}
    for seed_dir in sorted(folder.glob("seed-*")):
        metrics = seed_dir / "metrics.json"
        if metrics.is_file():
            runs[int(seed_dir.name.split("-")[1])] = json.loads(metrics.read_text())
    if not runs:
        raise SystemExit(f"{folder}: no finished run (seed-*/metrics.json)")
    return runs


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--row", action="append", required=True, metavar="NAME[:PARTNER]=FOLDER")
    args = ap.parse_args()
    rows: dict[str, tuple[str | None, dict[int, dict]]] = {}
    for spec in args.row:
        name, folder = spec.split("=", 1)
        name, _, partner = name.partition(":")
        rows[name] = (partner or None, _runs(Path(folder)))

    print(
        "| model | seeds | test accuracy % per seed | mean ± std % | 95 % interval % | macro-F1 | flag "
        "| control − model (points, paired by seed) |"
    )
    print("|---|---:|---|---|---|---:|---|---|")
    for name, (partner, runs) in rows.items():
        tests = [r["test_selected"] for r in runs.values()]
        s = summarize_model(tests)
        acc = s["accuracy"]
        per_seed = ", ".join(_pct(t["accuracy"]) for t in tests)
        interval = f"{_pct(acc['low'])}–{_pct(acc['high'])} ({acc['interval']})"
        diff = "—"
        if partner is not None:
            other = rows[partner][1]
            common = sorted(set(runs) & set(other))
            d = [runs[k]["test_selected"]["accuracy"] - other[k]["test_selected"]["accuracy"] for k in common]
            di = seed_interval(d)
            diff = f"{100 * di['mean']:+.1f}"
            if di["low"] is not None:
                diff += f" [{100 * di['low']:+.1f}, {100 * di['high']:+.1f}]"
            diff += f" vs `{partner}` (seeds {','.join(map(str, common))})"
        f1 = float(np.mean([t["macro_f1"] for t in tests]))
        print(
            f"| `{name}` | {len(tests)} | {per_seed} | {100 * acc['mean']:.1f} ± {100 * acc['std']:.1f} | {interval} "
            f"| {f1:.3f} | {s['flag'] or '—'} | {diff} |"
        )


if __name__ == "__main__":
    main()
