"""``ferlib data verify``: check a local dataset copy against its manifest.

Checks, in order: the folder layout (``layout`` of ``data_manifests/<name>.yaml``); that every
split's label files parse (bad rows, conflicting duplicate rows, images listed but missing); how
many images each split has against the manifest's split sizes (a difference is reported, not an
error: copies differ slightly, e.g. AffectNet's list versions; a split with no image at all is a problem,
``empty``); that no listed name leads outside the dataset folder (``bad_path``); and that every image decodes
and is at least :data:`~ferlib.data.images.MIN_IMAGE_SIDE` pixels per side. Every problem names the file (and
line), what was expected and the fix, and is listed once even when several splits read the same label file.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferlib.data.datasets import (
    BENIGN_KINDS,
    CorruptImageError,
    DatasetError,
    EmptyDatasetError,
    Problem,
    build_dataset,
    resolve_name,
)
from ferlib.data.manifests import load_manifest


@dataclass
class SplitCheck:
    split: str
    loaded: int | None = None
    expected: int | None = None
    decoded: int = 0
    unreadable: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    skipped: int = 0  # items a loader skipping bad items leaves out (bad rows, missing, unreadable, unsafe paths)

    @property
    def difference(self) -> int | None:
        if self.loaded is None or self.expected is None:
            return None
        return self.loaded - self.expected


@dataclass
class VerifyReport:
    """Result of :func:`verify_dataset`: ``ok`` is False when any problem was found."""

    name: str
    root: str
    splits: list[SplitCheck] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    decode_checked: bool = True

    @property
    def ok(self) -> bool:
        return not any(p.kind not in BENIGN_KINDS for p in self.problems)

    @property
    def empty(self) -> bool:
        """A split has no images at all (nothing to train or test on): the CLI refuses with exit code 2."""
        return any(p.kind == "empty" for p in self.problems)

    def add(self, problem: Problem) -> None:
        """Record ``problem`` once (splits that read the same label file meet its problems again)."""
        if problem not in self.problems:
            self.problems.append(problem)

    @property
    def count_mismatches(self) -> list[SplitCheck]:
        return [s for s in self.splits if s.difference not in (None, 0)]

    def summary(self, max_problems: int = 20) -> str:
        m = load_manifest(self.name)
        lines = [f"{m.title} at {self.root}"]
        for s in self.splits:
            if s.loaded is None:
                lines.append(f"  {s.split}: not loaded (see problems)")
                continue
            text = f"  {s.split}: {s.loaded} images"
            if s.expected is not None:
                diff = s.difference
                text += f" (manifest: {s.expected}" + (
                    ", matches)" if diff == 0 else f", differs by {diff:+d}; tolerated, check your copy)"
                )
            if self.decode_checked:
                text += f"; decoded {s.decoded}, unreadable {s.unreadable}"
            if s.skipped:
                text += f"; {s.skipped} unusable (left out when bad items are skipped)"
            lines.append(text)
            if s.dropped:
                lines.append("      dropped on purpose: " + ", ".join(f"{k}={v}" for k, v in sorted(s.dropped.items())))
            if s.duplicates:
                lines.append(f"      {s.duplicates} repeated label row(s) with the same label, loaded once")
        lines.extend(f"  note: {n}" for n in self.notes)
        serious = [p for p in self.problems if p.kind not in BENIGN_KINDS]
        if serious:
            kinds = Counter(p.kind for p in serious)
            lines.append(
                f"  PROBLEMS ({len(serious)}: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())) + "):"
            )
            for p in serious[:max_problems]:
                lines.append(f"    {p}")
            if len(serious) > max_problems:
                lines.append(f"    ... and {len(serious) - max_problems} more (use --json for all)")
        lines.append("result: OK" if self.ok else "result: FAILED")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "root": self.root,
            "ok": self.ok,
            "splits": [
                dict(
                    split=s.split,
                    loaded=s.loaded,
                    expected=s.expected,
                    difference=s.difference,
                    decoded=s.decoded,
                    unreadable=s.unreadable,
                    dropped=s.dropped,
                    duplicates=s.duplicates,
                    skipped=s.skipped,
                )
                for s in self.splits
            ],
            "problems": [p.as_dict() for p in self.problems],
            "notes": self.notes,
        }


def _check_layout(name: str, root: Path, report: VerifyReport) -> bool:
    m = load_manifest(name)
    if not root.is_dir():
        report.problems.append(
            Problem(
                "layout",
                str(root),
                f"{m.title} root folder does not exist",
                f"pass --root with the folder holding {', '.join(m.layout)}",
            )
        )
        return False
    ok = True
    for rel in m.layout:
        rel = rel.strip()
        path = root / rel
        want_dir = rel.endswith("/") or rel == "."
        exists = path.is_dir() if want_dir else path.is_file()
        if not exists and name == "kdef":  # KDEF may sit one level down in KDEF/
            exists = (root / "KDEF").is_dir()
        if not exists:
            ok = False
            report.problems.append(
                Problem(
                    "layout",
                    str(path),
                    f"{'folder' if want_dir else 'file'} {rel} required by the {m.title} layout is missing",
                    f"point --root at your copy of {m.title} (request it at {m.request}); layout in {m.path}",
                )
            )
    return ok


def verify_dataset(
    name: str,
    root: str | Path,
    *,
    decode: bool = True,
    max_images: int | None = None,
    progress: bool = True,
    splits: list[str] | None = None,
    **kw: Any,
) -> VerifyReport:
    """Check the copy of ``name`` at ``root``; see the module docstring. ``max_images`` limits the
    decode check per split (default: all images); extra keywords go to ``build_dataset``."""
    from tqdm.auto import tqdm

    name = resolve_name(name)
    m = load_manifest(name)
    root = Path(root).expanduser()
    report = VerifyReport(name=name, root=str(root), decode_checked=decode)
    if not _check_layout(name, root, report):
        return report
    wanted = splits or (list(m.splits) if m.splits else ["all"])
    if m.loader in ("kdef", "ckplus", "synthfer"):
        wanted = splits or ["all"]
    image_size = kw.pop("image_size", 64)  # small: verify only needs to decode
    for split in wanted:
        check = SplitCheck(split, expected=m.splits.get(split))
        report.splits.append(check)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = build_dataset(
                    name, split, root, num_classes=m.num_classes, image_size=image_size, on_corrupt="skip", **kw
                )
        except DatasetError as exc:
            if isinstance(exc, EmptyDatasetError):  # the loader's fix sends the user here: say what to restore
                report.add(Problem("empty", exc.file, exc.expectation, f"restore the complete label files ({m.path})"))
            else:
                kind = "layout" if isinstance(exc, FileNotFoundError) else "bad_row"
                report.add(Problem(kind, exc.file, exc.expectation, exc.fix))
            continue
        except (ValueError, KeyError, OSError) as exc:
            report.add(
                Problem(
                    "error", str(root), f"loading split {split!r} failed: {exc}", f"compare your copy with {m.path}"
                )
            )
            continue
        check.loaded = len(ds)
        check.dropped = dict(ds.report.dropped)
        check.duplicates = ds.report.count("duplicate")
        check.skipped = len(ds.report.skipped)
        for p in ds.report.problems:
            report.add(p)
        if decode:
            n = len(ds) if max_images is None else min(len(ds), max_images)
            for i in tqdm(range(n), desc=f"verify {name}/{split}", disable=not progress, unit="img"):
                try:
                    ds.load_sample(i)
                    check.decoded += 1
                except CorruptImageError as exc:
                    check.unreadable += 1
                    check.skipped += 1
                    report.add(Problem("corrupt", exc.file, exc.expectation, exc.fix))
            if max_images is not None and n < len(ds):
                report.notes.append(f"{split}: decoded only the first {n} of {len(ds)} images (--max-images)")
    return report


__all__ = ["verify_dataset", "VerifyReport", "SplitCheck"]
