"""What can go wrong with a local dataset copy, and the load report that counts it.

Every error names the file, the expectation and the fix (:class:`DatasetError`); a loader in ``skip`` mode
records the same facts as a :class:`Problem` in its :class:`LoadReport` (``dataset.report``) instead of raising.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field


class DatasetError(Exception):
    """A problem with a local dataset copy: names the file, the expectation and the fix."""

    def __init__(self, file: str | os.PathLike, expectation: str, fix: str):
        self.file, self.expectation, self.fix = str(file), expectation, fix
        super().__init__(f"{file}: {expectation}. Fix: {fix}")


class LayoutError(DatasetError, FileNotFoundError):
    """A required file or folder is missing."""


class LabelFileError(DatasetError, ValueError):
    """A label file row cannot be parsed or contradicts another row."""


class CorruptImageError(DatasetError, OSError):
    """An image file cannot be decoded (or is too small to be a face image)."""


class EmptyDatasetError(LabelFileError):
    """A split has no images at all (an empty label file, or every row skipped)."""


@dataclass(frozen=True)
class Problem:
    """One problem found while loading: ``kind`` is missing, corrupt, bad_row, conflict, layout,
    duplicate (rows repeated with the same label, loaded once), bad_name, bad_path (a listed name that
    leads outside the dataset folder) or empty (a split without images)."""

    kind: str
    file: str
    expectation: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.file}: {self.expectation}. Fix: {self.fix}"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "file": self.file, "expectation": self.expectation, "fix": self.fix}


#: Problem kinds that leave the data as the user intended (only reported).
BENIGN_KINDS = ("duplicate",)


@dataclass
class LoadReport:
    """What a loader found: rows read, problems, labels dropped on purpose, images skipped."""

    name: str
    split: str
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    source: str | None = None  # the label file / list the split was read from, when there is one

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)

    def count(self, kind: str) -> int:
        return sum(1 for p in self.problems if p.kind == kind)

    @property
    def skipped(self) -> list[Problem]:
        """Images/rows left out because of a problem (everything but benign duplicates)."""
        return [p for p in self.problems if p.kind not in BENIGN_KINDS]

    def summary(self) -> str:
        kinds = Counter(p.kind for p in self.problems)
        parts = [f"{self.name}/{self.split}: {self.rows} label rows"]
        if kinds:
            parts.append("problems: " + ", ".join(f"{k}={n}" for k, n in sorted(kinds.items())))
        if self.dropped:
            parts.append("dropped on purpose: " + ", ".join(f"{k}={n}" for k, n in sorted(self.dropped.items())))
        return "; ".join(parts)


__all__ = [
    "BENIGN_KINDS",
    "CorruptImageError",
    "DatasetError",
    "EmptyDatasetError",
    "LabelFileError",
    "LayoutError",
    "LoadReport",
    "Problem",
]


#: How to skip and count unreadable images or bad rows, in each place a user can say it.
SKIP_HINT = "(`ferlib train -p on_corrupt=skip`, `ferlib data cache --on-corrupt skip`, on_corrupt='skip' in Python)"
