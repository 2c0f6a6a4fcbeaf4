"""RAF-DB (Li et al., CVPR 2017): ``EmoLabel/list_patition_label.txt`` and ``Image/aligned`` or ``Image/original``
(with the five manual points of ``Annotation/manual``); see ``data_manifests/rafdb.yaml``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ferlib.data import native_labels
from ferlib.data.face_geometry import order_landmarks5_by_x
from ferlib.data.formats._common import LoadContext, check_files, dedupe, inside, read_text_lines, require
from ferlib.data.formats._registry import register_format
from ferlib.data.manifests import Manifest
from ferlib.data.records import Record


@register_format("rafdb")
def rafdb(ctx: LoadContext, root: Path, split: str, m: Manifest, *, variant: str = "aligned") -> list[Record]:
    if split not in ("train", "test"):
        raise ValueError(f"RAF-DB splits are 'train' and 'test', not {split!r}")
    if variant not in ("aligned", "original"):
        raise ValueError(f"RAF-DB variant must be 'aligned' or 'original', not {variant!r}")
    label_file = require(root / "EmoLabel" / "list_patition_label.txt", "RAF-DB label file", m)
    image_dir = require(root / "Image" / variant, f"RAF-DB {variant} image folder", m, is_dir=True)
    ctx.report.source = str(label_file)
    rows = []
    for no, line in read_text_lines(label_file):
        parts = line.split()
        if (
            len(parts) != 2
            or not parts[1].isdigit()
            or int(parts[1]) not in native_labels.RAFDB
            or not re.match(r"^(train|test)_\d+\.(jpg|png)$", parts[0])
        ):
            ctx.problem(
                "bad_row",
                f"{label_file}:{no}",
                f"cannot parse {line!r}; expected 'train_00001.jpg <1-7>'",
                "restore the official list_patition_label.txt",
            )
            continue
        ctx.report.rows += 1
        if parts[0].startswith(split + "_"):
            rows.append((no, parts[0], native_labels.RAFDB[int(parts[1])], parts[1]))
    records = []
    for name, (label, no) in dedupe(ctx, label_file, rows).items():
        stem = Path(name).stem
        path = inside(ctx, image_dir, f"{stem}_aligned.jpg" if variant == "aligned" else name, f"{label_file}:{no}")
        if path is None:
            continue
        if variant == "aligned":
            lm5 = None
        else:
            lm5 = _rafdb_manual_landmarks(ctx, root / "Annotation" / "manual" / f"{stem}_manu_attri.txt")
        records.append(Record(id=stem, label=label, path=str(path), landmarks5=lm5))
    return check_files(ctx, records, str(label_file))


def _rafdb_manual_landmarks(ctx: LoadContext, path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    lines = read_text_lines(path)
    try:
        pts = np.asarray([[float(v) for v in ln.split()[:2]] for _, ln in lines[:5]], dtype=np.float32)
        if pts.shape != (5, 2):
            raise ValueError(f"found shape {pts.shape}")
    except ValueError as exc:
        ctx.problem(
            "bad_row", path, f"cannot read 5 'x y' landmark lines ({exc})", "restore the official annotation file"
        )
        return None
    return order_landmarks5_by_x(pts)
