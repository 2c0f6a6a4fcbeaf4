"""AffectNet (Mollahosseini et al., 2017): ``Manually_Annotated_file_lists/{training,validation}.csv`` with the face
box and 68 points of each image; see ``data_manifests/affectnet7.yaml``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from ferlib.data import native_labels
from ferlib.data.face_geometry import landmarks68_to_5, landmarks68_to_8, xywh_to_xyxy
from ferlib.data.formats._common import LoadContext, check_files, dedupe, inside, require
from ferlib.data.formats._registry import register_format
from ferlib.data.manifests import Manifest
from ferlib.data.records import Record, float_or_none, parse_floats

_AFFECTNET_COLUMNS = (
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
)


def _affectnet_rows(ctx: LoadContext, csv_path: Path) -> Iterable[tuple[int, list[str]]]:
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        for no, row in enumerate(csv.reader(fh), start=1):
            if not row or (no == 1 and row[0].strip() == "subDirectory_filePath"):
                continue
            yield no, [c.strip() for c in row]


@register_format("affectnet")
def affectnet(
    ctx: LoadContext, root: Path, split: str, m: Manifest, *, crop_face: bool = True, keep_landmarks68: bool = False
) -> list[Record]:
    files = {"train": "training.csv", "test": "validation.csv", "val": "validation.csv"}
    if split not in files:
        raise ValueError(f"AffectNet splits are 'train' and 'test' (= official validation), not {split!r}")
    csv_path = require(root / "Manually_Annotated_file_lists" / files[split], "AffectNet list", m)
    image_dir = require(root / "Manually_Annotated_Images", "AffectNet image folder", m, is_dir=True)
    ctx.report.source = str(csv_path)
    rows, info = [], {}
    for no, row in _affectnet_rows(ctx, csv_path):
        try:
            if len(row) < 7:
                raise ValueError(f"{len(row)} columns")
            expression = int(float(row[6]))
        except ValueError:
            ctx.problem(
                "bad_row",
                f"{csv_path}:{no}",
                f"cannot parse row; expected the columns {','.join(_AFFECTNET_COLUMNS)}",
                "restore the official file list",
            )
            continue
        ctx.report.rows += 1
        if expression in native_labels.AFFECTNET_DROPPED:
            ctx.report.dropped[native_labels.AFFECTNET_DROPPED[expression]] += 1
            continue
        if expression not in native_labels.AFFECTNET:
            ctx.problem(
                "bad_row", f"{csv_path}:{no}", f"expression {expression} is not 0-10", "restore the official file list"
            )
            continue
        rel = row[0].replace("\\", "/")
        rows.append((no, rel, native_labels.AFFECTNET[expression], row[6]))
        info[rel] = row
    records = []
    for rel, (label, no) in dedupe(ctx, csv_path, rows).items():
        row = info[rel]
        path = inside(ctx, image_dir, rel, f"{csv_path}:{no}")
        if path is None:
            continue
        lm5 = lm8 = lm68 = None
        crop = None
        try:
            if crop_face and row[1] and row[3]:
                crop = tuple(
                    float(v) for v in xywh_to_xyxy([float(row[1]), float(row[2]), float(row[3]), float(row[4])])
                )
            if len(row) > 5 and row[5]:
                lm68 = parse_floats(row[5], 136, "facial_landmarks", f"{csv_path}:{no}").reshape(68, 2)
                lm5, lm8 = landmarks68_to_5(lm68), landmarks68_to_8(lm68)
        except ValueError as exc:
            ctx.problem("bad_row", f"{csv_path}:{no}", str(exc), "restore the official file list")
            continue
        records.append(
            Record(
                id=Path(rel).stem.lower(),
                label=label,
                path=str(path),
                crop=crop,
                landmarks5=lm5,
                landmarks8=lm8,
                landmarks=lm68 if keep_landmarks68 else None,
                meta={
                    "valence": float_or_none(row[7]) if len(row) > 7 else None,
                    "arousal": float_or_none(row[8]) if len(row) > 8 else None,
                },
            )
        )
    return check_files(ctx, records, str(csv_path))
