"""What every format shares: the load context (raise or record a problem), the layout check, label-file
lines, duplicate/conflict counting, missing-file handling and subject folds."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ferlib.data.errors import BENIGN_KINDS, SKIP_HINT, DatasetError, LabelFileError, LayoutError, LoadReport, Problem
from ferlib.data.manifests import Manifest
from ferlib.data.records import Record

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class LoadContext:
    """Builder context: raises on a problem in ``error`` mode, records it in ``skip`` mode."""

    def __init__(self, report: LoadReport, on_corrupt: str):
        if on_corrupt not in ("error", "skip"):
            raise ValueError(f"on_corrupt must be 'error' or 'skip', got {on_corrupt!r}")
        self.report = report
        self.on_corrupt = on_corrupt

    def problem(
        self, kind: str, file: Any, expectation: str, fix: str, exc: type[DatasetError] = LabelFileError
    ) -> None:
        if self.on_corrupt == "error" and kind not in BENIGN_KINDS:
            raise exc(
                file,
                expectation,
                fix + " (or skip and count such rows " + SKIP_HINT + ")",
            )
        self.report.add(Problem(kind, str(file), expectation, fix))

    def duplicate(self, file: Any, line_no: int, key: str) -> None:
        self.report.add(
            Problem(
                "duplicate",
                f"{file}:{line_no}",
                f"{key!r} listed again with the same label; loaded once",
                "nothing to do (remove the repeated row to silence this)",
            )
        )


def require(path: Path, what: str, manifest: Manifest, is_dir: bool = False) -> Path:
    ok = path.is_dir() if is_dir else path.is_file()
    if not ok:
        raise LayoutError(
            path,
            f"{what} not found ({'folder' if is_dir else 'file'} expected by the {manifest.title} layout)",
            f"point root at your copy of {manifest.title} so that this path exists; see {manifest.path}; "
            f"check a copy with `ferlib data verify {manifest.name} --root PATH`",
        )
    return path


def read_text_lines(path: Path) -> list[tuple[int, str]]:
    """Lines of a label file with CRLF/LF/BOM handled; (1-based line number, stripped text)."""
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    return [(i + 1, line.strip()) for i, line in enumerate(text.splitlines()) if line.strip()]


def dedupe(ctx: LoadContext, file: Path, rows: Iterable[tuple]) -> dict[str, tuple[int, int]]:
    """``(line_no, key, label[, label as written])`` rows → ``{key: (label, line_no)}``, counting repeats and
    conflicts. A conflict is reported with the labels as written in the file (the 4th item, when given)."""
    seen: dict[str, tuple[int, int]] = {}
    written: dict[str, str] = {}
    for line_no, key, label, *raw in rows:
        as_written = str(raw[0]) if raw else str(label)
        if key in seen:
            if seen[key][0] == label:
                ctx.duplicate(file, line_no, key)
            else:
                ctx.problem(
                    "conflict",
                    f"{file}:{line_no}",
                    f"{key!r} listed with label {as_written} here but {written[key]} on line {seen[key][1]}",
                    "keep one of the two rows (the first one is used when skipping)",
                )
            continue
        seen[key] = (label, line_no)
        written[key] = as_written
    return seen


def inside(ctx: LoadContext, base: Path, name: str | os.PathLike, where: str) -> Path | None:
    """``base / name`` when that path stays inside ``base`` (after ``..``, an absolute name and symlinks are
    resolved), else a ``bad_path`` problem naming ``where`` (file:line) and ``None``.

    ``base`` is the folder the list names into (e.g. ``Image/aligned``): it may itself be a link to another disk;
    what is refused is a listed name that leads out of it.
    """
    path = base / name
    try:
        resolved = path.resolve()
        reason = None if resolved.is_relative_to(base.resolve()) else f"resolves to {resolved}"
    except (OSError, RuntimeError) as exc:  # a symlink loop
        reason = f"cannot be resolved ({exc})"
    if reason is None:
        return path
    ctx.problem(
        "bad_path",
        where,
        f"the listed name {str(name)!r} leads outside the dataset folder {base}: it {reason}",
        "list only names inside the dataset folder (no '..', no absolute paths, no links that point out)",
    )
    return None


def check_files(ctx: LoadContext, records: list[Record], listed_in: str) -> list[Record]:
    """Drop (skip mode) or report (error mode) records whose image file is missing."""
    missing = [r for r in records if r.path is not None and not os.path.isfile(r.path)]
    if not missing:
        return records
    if ctx.on_corrupt == "error":
        first = missing[0].path
        raise LayoutError(
            first,
            f"image listed in {listed_in} is missing ({len(missing)} of {len(records)} listed images are missing)",
            "restore the files from the original archive, or skip and count them " + SKIP_HINT,
        )
    gone = set()
    for r in missing:
        ctx.report.add(
            Problem(
                "missing", r.path, f"image listed in {listed_in} is missing", "restore it from the original archive"
            )
        )
        gone.add(id(r))
    return [r for r in records if id(r) not in gone]


def folds_split(
    ctx: LoadContext, records: list[Record], split: str, fold: int | None, num_folds: int, dataset: str
) -> list[Record]:
    from ferlib.data.protocols import subject_folds

    if split == "all":
        return records
    if split not in ("train", "test"):
        raise ValueError(f"{dataset} splits are 'all', 'train' and 'test' (train/test need fold=k)")
    if fold is None:
        raise ValueError(
            f"{dataset} split {split!r} needs fold=k (0-{num_folds - 1}) for the {num_folds}-fold protocol; "
            "use split='all' for every image"
        )
    folds = subject_folds([r.subject for r in records], num_folds)
    if not 0 <= fold < num_folds:
        raise ValueError(f"fold must be 0-{num_folds - 1}, got {fold}")
    test_subjects = set(folds[fold])
    return [r for r in records if (r.subject in test_subjects) == (split == "test")]
