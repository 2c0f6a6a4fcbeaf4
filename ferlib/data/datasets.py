"""Loaders for every dataset manifest, all returning the one sample schema (:mod:`ferlib.data.schema`).

``build_dataset(name, split, root)`` reads the dataset's own label files in their official layout
(``data_manifests/<name>.yaml`` describes it), converts native labels to ferlib's canonical order
(:mod:`ferlib.data.native_labels`) and returns a :class:`FERDataset` whose items are::

    {"image": uint8 3×S×S, "label": int, "landmarks5": float32 5×2 (NaN if unknown),
     ["landmarks8": 8×2], ["landmarks": K×2], "meta": {id, path, subject, yaw, pitch, roll, occlusion, ...}}

Images are resized to ``image_size``×``image_size`` (bilinear, antialiased); landmarks are scaled
with the pixel-centre convention ``x' = (x + 0.5)·S/W − 0.5`` so that a point on a pixel centre stays
on the corresponding pixel centre.

Bad input is never skipped silently. Label-file rows that repeat with the same label are loaded
once and counted in ``dataset.report``; a missing image file, an unreadable image, a bad row or a
row that contradicts an earlier one raises an error naming the file, the expectation and the fix
(``on_corrupt="error"``, the default), or is skipped and counted (``on_corrupt="skip"``).
"""

from __future__ import annotations

import csv
import math
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch.utils.data import Dataset

from ferlib.data import native_labels
from ferlib.data.labels import CANONICAL_CLASSES, class_names
from ferlib.data.manifests import Manifest, load_manifest

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

#: 68-point (iBUG/Multi-PIE) indices used to derive the 5 RetinaFace points: eye centres are the
#: means of the six eye-contour points; 36-41 is the eye on the image's left (subject's right).
IBUG68_EYE_IMAGE_LEFT = tuple(range(36, 42))
IBUG68_EYE_IMAGE_RIGHT = tuple(range(42, 48))
IBUG68_NOSE_TIP = 30
IBUG68_MOUTH_IMAGE_LEFT = 48
IBUG68_MOUTH_IMAGE_RIGHT = 54
#: 68-point indices of the 8 MAN points (man.txt Fig. 4): nose tip; image-left eye outer and inner
#: corners; image-right eye inner and outer corners; mouth corners; the lower-lip centre as the
#: point below the mouth.
IBUG68_TO_LANDMARKS8 = (30, 36, 39, 42, 45, 48, 54, 57)


# --------------------------------------------------------------------------------------------
# Errors and the load report
# --------------------------------------------------------------------------------------------


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
    """An image file cannot be decoded."""


@dataclass(frozen=True)
class Problem:
    """One problem found while loading: ``kind`` is missing, corrupt, bad_row, conflict, layout,
    duplicate (rows repeated with the same label, loaded once) or bad_name."""

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


class _Ctx:
    """Builder context: raises on a problem in ``error`` mode, records it in ``skip`` mode."""

    def __init__(self, report: LoadReport, on_corrupt: str):
        if on_corrupt not in ("error", "skip"):
            raise ValueError(f"on_corrupt must be 'error' or 'skip', got {on_corrupt!r}")
        self.report = report
        self.on_corrupt = on_corrupt

    def problem(self, kind: str, file: Any, expectation: str, fix: str, exc: type[DatasetError] = LabelFileError) -> None:
        if self.on_corrupt == "error" and kind not in BENIGN_KINDS:
            raise exc(file, expectation, fix + " (or pass on_corrupt='skip' to skip and count such rows)")
        self.report.add(Problem(kind, str(file), expectation, fix))

    def duplicate(self, file: Any, line_no: int, key: str) -> None:
        self.report.add(Problem("duplicate", f"{file}:{line_no}", f"{key!r} listed again with the same label; loaded once",
                                "nothing to do (remove the repeated row to silence this)"))


# --------------------------------------------------------------------------------------------
# Records and landmark helpers
# --------------------------------------------------------------------------------------------


@dataclass
class Record:
    """One item before decoding: where the pixels are, its label and what is known about it."""

    id: str
    label: int
    path: str | None = None
    subject: str | None = None
    landmarks5: np.ndarray | None = None  # 5×2, pixel coords of the file on disk
    landmarks8: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    crop: tuple[float, float, float, float] | None = None  # x, y, w, h in the file's pixels
    pixels: np.ndarray | None = None  # H×W or H×W×3 uint8 when there is no file (FER-2013)
    meta: dict[str, Any] = field(default_factory=dict)


def landmarks5_from_68(points: np.ndarray) -> np.ndarray:
    """5 RetinaFace points (image-left eye, image-right eye, nose, image-left and image-right mouth
    corner) from 68 iBUG points."""
    p = np.asarray(points, dtype=np.float32).reshape(68, 2)
    return np.stack([
        p[list(IBUG68_EYE_IMAGE_LEFT)].mean(0),
        p[list(IBUG68_EYE_IMAGE_RIGHT)].mean(0),
        p[IBUG68_NOSE_TIP],
        p[IBUG68_MOUTH_IMAGE_LEFT],
        p[IBUG68_MOUTH_IMAGE_RIGHT],
    ]).astype(np.float32)


def landmarks8_from_68(points: np.ndarray) -> np.ndarray:
    """The 8 MAN points (:data:`ferlib.data.schema.LANDMARK8_NAMES`) from 68 iBUG points."""
    p = np.asarray(points, dtype=np.float32).reshape(68, 2)
    return p[list(IBUG68_TO_LANDMARKS8)].astype(np.float32)


def order_landmarks5_by_x(points: np.ndarray) -> np.ndarray:
    """Put each eye pair and mouth-corner pair in image-left, image-right order (RetinaFace slots)."""
    p = np.asarray(points, dtype=np.float32).reshape(5, 2).copy()
    if p[0, 0] > p[1, 0]:
        p[[0, 1]] = p[[1, 0]]
    if p[3, 0] > p[4, 0]:
        p[[3, 4]] = p[[4, 3]]
    return p


def _parse_floats(text: str, n: int, what: str, where: str) -> np.ndarray:
    text = text.strip()
    parts = text.split(";") if ";" in text else re.split(r"[\s,]+", text)
    values = [float(v) for v in parts if v]
    if len(values) != n:
        raise ValueError(f"{where}: {what} needs {n} numbers, found {len(values)}")
    return np.asarray(values, dtype=np.float32)


def load_landmarks_file(path: str | Path) -> Any:
    """Read a landmarks table for ``build_dataset(..., landmarks_file=PATH)``.

    Formats:

    * the JSON-lines file ``ferlib landmarks`` writes (:mod:`ferlib.landmarks.extract`): returned as
      its ``LandmarkTable``; records are matched by image path (or id for images without a file)
      and their points, given in the frame of the image the detector saw (``width``×``height``),
      are rescaled to the sample;
    * ``.csv`` with a key column ``id`` or ``path`` and ``lm5`` (10 numbers ``x1 y1 ... x5 y5``
      separated by spaces), optional ``lm8`` (16 numbers) — the columns SynthFER's manifest uses;
    * ``.npz`` with ``ids`` (strings) and ``landmarks5`` (N×5×2), optional ``landmarks8`` (N×8×2).

    CSV/NPZ coordinates are pixels of the image file on disk (before any crop or resize); keys are
    matched against a sample's id, then its path, then its file name. Returns a dict
    ``{key: {"landmarks5": 5×2, ["landmarks8": 8×2]}}`` for CSV/NPZ.
    """
    path = Path(path)
    if not path.is_file():
        raise LayoutError(path, "landmarks file not found", "pass the file written by `ferlib landmarks` or a CSV/NPZ as documented in ferlib.data.datasets.load_landmarks_file")
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip()
    if head.startswith(b"{"):
        from ferlib.landmarks.extract import LandmarkTable

        return LandmarkTable.from_file(path)
    table: dict[str, dict[str, np.ndarray]] = {}
    if path.suffix.lower() == ".npz":
        data = np.load(path, allow_pickle=False)
        ids = [str(i) for i in data["ids"]]
        lm5 = np.asarray(data["landmarks5"], dtype=np.float32).reshape(len(ids), 5, 2)
        lm8 = np.asarray(data["landmarks8"], dtype=np.float32).reshape(len(ids), 8, 2) if "landmarks8" in data else None
        for i, key in enumerate(ids):
            entry = {"landmarks5": lm5[i]}
            if lm8 is not None:
                entry["landmarks8"] = lm8[i]
            table[key] = entry
        return table
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        key_col = "id" if "id" in fields else "path" if "path" in fields else None
        if key_col is None or "lm5" not in fields:
            raise LabelFileError(path, f"landmarks CSV needs columns id (or path) and lm5, found {fields}",
                                 "write it with `ferlib landmarks` or add the columns")
        for no, row in enumerate(reader, start=2):
            where = f"{path}:{no}"
            try:
                entry = {"landmarks5": _parse_floats(row["lm5"], 10, "lm5", where).reshape(5, 2)}
                if row.get("lm8"):
                    entry["landmarks8"] = _parse_floats(row["lm8"], 16, "lm8", where).reshape(8, 2)
            except ValueError as exc:
                raise LabelFileError(where, str(exc), "fix the row or regenerate the file") from exc
            table[row[key_col]] = entry
    return table


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


def _pixel_scale(points: np.ndarray | None, x0: float, y0: float, sx: float, sy: float) -> torch.Tensor | None:
    if points is None:
        return None
    p = np.asarray(points, dtype=np.float32).copy()
    p[..., 0] = (p[..., 0] - x0 + 0.5) * sx - 0.5
    p[..., 1] = (p[..., 1] - y0 + 0.5) * sy - 0.5
    return torch.from_numpy(p)


class FERDataset(Dataset):
    """A list of :class:`Record` s decoded on access into the sample schema.

    Attributes: ``name``, ``split``, ``root``, ``records``, ``labels`` (canonical, one per item, no
    decoding needed), ``class_names``, ``num_classes``, ``image_size``, ``report``
    (:class:`LoadReport`), ``manifest``.
    """

    def __init__(
        self,
        name: str,
        split: str,
        root: str | Path | None,
        records: list[Record],
        *,
        num_classes: int = 7,
        image_size: int = 224,
        on_corrupt: str = "error",
        report: LoadReport | None = None,
        manifest: Manifest | None = None,
        landmarks_table: Any = None,
        landmarks_file: str | Path | None = None,
    ):
        self.name = name
        self.split = split
        self.root = None if root is None else Path(root)
        self.records = records
        self.num_classes = num_classes
        self.class_names = class_names(num_classes)
        self.image_size = int(image_size)
        self.on_corrupt = on_corrupt
        self.report = report if report is not None else LoadReport(name, split)
        self.manifest = manifest
        self.landmarks_table = landmarks_table
        self.landmarks_file = None if landmarks_file is None else Path(landmarks_file)
        self.labels = np.asarray([r.label for r in records], dtype=np.int64)
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"FERDataset({self.name!r}, split={self.split!r}, n={len(self)}, root={str(self.root)!r})"

    # -- decoding ---------------------------------------------------------------------------
    def _decode(self, rec: Record):
        from PIL import Image

        if rec.pixels is not None:
            return Image.fromarray(rec.pixels).convert("RGB")
        with Image.open(rec.path) as im:
            im.load()
            return im.convert("RGB")

    def _landmarks_for(self, rec: Record) -> tuple[np.ndarray | None, np.ndarray | None, tuple[int, int] | None, dict]:
        """(landmarks5, landmarks8, frame, extra meta). ``frame`` is the (width, height) the points
        refer to when that is not the file on disk (records of ``ferlib landmarks``)."""
        table = self.landmarks_table
        if table is None:
            return rec.landmarks5, rec.landmarks8, None, {}
        if isinstance(table, dict):
            for key in (rec.id, rec.path, os.path.basename(rec.path or "")):
                if key and key in table:
                    entry = table[key]
                    return entry.get("landmarks5"), entry.get("landmarks8"), None, {"landmarks_status": "ok"}
            return None, None, None, {"landmarks_status": "missing"}
        found = table.lookup(rec.path or rec.id)
        if found is None or found.get("landmarks5") is None:
            return None, None, None, {"landmarks_status": "missing" if found is None else found.get("status")}
        points = np.asarray(found["landmarks5"], dtype=np.float32).reshape(5, 2)
        extra = {"landmarks_status": found.get("status"), "landmarks_fallback": bool(found.get("fallback"))}
        return points, None, (int(found["width"]), int(found["height"])), extra

    def load_sample(self, index: int) -> dict[str, Any]:
        """Decode item ``index``; raises :class:`CorruptImageError` when the image is unreadable."""
        from PIL import Image

        rec = self.records[index]
        try:
            img = self._decode(rec)
        except Exception as exc:  # PIL raises many types (UnidentifiedImageError, OSError, SyntaxError)
            raise CorruptImageError(
                rec.path or rec.id,
                f"cannot decode the image ({type(exc).__name__}: {exc}); expected a readable image for "
                f"{self.name}/{self.split} item {rec.id!r}",
                "re-extract this file from the original archive, or pass on_corrupt='skip' to skip and count it",
            ) from exc
        width, height = img.size
        original_w, original_h = width, height
        x0, y0 = 0.0, 0.0
        if rec.crop is not None:
            x, y, w, h = rec.crop
            box = (int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
            img = img.crop(box)  # outside the image PIL pads with black; landmarks shift exactly
            x0, y0 = float(box[0]), float(box[1])
            width, height = box[2] - box[0], box[3] - box[1]
        size = self.image_size
        if (width, height) != (size, size):
            img = img.resize((size, size), Image.BILINEAR)
        sx, sy = size / width, size / height
        image = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()
        lm5, lm8, frame, lm_meta = self._landmarks_for(rec)
        if frame is not None and frame != (original_w, original_h) and frame[0] > 0 and frame[1] > 0:
            # points of a detector run on the loader's own output: whole-frame rescale, no crop offset
            lm5_t = _pixel_scale(lm5, 0.0, 0.0, size / frame[0], size / frame[1])
        else:
            lm5_t = _pixel_scale(lm5, x0, y0, sx, sy)
        sample: dict[str, Any] = {
            "image": image,
            "label": int(rec.label),
            "landmarks5": lm5_t if lm5_t is not None else torch.full((5, 2), math.nan),
        }
        lm8_t = _pixel_scale(lm8, x0, y0, sx, sy)
        if lm8_t is not None:
            sample["landmarks8"] = lm8_t
        lm_t = _pixel_scale(rec.landmarks, x0, y0, sx, sy)
        if lm_t is not None:
            sample["landmarks"] = lm_t
        meta = {
            "id": rec.id,
            "path": rec.path,
            "subject": rec.subject,
            "yaw": None,
            "pitch": None,
            "roll": None,
            "occlusion": None,
            "dataset": self.name,
            "split": self.split,
            "index": index,
        }
        meta.update(rec.meta)
        meta.update(lm_meta)
        sample["meta"] = meta
        return sample

    def _substitute(self, index: int) -> int:
        """Next item with the same label that is not known to be bad (keeps ``labels`` truthful)."""
        n = len(self.records)
        label = self.labels[index]
        for step in range(1, n):
            j = (index + step) % n
            if j not in self._bad and self.labels[j] == label:
                return j
        raise CorruptImageError(self.records[index].path or self.records[index].id,
                                f"unreadable and no other readable {CANONICAL_CLASSES[label]} image to stand in",
                                "repair the dataset copy")

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        try:
            return self.load_sample(index)
        except CorruptImageError as exc:
            if self.on_corrupt == "error":
                raise
            if index not in self._bad:
                self._bad.add(index)
                self.report.add(Problem("corrupt", exc.file, exc.expectation, exc.fix))
                warnings.warn(f"skipped unreadable image {exc.file} (counted in dataset.report); "
                              "an image of the same class stands in for it", stacklevel=2)
            while True:
                j = self._substitute(index)
                try:
                    sample = self.load_sample(j)
                except CorruptImageError as exc2:
                    self._bad.add(j)
                    self.report.add(Problem("corrupt", exc2.file, exc2.expectation, exc2.fix))
                    continue
                sample["meta"]["substituted_for"] = self.records[index].id
                return sample

    # -- cache support --------------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """What decides the decoded pixels: used by :mod:`ferlib.data.cache` as the cache key."""
        import hashlib

        h = hashlib.sha256()
        for r in self.records:
            h.update(f"{r.id}|{r.path}|{r.label}|{r.crop}\n".encode())
            if r.path and os.path.exists(r.path):
                st = os.stat(r.path)
                h.update(f"{st.st_size}:{int(st.st_mtime)}\n".encode())
        return {"name": self.name, "split": self.split, "root": str(self.root), "image_size": self.image_size,
                "num_classes": self.num_classes, "n": len(self.records), "records": h.hexdigest(),
                "manifest": None if self.manifest is None else self.manifest.name,
                "landmarks_file": None if self.landmarks_file is None else
                f"{self.landmarks_file.resolve()}:{self.landmarks_file.stat().st_mtime_ns}"}


# --------------------------------------------------------------------------------------------
# Shared helpers for builders
# --------------------------------------------------------------------------------------------


def _require(path: Path, what: str, manifest: Manifest, is_dir: bool = False) -> Path:
    ok = path.is_dir() if is_dir else path.is_file()
    if not ok:
        raise LayoutError(
            path,
            f"{what} not found ({'folder' if is_dir else 'file'} expected by the {manifest.title} layout)",
            f"point root at your copy of {manifest.title} so that this path exists; see {manifest.path}; "
            f"check a copy with `ferlib data verify {manifest.name} --root PATH`",
        )
    return path


def _read_text_lines(path: Path) -> list[tuple[int, str]]:
    """Lines of a label file with CRLF/LF/BOM handled; (1-based line number, stripped text)."""
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    return [(i + 1, line.strip()) for i, line in enumerate(text.splitlines()) if line.strip()]


def _dedupe(ctx: _Ctx, file: Path, rows: Iterable[tuple[int, str, int]]) -> dict[str, tuple[int, int]]:
    """``(line_no, key, label)`` rows → ``{key: (label, line_no)}``, counting repeats and conflicts."""
    seen: dict[str, tuple[int, int]] = {}
    for line_no, key, label in rows:
        if key in seen:
            if seen[key][0] == label:
                ctx.duplicate(file, line_no, key)
            else:
                ctx.problem("conflict", f"{file}:{line_no}",
                            f"{key!r} listed with label {label} here but {seen[key][0]} on line {seen[key][1]}",
                            "keep one of the two rows (the first one is used when skipping)")
            continue
        seen[key] = (label, line_no)
    return seen


def _check_files(ctx: _Ctx, records: list[Record], listed_in: str) -> list[Record]:
    """Drop (skip mode) or report (error mode) records whose image file is missing."""
    missing = [r for r in records if r.path is not None and not os.path.isfile(r.path)]
    if not missing:
        return records
    if ctx.on_corrupt == "error":
        first = missing[0].path
        raise LayoutError(
            first,
            f"image listed in {listed_in} is missing ({len(missing)} of {len(records)} listed images are missing)",
            "restore the files from the original archive, or pass on_corrupt='skip' to skip and count them",
        )
    gone = set()
    for r in missing:
        ctx.report.add(Problem("missing", r.path, f"image listed in {listed_in} is missing", "restore it from the original archive"))
        gone.add(id(r))
    return [r for r in records if id(r) not in gone]


def _filter_classes(ctx: _Ctx, records: list[Record], num_classes: int) -> list[Record]:
    if num_classes not in (7, 8):
        raise ValueError(f"num_classes must be 7 or 8, got {num_classes}")
    keep = [r for r in records if r.label < num_classes]
    dropped = len(records) - len(keep)
    if dropped:
        ctx.report.dropped["contempt (7-class run)"] += dropped
    return keep


# --------------------------------------------------------------------------------------------
# Builders, one per loader family
# --------------------------------------------------------------------------------------------


def _rafdb(ctx: _Ctx, root: Path, split: str, m: Manifest, *, variant: str = "aligned") -> list[Record]:
    if split not in ("train", "test"):
        raise ValueError(f"RAF-DB splits are 'train' and 'test', not {split!r}")
    if variant not in ("aligned", "original"):
        raise ValueError(f"RAF-DB variant must be 'aligned' or 'original', not {variant!r}")
    label_file = _require(root / "EmoLabel" / "list_patition_label.txt", "RAF-DB label file", m)
    image_dir = _require(root / "Image" / variant, f"RAF-DB {variant} image folder", m, is_dir=True)
    rows = []
    for no, line in _read_text_lines(label_file):
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) not in native_labels.RAFDB \
                or not re.match(r"^(train|test)_\d+\.(jpg|png)$", parts[0]):
            ctx.problem("bad_row", f"{label_file}:{no}", f"cannot parse {line!r}; expected 'train_00001.jpg <1-7>'",
                        "restore the official list_patition_label.txt")
            continue
        ctx.report.rows += 1
        if parts[0].startswith(split + "_"):
            rows.append((no, parts[0], native_labels.RAFDB[int(parts[1])]))
    records = []
    for name, (label, _) in _dedupe(ctx, label_file, rows).items():
        stem = Path(name).stem
        if variant == "aligned":
            path = image_dir / f"{stem}_aligned.jpg"
            lm5 = None
        else:
            path = image_dir / name
            lm5 = _rafdb_manual_landmarks(ctx, root / "Annotation" / "manual" / f"{stem}_manu_attri.txt")
        records.append(Record(id=stem, label=label, path=str(path), landmarks5=lm5))
    return _check_files(ctx, records, str(label_file))


def _rafdb_manual_landmarks(ctx: _Ctx, path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    lines = _read_text_lines(path)
    try:
        pts = np.asarray([[float(v) for v in ln.split()[:2]] for _, ln in lines[:5]], dtype=np.float32)
        if pts.shape != (5, 2):
            raise ValueError(f"found shape {pts.shape}")
    except ValueError as exc:
        ctx.problem("bad_row", path, f"cannot read 5 'x y' landmark lines ({exc})", "restore the official annotation file")
        return None
    return order_landmarks5_by_x(pts)


_AFFECTNET_COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
                      "facial_landmarks", "expression", "valence", "arousal")


def _affectnet_rows(ctx: _Ctx, csv_path: Path) -> Iterable[tuple[int, list[str]]]:
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        for no, row in enumerate(csv.reader(fh), start=1):
            if not row or (no == 1 and row[0].strip() == "subDirectory_filePath"):
                continue
            yield no, [c.strip() for c in row]


def _affectnet(ctx: _Ctx, root: Path, split: str, m: Manifest, *, crop_face: bool = True,
               keep_landmarks68: bool = False) -> list[Record]:
    files = {"train": "training.csv", "test": "validation.csv", "val": "validation.csv"}
    if split not in files:
        raise ValueError(f"AffectNet splits are 'train' and 'test' (= official validation), not {split!r}")
    csv_path = _require(root / "Manually_Annotated_file_lists" / files[split], "AffectNet list", m)
    image_dir = _require(root / "Manually_Annotated_Images", "AffectNet image folder", m, is_dir=True)
    rows, info = [], {}
    for no, row in _affectnet_rows(ctx, csv_path):
        try:
            if len(row) < 7:
                raise ValueError(f"{len(row)} columns")
            expression = int(float(row[6]))
        except ValueError:
            ctx.problem("bad_row", f"{csv_path}:{no}", f"cannot parse row; expected the columns {','.join(_AFFECTNET_COLUMNS)}",
                        "restore the official file list")
            continue
        ctx.report.rows += 1
        if expression in native_labels.AFFECTNET_DROPPED:
            ctx.report.dropped[native_labels.AFFECTNET_DROPPED[expression]] += 1
            continue
        if expression not in native_labels.AFFECTNET:
            ctx.problem("bad_row", f"{csv_path}:{no}", f"expression {expression} is not 0-10", "restore the official file list")
            continue
        rel = row[0].replace("\\", "/")
        rows.append((no, rel, native_labels.AFFECTNET[expression]))
        info[rel] = row
    records = []
    for rel, (label, no) in _dedupe(ctx, csv_path, rows).items():
        row = info[rel]
        lm5 = lm8 = lm68 = None
        crop = None
        try:
            if crop_face and row[1] and row[3]:
                crop = (float(row[1]), float(row[2]), float(row[3]), float(row[4]))
            if len(row) > 5 and row[5]:
                lm68 = _parse_floats(row[5], 136, "facial_landmarks", f"{csv_path}:{no}").reshape(68, 2)
                lm5, lm8 = landmarks5_from_68(lm68), landmarks8_from_68(lm68)
        except ValueError as exc:
            ctx.problem("bad_row", f"{csv_path}:{no}", str(exc), "restore the official file list")
            continue
        records.append(Record(
            id=Path(rel).stem.lower(), label=label, path=str(image_dir / rel), crop=crop,
            landmarks5=lm5, landmarks8=lm8, landmarks=lm68 if keep_landmarks68 else None,
            meta={"valence": _float_or_none(row[7]) if len(row) > 7 else None,
                  "arousal": _float_or_none(row[8]) if len(row) > 8 else None},
        ))
    return _check_files(ctx, records, str(csv_path))


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


_FER_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def _fer_pixels(ctx: _Ctx, text: str, where: str) -> np.ndarray | None:
    try:
        values = np.asarray(text.split(), dtype=np.int64)
        if values.size != 48 * 48 or values.min(initial=0) < 0 or values.max(initial=0) > 255:
            raise ValueError(f"{values.size} values")
    except ValueError as exc:
        ctx.problem("corrupt", where, f"pixels must be 2304 grey values 0-255 ({exc})", "restore the official fer2013.csv",
                    exc=CorruptImageError)
        return None
    return values.astype(np.uint8).reshape(48, 48)


def _fer2013(ctx: _Ctx, root: Path, split: str, m: Manifest) -> list[Record]:
    if split not in _FER_USAGE:
        raise ValueError(f"FER-2013 splits are {sorted(_FER_USAGE)} (val = PublicTest, test = PrivateTest), not {split!r}")
    csv_path = _require(root / "fer2013.csv", "FER-2013 CSV", m)
    records = []
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["emotion", "pixels", "Usage"]:
            raise LabelFileError(csv_path, f"header must be 'emotion,pixels,Usage', found {header}",
                                 "use the official fer2013.csv")
        for index, row in enumerate(reader):
            no = index + 2
            ctx.report.rows += 1
            if len(row) < 3 or row[2].strip() != _FER_USAGE[split]:
                if len(row) < 3:
                    ctx.problem("bad_row", f"{csv_path}:{no}", "expected 3 columns emotion,pixels,Usage", "restore the official file")
                continue
            try:
                label = native_labels.FER2013[int(row[0])]
            except (ValueError, KeyError):
                ctx.problem("bad_row", f"{csv_path}:{no}", f"emotion {row[0]!r} is not 0-6", "restore the official file")
                continue
            pixels = _fer_pixels(ctx, row[1], f"{csv_path}:{no}")
            if pixels is None:
                continue
            records.append(Record(id=f"fer{index:07d}", label=label, path=None, pixels=pixels,
                                  meta={"source": f"{csv_path}:{no}"}))
    return records


_FERPLUS_DIRS = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}


def _ferplus(ctx: _Ctx, root: Path, split: str, m: Manifest, *, all_rows: bool = False) -> list[Record]:
    if split not in _FER_USAGE and not all_rows:
        raise ValueError(f"FERPlus splits are {sorted(_FER_USAGE)} (val = FER2013Valid, test = FER2013Test), not {split!r}")
    label_path = _require(root / "fer2013new.csv", "FERPlus label file", m)
    use_folders = all((root / d).is_dir() for d in _FERPLUS_DIRS.values())
    pixels_path = root / "fer2013.csv"
    if not use_folders and not pixels_path.is_file():
        raise LayoutError(root / "FER2013Train", "FERPlus images not found: neither the FER2013Train/Valid/Test folders "
                          "nor fer2013.csv are present", f"run FERPlus' generate_training_data.py or copy fer2013.csv beside fer2013new.csv; see {m.path}")
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
            raise LabelFileError(label_path, f"header must be Usage,Image name,{','.join(native_labels.FERPLUS_COLUMNS)}; found {header}",
                                 "use the official fer2013new.csv")
        for index, row in enumerate(reader):
            no = index + 2
            ctx.report.rows += 1
            if len(row) < 12:
                ctx.problem("bad_row", f"{label_path}:{no}", "expected 12 columns", "restore the official fer2013new.csv")
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
                ctx.problem("bad_row", f"{label_path}:{no}", "vote columns must be numbers", "restore the official fer2013new.csv")
                continue
            label = native_labels.ferplus_majority(votes)
            if label is None and not all_rows:
                top = max(votes)
                winners = [native_labels.FERPLUS_COLUMNS[i] for i, v in enumerate(votes) if v == top]
                ctx.report.dropped["tied majority" if len(winners) > 1 else f"majority {winners[0]}"] += 1
                continue
            rec = Record(id=Path(name).stem.lower(), label=-1 if label is None else label,
                         meta={"votes": votes, "usage": usage})
            if use_folders:
                rec.path = str(root / _FERPLUS_DIRS.get(usage, "FER2013Test") / name)
            else:
                if index >= len(pixel_rows or []):
                    ctx.problem("bad_row", f"{label_path}:{no}", f"no matching row {no} in {pixels_path} (rows must align 1:1)",
                                "use the fer2013.csv that fer2013new.csv was made from")
                    continue
                pixels = _fer_pixels(ctx, pixel_rows[index], f"{pixels_path}:{no}")
                if pixels is None:
                    continue
                rec.pixels = pixels
                rec.meta["source"] = f"{pixels_path}:{no}"
            names.append((no, rec.id, rec.label))
            records.append(rec)
    keep = _dedupe(ctx, label_path, names)
    seen: set[str] = set()
    unique = []
    for r in records:
        if r.id in keep and r.id not in seen:
            seen.add(r.id)
            unique.append(r)
    return _check_files(ctx, unique, str(label_path))


def _folders(ctx: _Ctx, root: Path, split: str, m: Manifest, *, split_dirs: dict[str, str] | None = None) -> list[Record]:
    dirs = dict(m.split_dirs)
    dirs.update(split_dirs or {})
    if split not in dirs:
        raise ValueError(f"{m.title} splits are {sorted(dirs)}, not {split!r}")
    base = root / dirs[split]
    if not base.is_dir():
        # case-insensitive match (Train/train)
        candidates = [p for p in root.iterdir() if p.is_dir() and p.name.lower() == dirs[split].lower()] if root.is_dir() else []
        base = candidates[0] if candidates else base
    _require(base, f"{m.title} {split} folder", m, is_dir=True)
    records = []
    class_dirs = sorted(p for p in base.iterdir() if p.is_dir())
    if not class_dirs:
        raise LayoutError(base, "no class folders found (expected one folder per expression, e.g. Angry/, Happy/)",
                          f"point root at the folder holding {dirs[split]}/<class>/; see {m.path}")
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


_KDEF_SESSION = re.compile(r"^[AB][FM]\d\d$", re.I)
_KDEF_FILE = re.compile(r"^(?P<session>[AB])(?P<gender>[FM])(?P<id>\d\d)(?P<expr>AF|AN|DI|HA|NE|SA|SU)(?P<angle>FL|HL|S|HR|FR)\.jpe?g$", re.I)


def _folds_split(ctx: _Ctx, records: list[Record], split: str, fold: int | None, num_folds: int, dataset: str) -> list[Record]:
    from ferlib.data.protocols import subject_folds

    if split == "all":
        return records
    if split not in ("train", "test"):
        raise ValueError(f"{dataset} splits are 'all', 'train' and 'test' (train/test need fold=k)")
    if fold is None:
        raise ValueError(f"{dataset} split {split!r} needs fold=k (0-{num_folds - 1}) for the {num_folds}-fold protocol; "
                         "use split='all' for every image")
    folds = subject_folds([r.subject for r in records], num_folds)
    if not 0 <= fold < num_folds:
        raise ValueError(f"fold must be 0-{num_folds - 1}, got {fold}")
    test_subjects = set(folds[fold])
    return [r for r in records if (r.subject in test_subjects) == (split == "test")]


def _kdef(ctx: _Ctx, root: Path, split: str, m: Manifest, *, fold: int | None = None, num_folds: int = 10,
          angles: Iterable[str] | None = None, sessions: Iterable[str] = ("A", "B")) -> list[Record]:
    base = root / "KDEF" if (root / "KDEF").is_dir() else root
    _require(base, "KDEF folder", m, is_dir=True)
    session_dirs = sorted(p for p in base.iterdir() if p.is_dir() and _KDEF_SESSION.match(p.name))
    if not session_dirs:
        raise LayoutError(base, "no KDEF session folders (AF01 ... BM35) found",
                          f"point root at the folder holding AF01/, AM01/, ... (or its parent KDEF/); see {m.path}")
    wanted_angles = None if angles is None else {a.upper() for a in angles}
    wanted_sessions = {s.upper() for s in sessions}
    records = []
    for d in session_dirs:
        for f in sorted(d.iterdir()):
            if not f.is_file() or f.name.startswith("."):
                continue
            match = _KDEF_FILE.match(f.name)
            if not match:
                ctx.problem("bad_name", f, "file name does not follow <A|B><F|M><01-35><AF|AN|DI|HA|NE|SA|SU><FL|HL|S|HR|FR>.JPG",
                            "rename it to the KDEF convention or remove it")
                continue
            g = {k: v.upper() for k, v in match.groupdict().items()}
            ctx.report.rows += 1
            if g["session"] not in wanted_sessions or (wanted_angles is not None and g["angle"] not in wanted_angles):
                continue
            records.append(Record(
                id=f.stem.upper(), label=native_labels.KDEF[g["expr"]], path=str(f), subject=f"{g['gender']}{g['id']}",
                meta={"yaw": native_labels.KDEF_ANGLES[g["angle"]], "pitch": 0.0, "roll": 0.0, "angle": g["angle"],
                      "session": g["session"]},
            ))
    return _folds_split(ctx, records, split, fold, num_folds, "KDEF")


def _ckplus(ctx: _Ctx, root: Path, split: str, m: Manifest, *, fold: int | None = None, num_folds: int = 10,
            frames: int = 3, include_neutral: bool = False) -> list[Record]:
    images = _require(root / "cohn-kanade-images", "CK+ image folder", m, is_dir=True)
    emotion = _require(root / "Emotion", "CK+ emotion label folder", m, is_dir=True)
    landmarks_dir = root / "Landmarks"
    records = []
    for emo_file in sorted(emotion.glob("S*/*/*_emotion.txt")):
        subject, seq = emo_file.parent.parent.name, emo_file.parent.name
        text = emo_file.read_bytes().decode("utf-8", errors="replace").strip()
        try:
            value = float(text.split()[0])
            if value != int(value) or int(value) not in native_labels.CKPLUS:
                raise ValueError
        except (ValueError, IndexError):
            ctx.problem("bad_row", emo_file, f"expected one number 0-7 (e.g. '3.0000000e+00'), found {text[:40]!r}",
                        "restore the official emotion file")
            continue
        ctx.report.rows += 1
        label = native_labels.CKPLUS[int(value)]
        seq_dir = images / subject / seq
        frame_files = sorted(p for p in seq_dir.glob("*.png") if not p.name.startswith(".")) if seq_dir.is_dir() else []
        if not frame_files:
            ctx.problem("missing", seq_dir, f"no frames for the labelled sequence {subject}/{seq} ({emo_file})",
                        "restore cohn-kanade-images from the CK+ archive", exc=LayoutError)
            continue
        chosen = [(p, label) for p in frame_files[-frames:]]
        if include_neutral and len(frame_files) > frames:
            chosen.insert(0, (frame_files[0], native_labels.CKPLUS[0]))
        for p, lab in chosen:
            lm_file = landmarks_dir / subject / seq / f"{p.stem}_landmarks.txt"
            lm68 = lm5 = lm8 = None
            if lm_file.is_file():
                try:
                    lm68 = _parse_floats(lm_file.read_text(errors="replace"), 136, "68 landmarks", str(lm_file)).reshape(68, 2)
                    lm5, lm8 = landmarks5_from_68(lm68), landmarks8_from_68(lm68)
                except ValueError as exc:
                    ctx.problem("bad_row", lm_file, str(exc), "restore the official landmark file")
            records.append(Record(id=p.stem, label=lab, path=str(p), subject=subject, landmarks5=lm5, landmarks8=lm8,
                                  landmarks=lm68, meta={"sequence": f"{subject}/{seq}"}))
    if not records and ctx.report.rows == 0:
        raise LayoutError(emotion, "no Emotion/S*/*/*_emotion.txt label files found", f"extract Emotion_labels into root; see {m.path}")
    return _folds_split(ctx, records, split, fold, num_folds, "CK+")


def _ran(ctx: _Ctx, root: Path, split: str, m: Manifest, *, list_file: str | Path | None = None,
         keep_duplicates: bool = False, **base_kw) -> list[Record]:
    from ferlib.data.ran_lists import parse_ran_list

    if split not in m.list_files:
        raise ValueError(f"{m.name} splits are {sorted(m.list_files)}, not {split!r}")
    filename = m.list_files[split]
    if list_file is None:
        candidates = [root / "RAN" / filename, root / filename]
        list_file = next((c for c in candidates if c.is_file()), candidates[0])
    list_file = Path(list_file)
    if not list_file.is_file():
        raise LayoutError(list_file, f"RAN list {filename} not found",
                          f"download it from {m.request.split()[0]} and pass list_file=PATH or copy it to {root / 'RAN'}")
    family = {"rafdb": "rafdb", "affectnet8": "affectnet", "ferplus": "ferplus"}[m.base]
    ran = parse_ran_list(list_file, family)
    ctx.report.rows = len(ran)
    base_m = load_manifest(m.base)
    base_ctx = _Ctx(LoadReport(base_m.name, "base"), "skip")
    if family == "rafdb":
        base = _rafdb(base_ctx, root, "test", base_m, **base_kw)
    elif family == "affectnet":
        base = _affectnet(base_ctx, root, "test", base_m, **base_kw)
    else:
        base = _ferplus(base_ctx, root, "all", base_m, all_rows=True)
    # Problems of the base copy that concern listed images surface through the missing check below.
    index = {r.id: r for r in base}
    entries = ran.entries if keep_duplicates else ran.unique()
    if not keep_duplicates:
        first_seen: set[str] = set()
        for e in ran.entries:
            if e.key in first_seen:
                ctx.duplicate(list_file, e.line_no, e.key)
            first_seen.add(e.key)
    records = []
    for e in entries:
        rec = index.get(e.key)
        if rec is None:
            ctx.problem("missing", f"{list_file}:{e.line_no}",
                        f"{e.key!r} is not in your {base_m.title} copy under {root}",
                        f"check that root points at the full {base_m.title} copy", exc=LayoutError)
            continue
        meta = dict(rec.meta)
        meta.update({"occlusion": e.occlusion, "ran_list": str(list_file), "ran_line": e.line_no})
        records.append(Record(id=rec.id, label=e.label, path=rec.path, subject=rec.subject, landmarks5=rec.landmarks5,
                              landmarks8=rec.landmarks8, landmarks=rec.landmarks, crop=rec.crop, pixels=rec.pixels, meta=meta))
    return _check_files(ctx, records, str(list_file))


# --------------------------------------------------------------------------------------------
# SynthFER
# --------------------------------------------------------------------------------------------


def _synthfer_folder(ctx: _Ctx, root: Path, split: str, m: Manifest) -> list[Record]:
    manifest_csv = root / "manifest.csv"
    if not manifest_csv.is_file():
        raise LayoutError(manifest_csv, "materialised folder has no manifest.csv (it is written last: an incomplete folder has none)",
                          "re-run `ferlib data synth --out DIR --n N --seed S` (or `ferlib data occlude`)")
    records, rows = [], []
    with open(manifest_csv, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        needed = {"id", "path", "split", "label"}
        if not needed <= set(reader.fieldnames or []):
            raise LabelFileError(manifest_csv, f"columns {sorted(needed)} required, found {reader.fieldnames}",
                                 "re-run the command that wrote the folder")
        for no, row in enumerate(reader, start=2):
            ctx.report.rows += 1
            if split != "all" and row["split"] != split:
                continue
            where = f"{manifest_csv}:{no}"
            try:
                label = int(row["label"])
                if not 0 <= label < len(CANONICAL_CLASSES):
                    raise ValueError(f"label {label} outside 0-7")
                lm5 = _parse_floats(row["lm5"], 10, "lm5", where).reshape(5, 2) if row.get("lm5") else None
                lm8 = _parse_floats(row["lm8"], 16, "lm8", where).reshape(8, 2) if row.get("lm8") else None
            except ValueError as exc:
                ctx.problem("bad_row", where, str(exc), "re-run the command that wrote the folder")
                continue
            meta: dict[str, Any] = {}
            for key in ("yaw", "pitch", "roll"):
                meta[key] = _float_or_none(row.get(key, ""))
            meta["occlusion"] = row.get("occlusion") or None
            for key, value in row.items():
                if key not in ("id", "path", "split", "label", "subject", "yaw", "pitch", "roll", "occlusion", "lm5", "lm8"):
                    meta[key] = value
            path = Path(row["path"])
            path = path if path.is_absolute() else root / path
            rows.append((no, row["id"], label))
            records.append(Record(id=row["id"], label=label, path=str(path), subject=row.get("subject") or None,
                                  landmarks5=lm5, landmarks8=lm8, meta=meta))
    keep = _dedupe(ctx, manifest_csv, rows)
    seen: set[str] = set()
    unique = [r for r in records if r.id in keep and not (r.id in seen or seen.add(r.id))]
    if not unique and split != "all":
        raise LayoutError(manifest_csv, f"no rows with split {split!r}", "materialise that split or pass split='all'")
    return _check_files(ctx, unique, str(manifest_csv))


def _synthfer_lazy(split: str, image_size: int, num_classes: int, n: int | None, seed: int, **kw) -> Dataset:
    """The lazily rendered SynthFER dataset (:class:`ferlib.data.synthfer.SynthFERDataset`)."""
    from ferlib.data.synthfer import SynthFERDataset

    if n is None:
        n = {"train": 2000, "val": 400, "test": 700}.get(split, 1000)
    ds = SynthFERDataset(n=n, seed=seed, split=split, image_size=image_size, num_classes=num_classes, **kw)
    if getattr(ds, "labels", None) is None or getattr(ds, "class_names", None) is None:
        raise TypeError("SynthFERDataset must expose .labels and .class_names (ferlib.data.synthfer)")
    return ds


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

_BUILDERS: dict[str, Callable[..., list[Record]]] = {
    "rafdb": _rafdb,
    "affectnet": _affectnet,
    "fer2013": _fer2013,
    "ferplus": _ferplus,
    "folders": _folders,
    "kdef": _kdef,
    "ckplus": _ckplus,
    "ran": _ran,
    "synthfer": _synthfer_folder,
}

#: Short names that map to manifests.
ALIASES = {"raf-db": "rafdb", "raf_db": "rafdb", "affectnet": "affectnet7", "sfew": "sfew2", "caer-s": "caers",
           "ck+": "ckplus", "fed-ro": "fedro", "fer-2013": "fer2013", "materialised": "synthfer", "occluded": "synthfer"}


def resolve_name(name: str) -> str:
    key = name.lower()
    return ALIASES.get(key, key)


def build_dataset(
    name: str,
    split: str = "train",
    root: str | Path | None = None,
    *,
    num_classes: int = 7,
    image_size: int = 224,
    landmarks_file: str | Path | None = None,
    on_corrupt: str = "error",
    **kw: Any,
) -> Dataset:
    """Build the dataset ``name`` (a manifest name, see ``ferlib data list``) for ``split``.

    ``root`` is the folder of the local copy in its official layout (``data_manifests/<name>.yaml``).
    For ``synthfer`` without a root the lazily generated SynthFER dataset is returned (``n``/``seed``
    keywords); with a root, a folder written by ``ferlib data synth``/``ferlib data occlude`` is loaded.
    ``landmarks_file`` replaces the shipped landmarks (see :func:`load_landmarks_file`).
    ``on_corrupt``: ``"error"`` raises on the first missing/unreadable image or bad row,
    ``"skip"`` skips and counts it in ``dataset.report`` (and warns).
    Loader-specific keywords: RAF-DB ``variant``; AffectNet ``crop_face``, ``keep_landmarks68``;
    folders ``split_dirs``; KDEF ``fold``, ``num_folds``, ``angles``, ``sessions``; CK+ ``fold``,
    ``num_folds``, ``frames``, ``include_neutral``; RAN ``list_file``, ``keep_duplicates``.
    """
    manifest = load_manifest(resolve_name(name))
    if manifest.loader == "synthfer" and root is None:
        n = kw.pop("n", None)
        seed = kw.pop("seed", 0)
        return _synthfer_lazy(split, image_size, num_classes, n, seed, **kw)
    if root is None:
        raise ValueError(
            f"{manifest.title} needs root=PATH to your local copy (ferlib never downloads it). "
            f"Get it at {manifest.request}; the expected layout is in {manifest.path}"
        )
    root = Path(root).expanduser()
    if not root.is_dir():
        raise LayoutError(root, f"{manifest.title} root folder does not exist",
                          f"pass the folder holding {', '.join(manifest.layout)}; see {manifest.path}")
    report = LoadReport(manifest.name, split)
    ctx = _Ctx(report, on_corrupt)
    builder = _BUILDERS[manifest.loader]
    try:
        records = builder(ctx, root, split, manifest, **kw)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise TypeError(f"{manifest.name}: {exc}; see build_dataset's docstring for the keywords each loader takes") from exc
        raise
    records = [r for r in records if r.label >= 0]
    records = _filter_classes(ctx, records, num_classes)
    table = load_landmarks_file(landmarks_file) if landmarks_file is not None else None
    for kind in ("duplicate", "conflict", "missing", "bad_row", "corrupt", "bad_name", "layout"):
        n = report.count(kind)
        if n and kind != "duplicate":
            warnings.warn(f"{manifest.name}/{split}: skipped {n} item(s) ({kind}); see dataset.report", stacklevel=2)
    return FERDataset(manifest.name, split, root, records, num_classes=num_classes, image_size=image_size,
                      on_corrupt=on_corrupt, report=report, manifest=manifest, landmarks_table=table,
                      landmarks_file=landmarks_file)


__all__ = [
    "build_dataset",
    "FERDataset",
    "Record",
    "LoadReport",
    "Problem",
    "DatasetError",
    "LayoutError",
    "LabelFileError",
    "CorruptImageError",
    "load_landmarks_file",
    "landmarks5_from_68",
    "landmarks8_from_68",
    "order_landmarks5_by_x",
    "resolve_name",
]
