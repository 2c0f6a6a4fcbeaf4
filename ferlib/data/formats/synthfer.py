"""SynthFER folders written by ``ferlib data synth`` / ``ferlib data occlude``: a ``manifest.csv`` (written last)
beside the images, with label, split, pose, occlusion and the 5/8 points per image. The lazily rendered dataset
(no folder) is :class:`ferlib.data.synthfer.SynthFERDataset`, built by :func:`synthfer_lazy`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ferlib.data.errors import LabelFileError, LayoutError
from ferlib.data.formats._common import LoadContext, check_files, dedupe, inside
from ferlib.data.formats._registry import register_format
from ferlib.data.labels import CANONICAL_CLASSES
from ferlib.data.manifests import Manifest
from ferlib.data.occlusion import MANIFEST_COLUMNS
from ferlib.data.records import Record, float_or_none, parse_floats
from ferlib.data.synthfer import SynthFERDataset


@register_format("synthfer")
def synthfer_folder(ctx: LoadContext, root: Path, split: str, m: Manifest) -> list[Record]:
    manifest_csv = root / "manifest.csv"
    if not manifest_csv.is_file():
        raise LayoutError(
            manifest_csv,
            "materialised folder has no manifest.csv (it is written last: an incomplete folder has none)",
            "re-run `ferlib data synth --out DIR --n N --seed S` (or `ferlib data occlude`)",
        )
    ctx.report.source = str(manifest_csv)
    records, rows = [], []
    with open(manifest_csv, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        needed = {"id", "path", "split", "label"}
        if not needed <= set(reader.fieldnames or []):
            raise LabelFileError(
                manifest_csv,
                f"columns {sorted(needed)} required, found {reader.fieldnames}",
                "re-run the command that wrote the folder",
            )
        for no, row in enumerate(reader, start=2):
            ctx.report.rows += 1
            if split != "all" and row["split"] != split:
                continue
            where = f"{manifest_csv}:{no}"
            try:
                label = int(row["label"])
                if not 0 <= label < len(CANONICAL_CLASSES):
                    raise ValueError(f"label {label} outside 0-7")
                lm5 = parse_floats(row["lm5"], 10, "lm5", where).reshape(5, 2) if row.get("lm5") else None
                lm8 = parse_floats(row["lm8"], 16, "lm8", where).reshape(8, 2) if row.get("lm8") else None
            except ValueError as exc:
                ctx.problem("bad_row", where, str(exc), "re-run the command that wrote the folder")
                continue
            meta: dict[str, Any] = {}
            for key in ("yaw", "pitch", "roll"):
                meta[key] = float_or_none(row.get(key, ""))
            meta["occlusion"] = row.get("occlusion") or None
            for key, value in row.items():
                if key not in MANIFEST_COLUMNS:
                    meta[key] = value
            path = inside(ctx, root, row["path"], where)
            if path is None:
                continue
            rows.append((no, row["id"], label, row["label"]))
            records.append(
                Record(
                    id=row["id"],
                    label=label,
                    path=str(path),
                    subject=row.get("subject") or None,
                    landmarks5=lm5,
                    landmarks8=lm8,
                    meta=meta,
                )
            )
    keep = dedupe(ctx, manifest_csv, rows)
    seen: set[str] = set()
    unique = [r for r in records if r.id in keep and not (r.id in seen or seen.add(r.id))]
    if not unique and split != "all":
        raise LayoutError(manifest_csv, f"no rows with split {split!r}", "materialise that split or pass split='all'")
    return check_files(ctx, unique, str(manifest_csv))


def synthfer_lazy(split: str, image_size: int, num_classes: int, n: int | None, seed: int, **kw) -> Dataset:
    """The lazily rendered SynthFER dataset (:class:`ferlib.data.synthfer.SynthFERDataset`)."""
    if n is None:
        n = {"train": 2000, "val": 400, "test": 700}.get(split, 1000)
    ds = SynthFERDataset(n=n, seed=seed, split=split, image_size=image_size, num_classes=num_classes, **kw)
    if getattr(ds, "labels", None) is None or getattr(ds, "class_names", None) is None:
        raise TypeError("SynthFERDataset must expose .labels and .class_names (ferlib.data.synthfer)")
    return ds
