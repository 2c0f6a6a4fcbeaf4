"""Committed notebooks: clean an executed notebook for commit and copy a run's notebooks back.

:func:`export_notebooks` copies executed notebooks back over the committed ones, without the
injected parameters, papermill/widget metadata and stderr.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ferlib.fileio import atomic_write_text
from ferlib.study.context import KERNEL_NAME, default_notebook_dir
from ferlib.study.results import NotebookResult

#: Metadata nbstripout drops from committed notebooks (besides outputs it is told to keep).
STRIP_EXTRA_KEYS = ("metadata.papermill", "cell.metadata.papermill", "metadata.widgets")
#: What the nbstripout command line strips by default (cell timings among them); ``strip_output``
#: called as a function only strips what it is given.
NBSTRIPOUT_DEFAULT_KEYS = (
    "metadata.signature",
    "cell.metadata.collapsed",
    "cell.metadata.ExecuteTime",
    "cell.metadata.execution",
    "cell.metadata.heading_collapsed",
    "cell.metadata.hidden",
    "cell.metadata.scrolled",
)

_ABSOLUTE_PATH = re.compile(r"(?<![\w.])(/(?:home|root|tmp|work|Users|usr|opt|var)/[\w.-]+)")


def clean_notebook(nb: Any) -> Any:
    """Make an executed notebook commit-ready (in place; also returned).

    Drops the ``injected-parameters`` cell, stderr streams (warnings, progress bars) and widget
    views (their state is not kept, so they could not render; explorers show a static frame), strips
    papermill and widget metadata with nbstripout (outputs kept) and sets the kernel to ``python3``.
    Execution counts are kept, renumbered 1..n over the code cells: nbval refuses a reference cell
    that has outputs but no execution count ("Unrun reference cell has outputs").
    """
    from nbstripout import strip_output

    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = [
                o
                for o in cell.get("outputs", [])
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
                and "application/vnd.jupyter.widget-view+json" not in (o.get("data") or {})
            ]
    # Same result as `nbstripout --keep-output --keep-count --extra-keys "<STRIP_EXTRA_KEYS>"`, so
    # that `nbstripout --verify` with those flags passes on committed notebooks.
    strip_output(
        nb,
        keep_output=True,
        keep_count=True,
        keep_id=False,
        extra_keys=list(NBSTRIPOUT_DEFAULT_KEYS + STRIP_EXTRA_KEYS),
    )
    count = 0
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            count += 1
            cell.execution_count = count
            for out in cell.get("outputs", []):
                if "execution_count" in out:
                    out["execution_count"] = count
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": KERNEL_NAME}
    return nb


def absolute_paths_in(nb: Any) -> list[tuple[int, str]]:
    """(cell index, path) for every absolute filesystem path in a notebook's sources and outputs."""
    found = []
    for i, cell in enumerate(nb.cells):
        texts = [cell.get("source", "")]
        for out in cell.get("outputs", []):
            texts.append(out.get("text", "") if isinstance(out.get("text", ""), str) else "")
            for mime, value in (out.get("data") or {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    texts.append(value)
            texts.extend(out.get("traceback", []) or [])
        for text in texts:
            found += [(i, m) for m in _ABSOLUTE_PATH.findall(text)]
    return found


def export_notebooks(run_dir: str | os.PathLike, notebook_dir: str | os.PathLike | None = None) -> list[Path]:
    """Copy a successful run's executed notebooks over the committed ones, cleaned.

    Refuses (``ValueError``) when a notebook of the run failed or an output holds an absolute path.
    """
    import nbformat

    run_dir = Path(run_dir)
    nb_dir = Path(notebook_dir) if notebook_dir else default_notebook_dir()
    study = json.loads((run_dir / "study.json").read_text())
    bad = [r["notebook"] for r in study["notebooks"] if r["status"] != "ok"]
    if bad:
        raise ValueError(f"{run_dir}: notebooks {bad} did not finish; not exporting a failed run")
    cleaned = []
    for r in study["notebooks"]:
        nb = clean_notebook(nbformat.read(str(run_dir / r["output"]), as_version=4))
        paths = absolute_paths_in(nb)
        if paths:
            raise ValueError(
                f"{r['notebook']}: absolute path(s) in cells {sorted({i for i, _ in paths})} "
                f"(e.g. {paths[0][1]!r}); print paths relative to the run folder instead"
            )
        cleaned.append((nb_dir / r["notebook"], nb))
    for target, nb in cleaned:
        atomic_write_text(target, nbformat.writes(nb) + "\n")
    return [t for t, _ in cleaned]


def summarize(results: Iterable[NotebookResult]) -> str:
    """One line per notebook: name, status, duration."""
    return "\n".join(f"{r.notebook:<24} {r.status:<7} {r.duration_s:7.1f} s" for r in results)
