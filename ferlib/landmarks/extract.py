"""Cached, resumable landmark extraction over images, folders and datasets (the writer of landmarks files).

The reader is :mod:`ferlib.data.landmark_files` (:func:`~ferlib.data.landmark_files.load_landmarks_file`,
:class:`~ferlib.data.landmark_files.LandmarkTable`), on the data floor so that loaders can read landmarks.

File format (``docs/landmarks.md`` has the full description)
-------------------------------------------------------------
A landmarks file is JSON lines. The first line of a finished file is a header
``{"format": "ferlib-landmarks", "version": 1, "detector": {...}, "counts": {...}, ...}``; every other
line is one record::

    {"path": "train/img_001.jpg", "hash": "3f2a…", "width": 100, "height": 100, "backend": "mtcnn",
     "status": "ok", "n_faces": 1, "landmarks5": [[x, y] × 5], "box": [x1, y1, x2, y2], "score": 0.99,
     "fallback": false}

``status`` is ``ok`` (one face), ``multiple_faces`` (several; the largest, most central is kept,
see :func:`~ferlib.landmarks.base.select_primary_face`), ``no_face`` (none found: ``landmarks5``
is the canonical template scaled to the image, ``fallback`` is true — right for an already aligned
crop, flagged so it can be excluded) or ``unreadable`` (the image could not be decoded; ``error``
says why). Records are keyed by image path **and** content hash (SHA-1 of the file's bytes, or of
the decoded pixels for in-memory datasets, first 16 hex digits): a changed file is recomputed.

Crash safety
------------
While running, records go to ``<out>.partial``, append-only: each batch is written, flushed and
fsynced before the next starts. SIGKILL can at worst tear the last line, which a reload ignores
(and the next run drops before appending). A rerun loads ``<out>`` and ``<out>.partial``, skips
every finished key and continues. At the end the consolidated file is written atomically
(temporary file + ``os.replace``) and the journal removed. ``<out>`` is therefore always either
absent, the previous complete file, or the new complete file.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    import fcntl  # POSIX advisory lock: refuse two runs writing the same journal
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from ferlib.data.face_geometry import canonical_template
from ferlib.data.images import to_rgb_array
from ferlib.data.landmark_files import (  # noqa: F401 - the reader's names, re-exported for the writer's users
    FORMAT_NAME,
    FORMAT_VERSION,
    STATUSES,
    LandmarkTable,
    count_statuses,
    journal_path,
    load_landmarks_file,
    read_jsonl_records,
    record_key,
)
from ferlib.fileio import atomic_path
from ferlib.landmarks.base import Detector, Face, create_detector, select_primary_face

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
HASH_CHARS = 16


def bytes_hash(data: bytes) -> str:
    """Content hash of a file's bytes (SHA-1, first 16 hex digits)."""
    return hashlib.sha1(data).hexdigest()[:HASH_CHARS]


def pixels_hash(image: Any) -> str:
    """Content hash of decoded pixels (shape + uint8 bytes) for images that have no file."""
    arr = to_rgb_array(image)
    h = hashlib.sha1(repr(arr.shape).encode())
    h.update(arr.tobytes())
    return h.hexdigest()[:HASH_CHARS]


# --------------------------------------------------------------------------------------------
# Items to process
# --------------------------------------------------------------------------------------------


@dataclass
class ImageItem:
    """One image to process: its key parts and a way to get its pixels (and sample, if any)."""

    path: str
    hash: str
    load: Callable[[], np.ndarray]
    sample: Mapping[str, Any] | None = None


def _decode_bytes(data: bytes, name: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return to_rgb_array(im)
    except Exception as exc:  # PIL raises several types for bad files
        raise ValueError(f"cannot decode image file {name} ({type(exc).__name__})") from exc


def iter_image_files(root: str | os.PathLike) -> list[Path]:
    """Image files under ``root`` (recursively), sorted; a single file is returned as itself."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(
            f"no image or folder at {root}; pass an image file, a folder of images or a dataset name"
        )
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def items_from_files(root: str | os.PathLike) -> Iterator[ImageItem]:
    """Items for an image file or every image under a folder; paths are relative to the folder."""
    root = Path(root)
    base = root.parent if root.is_file() else root
    for f in iter_image_files(root):
        data = f.read_bytes()
        rel = f.relative_to(base).as_posix()
        yield ImageItem(path=rel, hash=bytes_hash(data), load=lambda d=data, n=rel: _decode_bytes(d, n))


def sample_key_path(sample: Mapping[str, Any], index: int) -> str:
    """The path a dataset sample is keyed by: ``meta['path']``, else ``meta['id']``, else ``#<index>``."""
    meta = sample.get("meta") or {}
    for name in ("path", "id"):
        if meta.get(name) not in (None, ""):
            return str(meta[name])
    return f"#{index}"


def sample_content_hash(sample: Mapping[str, Any], key_path: str) -> str:
    """File-byte hash when the sample's path is a readable file, else the pixel hash."""
    p = Path(key_path)
    if key_path and not key_path.startswith("#") and p.is_file():
        return bytes_hash(p.read_bytes())
    return pixels_hash(sample["image"])


def items_from_dataset(dataset: Sequence[Mapping[str, Any]]) -> Iterator[ImageItem]:
    """Items for every sample of a ferlib dataset (anything with ``__len__``/``__getitem__``)."""
    for i in range(len(dataset)):
        s = dataset[i]
        path = sample_key_path(s, i)
        yield ImageItem(
            path=path, hash=sample_content_hash(s, path), load=lambda s=s: to_rgb_array(s["image"]), sample=s
        )


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------


def make_record(
    item: ImageItem, image_hw: tuple[int, int], faces: Sequence[Face], backend: str, fallback: str = "template"
) -> dict:
    """The record for one image given the faces its detector found (see the module docstring)."""
    h, w = image_hw
    rec: dict[str, Any] = {
        "path": item.path,
        "hash": item.hash,
        "width": int(w),
        "height": int(h),
        "backend": backend,
        # "file": pixels of the image file on disk; "sample": pixels of the image a dataset returned
        "space": "file" if item.sample is None else "sample",
        "n_faces": len(faces),
    }
    primary = select_primary_face(faces, (h, w))
    if primary is None:
        pts = canonical_template((h, w)) if fallback == "template" else None
        rec.update(
            status="no_face",
            landmarks5=None if pts is None else [[round(float(x), 3), round(float(y), 3)] for x, y in pts],
            box=None,
            score=None,
            fallback=pts is not None,
        )
    else:
        rec.update(primary.to_dict(), status="ok" if len(faces) == 1 else "multiple_faces", fallback=False)
    return rec


@dataclass
class ExtractionReport:
    """What :func:`extract_landmarks` did. ``counts`` covers every record in the output file."""

    out: Path
    total: int
    computed: int
    reused: int
    counts: dict[str, int]
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "total": self.total,
            "computed": self.computed,
            "reused": self.reused,
            "counts": self.counts,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 1) if math.isfinite(self.images_per_second) else None,
        }


class _Journal:
    """Append-only JSONL journal: each batch is written, flushed and fsynced; exclusive lock."""

    def __init__(self, path: Path, keep: list[dict]) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(str(path) + ".lock", "a")
        try:
            if fcntl is not None:
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise RuntimeError(
                f"another `ferlib landmarks` run is writing {path}; wait for it or choose another --out"
            ) from None
        if path.exists():
            # Drop a torn tail (SIGKILL mid-write) before appending, atomically.
            with atomic_path(path, suffix=".partial") as tmp:
                tmp.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in keep))
        self._fh = open(path, "a", encoding="utf-8")

    def append(self, records: Sequence[dict]) -> None:
        if not records:
            return
        self._fh.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self, remove: bool = False) -> None:
        self._fh.close()
        if remove and self.path.exists():
            self.path.unlink()
        try:
            if fcntl is not None:
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
        finally:
            self._lock.close()
            lock = Path(str(self.path) + ".lock")
            if remove and lock.exists():
                lock.unlink()


def write_landmarks_file(
    out: str | os.PathLike, records: Iterable[dict], detector_info: Mapping[str, Any] | None = None
) -> Path:
    """Write a consolidated landmarks file atomically: header line, then records sorted by path."""
    recs = sorted(records, key=lambda r: (r["path"], r["hash"]))
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "detector": dict(detector_info or {}),
        "template": "arcface-5pt scaled to the image (no-face fallback), see ferlib.landmarks.align",
        "counts": count_statuses(recs),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with atomic_path(out, suffix=".jsonl") as tmp:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a landmarks file is meant to be shared
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(header, separators=(",", ":")) + "\n")
            for r in recs:
                fh.write(json.dumps(r, separators=(",", ":")) + "\n")
    return Path(out)


def _detect_batch(detector: Detector, batch: list[ImageItem], backend: str, fallback: str) -> list[dict]:
    images: list[np.ndarray | None] = []
    errors: list[str | None] = []
    for item in batch:
        try:
            images.append(item.load())
            errors.append(None)
        except Exception as exc:  # a corrupt file is recorded and counted, never silently skipped
            images.append(None)
            errors.append(f"{type(exc).__name__}: {exc}")
    ok = [i for i, im in enumerate(images) if im is not None]
    if getattr(detector, "needs_samples", False):
        found = detector.detect_samples([batch[i].sample for i in ok])  # type: ignore[attr-defined]
    else:
        found = detector.detect([images[i] for i in ok])
    faces_for = dict(zip(ok, found))
    records = []
    for i, item in enumerate(batch):
        if images[i] is None:
            records.append(
                {
                    "path": item.path,
                    "hash": item.hash,
                    "width": 0,
                    "height": 0,
                    "backend": backend,
                    "space": "file" if item.sample is None else "sample",
                    "status": "unreadable",
                    "n_faces": 0,
                    "landmarks5": None,
                    "box": None,
                    "score": None,
                    "fallback": False,
                    "error": errors[i],
                }
            )
        else:
            records.append(make_record(item, images[i].shape[:2], faces_for[i], backend, fallback))
    return records


def extract_landmarks(
    source: str | os.PathLike | Sequence[Mapping[str, Any]] | Iterable[ImageItem],
    out: str | os.PathLike,
    detector: Detector | str = "mtcnn",
    batch_size: int = 16,
    fallback: str = "template",
    progress: bool = True,
    total: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> ExtractionReport:
    """Detect 5 points for every image of ``source`` and write them to the landmarks file ``out``.

    ``source`` is an image file, a folder (searched recursively), a ferlib dataset (sequence of
    samples) or an iterable of :class:`ImageItem`. Images already in ``out`` or its journal with
    the same path, content hash and backend are reused, never recomputed. ``fallback`` is
    ``"template"`` (no face → canonical template points, flagged) or ``"none"`` (no points).
    Ctrl-C stops after writing what is finished and re-raises ``KeyboardInterrupt``.
    """
    from tqdm.auto import tqdm

    if fallback not in ("template", "none"):
        raise ValueError(f"fallback must be 'template' or 'none', got {fallback!r}")
    out = Path(out)
    det = create_detector(detector) if isinstance(detector, str) else detector
    backend = det.name
    start = time.perf_counter()

    # Everything already finished: the previous complete file and the journal of a killed run.
    journal = journal_path(out)
    finished = read_jsonl_records(out, tolerate_torn=False)[1] if out.exists() else []
    journal_records = read_jsonl_records(journal, tolerate_torn=True)[1] if journal.exists() else []
    previous = {record_key(r["path"], r["hash"]): r for r in finished + journal_records}

    if isinstance(source, (str, os.PathLike)):
        if total is None:
            total = len(iter_image_files(source))
        items: Iterable[ImageItem] = items_from_files(source)
    elif (
        hasattr(source, "__getitem__")
        and hasattr(source, "__len__")
        and not (
            len(source) and isinstance(source[0], ImageItem)  # type: ignore[arg-type]
        )
    ):
        total = len(source) if total is None else total  # type: ignore[arg-type]
        items = items_from_dataset(source)  # type: ignore[arg-type]
    else:
        items = source  # type: ignore[assignment]
        total = len(source) if total is None and hasattr(source, "__len__") else total  # type: ignore[arg-type]

    jr = _Journal(journal, journal_records)
    results: dict[str, dict] = {}
    computed = reused = 0
    bar = tqdm(total=total, desc=f"landmarks ({backend})", unit="img", disable=not progress, file=sys.stderr)
    try:
        pending: list[ImageItem] = []

        def flush() -> None:
            nonlocal computed
            if not pending:
                return
            recs = _detect_batch(det, pending, backend, fallback)
            jr.append(recs)
            for r in recs:
                results[record_key(r["path"], r["hash"])] = r
            computed += len(recs)
            bar.update(len(recs))
            if on_batch is not None:
                on_batch(computed)
            pending.clear()

        for item in items:
            key = record_key(item.path, item.hash)
            done = previous.get(key)
            if done is not None and done.get("backend") == backend:
                results[key] = done
                reused += 1
                bar.update(1)
                continue
            pending.append(item)
            if len(pending) >= batch_size:
                flush()
        flush()
    except BaseException:
        # Ctrl-C or an error: what is in the journal is finished work; a rerun resumes from it.
        jr.close(remove=False)
        raise
    finally:
        bar.close()
    # Consolidate atomically, then drop the journal. Records of images outside this run are kept
    # (a file may collect several splits); an image whose content changed keeps only its new record.
    paths_now = {r["path"] for r in results.values()}
    kept = [r for k, r in previous.items() if r["path"] not in paths_now]
    written = False
    try:
        write_landmarks_file(out, kept + list(results.values()), det.describe())
        written = True
    finally:
        jr.close(remove=written)  # keep the journal if the final file could not be written
    counts = count_statuses(results.values())
    return ExtractionReport(out, len(results), computed, reused, counts, time.perf_counter() - start)


def write_landmarks_csv(records: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> tuple[Path, int]:
    """Export records as the CSV ``ferlib.data.landmark_files.load_landmarks_file`` reads
    (``build_dataset(landmarks_file=...)``).

    Columns ``path``, ``lm5`` (10 numbers ``x1 y1 … x5 y5``), ``status``, ``fallback``. That loader
    expects points in the pixels of the files on disk, so only records of folder/file extraction
    (``space == "file"``) with points are written; returns (path, number of records left out).
    """
    import csv

    rows, left_out = [], 0
    for r in sorted(records, key=lambda r: r["path"]):
        if r.get("landmarks5") is None or r.get("space", "file") != "file":
            left_out += 1
            continue
        lm5 = " ".join(f"{v:.3f}" for xy in r["landmarks5"] for v in xy)
        rows.append({"path": r["path"], "lm5": lm5, "status": r["status"], "fallback": int(bool(r.get("fallback")))})
    with atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["path", "lm5", "status", "fallback"])
            writer.writeheader()
            writer.writerows(rows)
    return Path(path), left_out


# --------------------------------------------------------------------------------------------
# The data layer's entry point
# --------------------------------------------------------------------------------------------


class LandmarkedDataset:
    """A dataset whose samples get ``landmarks5`` from a landmarks file (see :func:`attach_landmarks`)."""

    def __init__(
        self, dataset: Sequence[Mapping[str, Any]], table: LandmarkTable, strict: bool = False, overwrite: bool = True
    ) -> None:
        self.dataset = dataset
        self.table = table
        self.strict = strict
        self.overwrite = overwrite

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:  # labels, classes, ... of the wrapped dataset
        if name in ("dataset", "table", "strict", "overwrite"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        sample = dict(self.dataset[index])
        meta = dict(sample.get("meta") or {})
        path = sample_key_path(sample, index)
        rec = self.table.lookup(path)
        if rec is None:
            rec = self.table.lookup(None, pixels_hash(sample["image"]))
        if rec is None and self.strict:
            raise KeyError(
                f"no landmarks for sample {index} (path {path!r}) in {self.table.source}; "
                f"rerun `ferlib landmarks` on this dataset with --out {self.table.source}"
            )
        if not self.overwrite:
            existing = sample.get("landmarks5")
            if existing is not None and torch.isfinite(torch.as_tensor(existing)).all():
                return sample
        img = sample["image"]
        hw = tuple(img.shape[-2:]) if img.ndim == 3 and img.shape[0] in (1, 3, 4) else tuple(img.shape[:2])
        sample["landmarks5"] = torch.from_numpy(self.table.landmarks5(rec, hw))  # type: ignore[arg-type]
        meta["landmarks_status"] = "missing" if rec is None else rec["status"]
        meta["landmarks_fallback"] = bool(rec and rec.get("fallback"))
        sample["meta"] = meta
        return sample


def attach_landmarks(
    dataset: Sequence[Mapping[str, Any]],
    path: str | os.PathLike | LandmarkTable,
    strict: bool = False,
    overwrite: bool = True,
) -> LandmarkedDataset:
    """Wrap ``dataset`` so each sample's ``landmarks5`` comes from the landmarks file ``path``.

    Points are rescaled from the image size recorded at extraction to the sample's image size.
    ``meta['landmarks_status']`` says ``ok``/``multiple_faces``/``no_face``/``unreadable`` or
    ``missing``; ``meta['landmarks_fallback']`` marks template points. ``strict`` raises on a
    sample that has no record; ``overwrite=False`` keeps landmarks the dataset already has.
    """
    table = path if isinstance(path, LandmarkTable) else LandmarkTable.from_file(path)
    return LandmarkedDataset(dataset, table, strict=strict, overwrite=overwrite)
