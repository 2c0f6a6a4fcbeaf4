"""The study report: ``report.md`` and ``report.html`` in the run folder, with each notebook's
status, duration and headline numbers, the regression check and the figures.

SynthFER numbers are synthetic; every report says which dataset and profile produced them.
"""

from __future__ import annotations

import html
from pathlib import Path

from ferlib.fileio import atomic_write_text
from ferlib.profiles import get_profile
from ferlib.study.check import format_value
from ferlib.study.results import StudyResult


def _figures_by_notebook(run_dir: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for png in sorted(run_dir.glob("*.png")):
        out.setdefault(png.name.split("_", 1)[0], []).append(png.name)
    return out


def write_report(study: StudyResult) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into the run folder and return their paths."""
    cfg = study.config
    prof = get_profile(cfg.profile)
    synthetic = cfg.dataset.lower() == "synthfer"
    dataset = "SynthFER (synthetic data, not a paper reproduction)" if synthetic else cfg.dataset
    status = "passed" if study.ok else "FAILED"
    figures = _figures_by_notebook(study.run_dir)

    md: list[str] = [
        f"# ferlib study — {study.run_dir.name}",
        "",
        f"**Status:** {status} · **dataset:** {dataset} · **profile:** {prof.name} "
        f"({prof.description}) · **seed:** {cfg.seed} · **device:** {cfg.device} · "
        f"**total time:** {study.duration_s:.0f} s",
        "",
    ]
    if cfg.parameters:
        md += ["**Extra parameters:** " + ", ".join(f"`{k}={v!r}`" for k, v in cfg.parameters.items()), ""]
    md += ["| notebook | status | duration | headline numbers |", "|---|---|---:|---|"]
    for r in study.notebooks:
        heads = "; ".join(f"{k} = {format_value(v)}" for k, v in r.headline.items()) or "—"
        link = f"[{r.notebook}]({r.output})" if r.output else r.notebook
        dur = f"{r.duration_s:.0f} s" if r.status != "not run" else "—"
        md.append(f"| {link} | {r.status} | {dur} | {heads} |")
    md.append("")
    if study.failed is not None:
        md += ["## Failure", "", study.failed.failure_message(), ""]
    if study.check is not None:
        md += ["## Regression check", "", study.check.to_markdown(), ""]
    if figures:
        md += ["## Figures", ""]
        for names in figures.values():
            for name in names:
                md += [f"![{name}]({name})", ""]
    md += [
        "Files: `metrics.json` (all numbers, by notebook), `study.json` (this table as data), "
        "`config.json`, `versions.json`, `notebooks/` (executed notebooks).",
        "",
    ]
    md_path = atomic_write_text(study.run_dir / "report.md", "\n".join(md))

    esc = html.escape
    rows = []
    for r in study.notebooks:
        heads = "<br>".join(f"{esc(k)} = {esc(format_value(v))}" for k, v in r.headline.items()) or "—"
        link = f'<a href="{esc(r.output)}">{esc(r.notebook)}</a>' if r.output else esc(r.notebook)
        dur = f"{r.duration_s:.0f} s" if r.status != "not run" else "—"
        rows.append(
            f'<tr class="{esc(r.status.replace(" ", "-"))}"><td>{link}</td><td>{esc(r.status)}</td>'
            f"<td>{dur}</td><td>{heads}</td></tr>"
        )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>ferlib study {esc(study.run_dir.name)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "tr.failed{background:#fdd}tr.not-run{color:#999}img{max-width:100%}</style></head><body>",
        f"<h1>ferlib study — {esc(study.run_dir.name)}</h1>",
        f"<p><b>Status:</b> {esc(status)} · <b>dataset:</b> {esc(dataset)} · <b>profile:</b> "
        f"{esc(prof.name)} ({esc(prof.description)}) · <b>seed:</b> {cfg.seed} · "
        f"<b>device:</b> {esc(cfg.device)} · <b>total time:</b> {study.duration_s:.0f} s</p>",
        "<table><tr><th>notebook</th><th>status</th><th>duration</th><th>headline numbers</th></tr>",
        *rows,
        "</table>",
    ]
    if study.failed is not None:
        parts += ["<h2>Failure</h2>", f"<pre>{esc(study.failed.failure_message())}</pre>"]
    if study.check is not None:
        parts += ["<h2>Regression check</h2>", study.check.to_html()]
    for prefix, names in figures.items():
        parts.append(f"<h2>Figures of notebook {esc(prefix)}</h2>")
        parts += [f'<figure><img src="{esc(n)}"><figcaption>{esc(n)}</figcaption></figure>' for n in names]
    parts.append("</body></html>")
    html_path = atomic_write_text(study.run_dir / "report.html", "\n".join(parts))
    return md_path, html_path
