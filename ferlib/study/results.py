"""What a study run is configured with (:class:`StudyConfig`) and what it produced
(:class:`NotebookResult` per notebook, :class:`StudyResult` for the run)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferlib.study.check import CheckResult
from ferlib.study.context import KERNEL_NAME, NOTEBOOKS, jsonable


@dataclass(frozen=True)
class StudyConfig:
    """One study run: which notebooks, with which parameters (saved as the run's ``config.json``)."""

    profile: str = "default"
    dataset: str = "synthfer"
    data_root: str | None = None
    models: tuple[str, ...] | None = None
    device: str = "auto"
    seed: int = 0
    #: Extra notebook parameters (``-p key=value``); each goes to the notebooks that declare it.
    parameters: dict[str, Any] = field(default_factory=dict)
    notebooks: tuple[str, ...] = NOTEBOOKS
    notebook_dir: str | None = None
    kernel: str = KERNEL_NAME
    #: Per-cell timeout in seconds (None = no limit).
    cell_timeout: int | None = None


@dataclass
class NotebookResult:
    notebook: str
    status: str  # "ok" | "failed" | "not run"
    duration_s: float = 0.0
    output: str | None = None
    headline: dict[str, Any] = field(default_factory=dict)
    failed_cell: int | None = None
    failed_source: str | None = None
    error: str | None = None

    def failure_message(self) -> str:
        where = f"cell {self.failed_cell}" if self.failed_cell is not None else "before any cell"
        src = f" ({self.failed_source})" if self.failed_source else ""
        return (
            f"{self.notebook} failed in {where}{src}: {self.error}; "
            f"the executed notebook with the traceback is {self.output}"
        )


@dataclass
class StudyResult:
    run_dir: Path
    config: StudyConfig
    notebooks: list[NotebookResult]
    duration_s: float
    check: CheckResult | None = None

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.notebooks) and (self.check is None or self.check.ok)

    @property
    def failed(self) -> NotebookResult | None:
        return next((r for r in self.notebooks if r.status == "failed"), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "ok": self.ok,
            "duration_s": round(self.duration_s, 2),
            "config": jsonable(dataclasses.asdict(self.config)),
            "notebooks": [dataclasses.asdict(r) for r in self.notebooks],
            "check": None if self.check is None else self.check.to_dict(),
        }
