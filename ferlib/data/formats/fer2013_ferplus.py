"""FER-2013 (Goodfellow et al., 2013: ``fer2013.csv`` with 48×48 grey pixels) and FERPlus (Barsoum et al.,
2016: ``fer2013new.csv`` with ten crowd votes per image, majority label); see ``data_manifests/fer2013.yaml``
and ``ferplus.yaml``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ferlib.data import native_labels
from ferlib.data.errors import CorruptImageError, LabelFileError, LayoutError
from ferlib.data.formats._common import LoadContext, check_files, dedupe, inside, require
from ferlib.data.formats._registry import register_format
from ferlib.data.manifests import Manifest
from ferlib.data.records import Record

_FER_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def _fer_pixels(ctx: LoadContext, text: str, where: str) -> np.ndarray | None:
    try:
        values = np.asarray(text.split(), dtype=np.int64)
        if values.size != 48 * 48 or values.min(initial=0) < 0 or values.max(initial=0) > 255:
            raise ValueError(f"{values.size} values")
    except ValueError as exc:
        ctx.problem(
            "corrupt",
            where,
            f"pixels must be 2304 grey values 0-255 ({exc})",
            "restore the official fer2013.csv",
            exc=CorruptImageError,
        )
        return None
    return values.astype(np.uint8).reshape(48, 48)


@register_format("fer2013")
def fer2013(ctx: LoadContext, root: Path, split: str, m: Manifest) -> list[Record]:
    if split not in _FER_USAGE:
        raise ValueError(
            f"FER-2013 splits are {sorted(_FER_USAGE)} (val = PublicTest, test = PrivateTest), not {split!r}"
        )
    csv_path = require(root / "fer2013.csv", "FER-2013 CSV", m)
    ctx.report.source = str(csv_path)
    records = []
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["emotion", "pixels", "Usage"]:
            raise LabelFileError(
                csv_path, f"header must be 'emotion,pixels,Usage', found {header}", "use the official fer2013.csv"
            )
        for index, row in enumerate(reader):
            no = index + 2
            ctx.report.rows += 1
            if len(row) < 3 or row[2].strip() != _FER_USAGE[split]:
                if len(row) < 3:
                    ctx.problem(
                        "bad_row",
                        f"{csv_path}:{no}",
                        "expected 3 columns emotion,pixels,Usage",
                        "restore the official file",
                    )
                continue
            try:
                label = native_labels.FER2013[int(row[0])]
            except (ValueError, KeyError):
                ctx.problem(
                    "bad_row", f"{csv_path}:{no}", f"emotion {row[0]!r} is not 0-6", "restore the official file"
                )
                continue
            pixels = _fer_pixels(ctx, row[1], f"{csv_path}:{no}")
            if pixels is None:
                continue
            records.append(
                Record(id=f"fer{index:07d}", label=label, path=None, pixels=pixels, meta={"source": f"{csv_path}:{no}"})
            )
    return records


#: Canonical label → the FERPlus vote column that gave it (conflict messages quote the file's own words).
_FERPLUS_WRITTEN = {v: k for k, v in native_labels.FERPLUS.items()}
_FERPLUS_DIRS = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}


@register_format("ferplus")
def ferplus(ctx: LoadContext, root: Path, split: str, m: Manifest, *, all_rows: bool = False) -> list[Record]:
    if split not in _FER_USAGE and not all_rows:
        raise ValueError(
            f"FERPlus splits are {sorted(_FER_USAGE)} (val = FER2013Valid, test = FER2013Test), not {split!r}"
        )
    label_path = require(root / "fer2013new.csv", "FERPlus label file", m)
    ctx.report.source = str(label_path)
    use_folders = all((root / d).is_dir() for d in _FERPLUS_DIRS.values())
    pixels_path = root / "fer2013.csv"
    if not use_folders and not pixels_path.is_file():
        raise LayoutError(
            root / "FER2013Train",
            "FERPlus images not found: neither the FER2013Train/Valid/Test folders nor fer2013.csv are present",
            f"run FERPlus' generate_training_data.py or copy fer2013.csv beside fer2013new.csv; see {m.path}",
        )
    pixel_rows: list[str] | None = None
    if not use_folders:
        with open(pixels_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            next(reader, None)
            pixel_rows = [row[1] if len(row) > 1 else "" for row in reader]
    records, names = [], []
    with open(label_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[2:12]] != list(native_labels.FERPLUS_COLUMNS):
            raise LabelFileError(
                label_path,
                f"header must be Usage,Image name,{','.join(native_labels.FERPLUS_COLUMNS)}; found {header}",
                "use the official fer2013new.csv",
            )
        for index, row in enumerate(reader):
            no = index + 2
            ctx.report.rows += 1
            if len(row) < 12:
                ctx.problem(
                    "bad_row", f"{label_path}:{no}", "expected 12 columns", "restore the official fer2013new.csv"
                )
                continue
            usage, name = row[0].strip(), row[1].strip()
            if not all_rows and usage != _FER_USAGE[split]:
                continue
            if not name:
                ctx.report.dropped["no image name (not usable)"] += 1
                continue
            try:
                votes = [float(v) for v in row[2:12]]
            except ValueError:
                ctx.problem(
                    "bad_row",
                    f"{label_path}:{no}",
                    "vote columns must be numbers",
                    "restore the official fer2013new.csv",
                )
                continue
            label = native_labels.ferplus_majority(votes)
            if label is None and not all_rows:
                top = max(votes)
                winners = [native_labels.FERPLUS_COLUMNS[i] for i, v in enumerate(votes) if v == top]
                ctx.report.dropped["tied majority" if len(winners) > 1 else f"majority {winners[0]}"] += 1
                continue
            rec = Record(
                id=Path(name).stem.lower(), label=-1 if label is None else label, meta={"votes": votes, "usage": usage}
            )
            if use_folders:
                path = inside(ctx, root / _FERPLUS_DIRS.get(usage, "FER2013Test"), name, f"{label_path}:{no}")
                if path is None:
                    continue
                rec.path = str(path)
            else:
                if index >= len(pixel_rows or []):
                    ctx.problem(
                        "bad_row",
                        f"{label_path}:{no}",
                        f"no matching row {no} in {pixels_path} (rows must align 1:1)",
                        "use the fer2013.csv that fer2013new.csv was made from",
                    )
                    continue
                pixels = _fer_pixels(ctx, pixel_rows[index], f"{pixels_path}:{no}")
                if pixels is None:
                    continue
                rec.pixels = pixels
                rec.meta["source"] = f"{pixels_path}:{no}"
            names.append((no, rec.id, rec.label, _FERPLUS_WRITTEN.get(rec.label, "no majority")))
            records.append(rec)
    keep = dedupe(ctx, label_path, names)
    seen: set[str] = set()
    unique = []
    for r in records:
        if r.id in keep and r.id not in seen:
            seen.add(r.id)
            unique.append(r)
    return check_files(ctx, unique, str(label_path))
