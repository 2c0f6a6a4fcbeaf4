"""Folder-per-class datasets (SFEW 2.0, CAER-S, FED-RO): ``<split dir>/<class name>/<image>``; the split folders
come from the manifest (``split_dirs``), class names are matched by :func:`ferlib.data.native_labels.folder_label`.
"""

from __future__ import annotations

from pathlib import Path

from ferlib.data import native_labels
from ferlib.data.errors import LayoutError
from ferlib.data.formats._common import IMAGE_EXTENSIONS, LoadContext, require
from ferlib.data.formats._registry import register_format
from ferlib.data.manifests import Manifest
from ferlib.data.records import Record


@register_format("folders")
def folders(
    ctx: LoadContext, root: Path, split: str, m: Manifest, *, split_dirs: dict[str, str] | None = None
) -> list[Record]:
    dirs = dict(m.split_dirs)
    dirs.update(split_dirs or {})
    if split not in dirs:
        raise ValueError(f"{m.title} splits are {sorted(dirs)}, not {split!r}")
    base = root / dirs[split]
    if not base.is_dir():
        # case-insensitive match (Train/train)
        candidates = (
            [p for p in root.iterdir() if p.is_dir() and p.name.lower() == dirs[split].lower()] if root.is_dir() else []
        )
        base = candidates[0] if candidates else base
    require(base, f"{m.title} {split} folder", m, is_dir=True)
    ctx.report.source = str(base)
    records = []
    class_dirs = sorted(p for p in base.iterdir() if p.is_dir())
    if not class_dirs:
        raise LayoutError(
            base,
            "no class folders found (expected one folder per expression, e.g. Angry/, Happy/)",
            f"point root at the folder holding {dirs[split]}/<class>/; see {m.path}",
        )
    for d in class_dirs:
        try:
            label = native_labels.folder_label(d.name)
        except KeyError as exc:
            ctx.problem("layout", d, str(exc.args[0]), "rename or remove the folder", exc=LayoutError)
            continue
        for f in sorted(d.iterdir()):
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS:
                ctx.report.rows += 1
                records.append(Record(id=f"{d.name}/{f.stem}", label=label, path=str(f), meta={"class_folder": d.name}))
    return records
