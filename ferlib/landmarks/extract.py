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
see :func:`~ferlib.landmarks.base.select_primary_face`; ``faces`` lists them all), ``no_face`` (none
found: ``landmarks5`` is the canonical template scaled to the image, ``fallback`` is true — right for
an already aligned crop, flagged so it can be excluded), ``too_small`` (smaller than the detector's
smallest face, e.g. MTCNN's ``min_face_size``; otherwise like ``no_face``), ``unreadable`` (the image
could not be decoded; ``error`` says why) or ``detector_error`` (the detector failed on this image;
a rerun tries again). Records are keyed by the folder given (``root``, folder extraction only), the
image path in it **and** the content hash (SHA-1 of the file's bytes, or of the decoded pixels for
in-memory datasets, first 16 hex digits): two folders with the same relative names never share a
record, and a changed file is recomputed.

Crash safety
------------
While running, records go to ``<out>.partial``, append-only: each batch is written, flushed and
fsynced before the next starts. SIGKILL can at worst tear the last line, which a reload ignores
(and the next run drops before appending). A rerun loads ``<out>`` and ``<out>.partial``, skips
every finished key and continues. At the end the consolidated file is written atomically
(temporary file + ``os.replace``) and the journal removed. ``<out>`` is therefore always either
absent, the previous complete file, or the new complete file — except after a crash (any error but
Ctrl-C), which saves the finished records in ``<out>`` with ``"complete": false`` and removes the
journal and its lock (:mod:`ferlib.landmarks.journal`), so nothing is lost and nothing is left behind.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.data.face_geometry import canonical_template
from ferlib.data.images import to_rgb_array
from ferlib.data.landmark_files import (  # noqa: F401 - the reader's names, re-exported for the writer's users
    FORMAT_NAME,
    FORMAT_VERSION,
    HASH_CHARS,
    STATUSES,
    LandmarksFileError,
    LandmarkTable,
    NotLandmarksFileError,
    bytes_hash,
    count_statuses,
    journal_path,
    key_of,
    load_landmarks_file,
    pixels_hash,
    read_jsonl_records,
    record_key,
    repair_landmarks_file,
)
from ferlib.fileio import atomic_path
from ferlib.landmarks.attach import (  # noqa: F401 - re-exported: the data layer's entry point
    LandmarkedDataset,
    attach_landmarks,
    sample_content_hash,
    sample_key_path,
)
from ferlib.landmarks.base import Detector, Face, create_detector, select_primary_face
from ferlib.landmarks.journal import ExtractionJournal, ExtractionLockedError, notice_stderr  # noqa: F401

_Journal = ExtractionJournal  # the name the tests knew

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


# --------------------------------------------------------------------------------------------
# Items to process
# --------------------------------------------------------------------------------------------


@dataclass
class ImageItem:
    """One image to process: its key parts and a way to get its pixels (and sample, if any).

    ``root`` is the absolute folder a folder extraction was given (``None`` for dataset samples, whose
    paths are already the dataset's own); ``space`` is ``file`` or ``sample`` (see the module docstring).
    """

    path: str
    hash: str
    load: Callable[[], np.ndarray]
    sample: Mapping[str, Any] | None = None
    root: str | None = None
    space: str = "file"

    @property
    def key(self) -> str:
        return record_key(self.path, self.hash, self.root)


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
    """Items for an image file or every image under a folder; paths are relative to the folder, whose
    absolute path is each item's ``root`` (so ``train/`` and ``test/`` never share a record)."""
    root = Path(root)
    base = root.parent if root.is_file() else root
    base_abs = base.resolve().as_posix()
    for f in iter_image_files(root):
        data = f.read_bytes()
        rel = f.relative_to(base).as_posix()
        yield ImageItem(path=rel, hash=bytes_hash(data), load=lambda d=data, n=rel: _decode_bytes(d, n), root=base_abs)


def _unreadable_item(dataset: Any, index: int, exc: BaseException) -> ImageItem:
    """An item for a sample the dataset could not decode: recorded ``unreadable``, never a crash."""
    rec = (getattr(dataset, "records", None) or [None] * (index + 1))[index]
    path = str(getattr(rec, "path", None) or getattr(rec, "id", None) or f"#{index}")
    p = Path(path)
    content = bytes_hash(p.read_bytes()) if p.is_file() else "0" * HASH_CHARS
    message = f"{type(exc).__name__}: {exc}"

    def fail() -> np.ndarray:
        raise ValueError(message)

    return ImageItem(path=path, hash=content, load=fail, space="sample")


def items_from_dataset(dataset: Sequence[Mapping[str, Any]]) -> Iterator[ImageItem]:
    """Items for every sample of a ferlib dataset (anything with ``__len__``/``__getitem__``).

    A sample the dataset cannot decode becomes an item whose load fails (recorded ``unreadable``).
    """
    for i in range(len(dataset)):
        try:
            s = dataset[i]
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # a corrupt image of a real dataset: record it and go on
            yield _unreadable_item(dataset, i, exc)
            continue
        path = sample_key_path(s, i)
        yield ImageItem(
            path=path,
            hash=sample_content_hash(s, path),
            load=lambda s=s: to_rgb_array(s["image"]),
            sample=s,
            space="sample",
        )


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------


def _base_record(item: ImageItem, image_hw: tuple[int, int], backend: str) -> dict[str, Any]:
    h, w = image_hw
    rec: dict[str, Any] = {"path": item.path, "hash": item.hash}
    if item.root is not None:
        rec["root"] = item.root
    # "file": pixels of the image file on disk; "sample": pixels of the image a dataset returned
    rec.update(width=int(w), height=int(h), backend=backend, space=item.space)
    return rec


def make_record(
    item: ImageItem,
    image_hw: tuple[int, int],
    faces: Sequence[Face],
    backend: str,
    fallback: str = "template",
    min_side: int = 0,
) -> dict:
    """The record for one image given the faces its detector found (see the module docstring).

    ``min_side``: images whose shorter side is below it cannot hold a face the detector looks for
    (MTCNN's ``min_face_size``): status ``too_small``, treated like ``no_face`` otherwise.
    """
    h, w = image_hw
    rec = _base_record(item, image_hw, backend)
    rec["n_faces"] = len(faces)
    primary = select_primary_face(faces, (h, w))
    if primary is None:
        pts = canonical_template((h, w)) if fallback == "template" else None
        rec.update(
            status="too_small" if min(h, w) < min_side else "no_face",
            landmarks5=None if pts is None else [[round(float(x), 3), round(float(y), 3)] for x, y in pts],
            box=None,
            score=None,
            fallback=pts is not None,
        )
    else:
        rec.update(primary.to_dict(), status="ok" if len(faces) == 1 else "multiple_faces", fallback=False)
        if len(faces) > 1:
            rec["faces"] = [f.to_dict() for f in faces]  # every face, by descending score
    return rec


def _failed_record(item: ImageItem, backend: str, status: str, error: str) -> dict:
    rec = _base_record(item, (0, 0), backend)
    rec.update(status=status, n_faces=0, landmarks5=None, box=None, score=None, fallback=False, error=error)
    return rec


def record_faces(rec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every face a record holds (box, score, 5 points), best first; empty without a detection."""
    if rec.get("faces"):
        return [dict(f) for f in rec["faces"]]
    if rec.get("box") is None or rec.get("status") not in ("ok", "multiple_faces"):
        return []
    return [{"box": rec["box"], "score": rec["score"], "landmarks5": rec["landmarks5"]}]


@dataclass
class ExtractionReport:
    """What :func:`extract_landmarks` did. ``counts`` covers every record in the output file."""

    out: Path
    total: int
    computed: int
    reused: int
    counts: dict[str, int]
    seconds: float
    #: this run's records (reused or computed), in source order
    records: list[dict] = field(default_factory=list)

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


def _as_written(rec: dict) -> dict:
    """A record without the reader's ``invalid`` mark (that mark is made again on every read)."""
    if rec.get("status") != "invalid":
        return rec
    out = {k: v for k, v in rec.items() if k not in ("invalid", "recorded_status")}
    out["status"] = rec.get("recorded_status") or "ok"
    return out


def write_landmarks_file(
    out: str | os.PathLike,
    records: Iterable[dict],
    detector_info: Mapping[str, Any] | None = None,
    stopped: str | None = None,
) -> Path:
    """Write a consolidated landmarks file atomically: header line, then records sorted by path.

    ``stopped``: why the run ended early; the header then says ``"complete": false`` and readers warn.
    """
    recs = sorted((_as_written(r) for r in records), key=lambda r: (r.get("root") or "", r["path"], r["hash"]))
    header: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "detector": dict(detector_info or {}),
        "template": "arcface-5pt scaled to the image (no-face fallback), see ferlib.landmarks.align",
        "counts": count_statuses(recs),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if stopped is not None:
        header.update(complete=False, stopped=stopped)
    with atomic_path(out, suffix=".jsonl") as tmp:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a landmarks file is meant to be shared
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(header, separators=(",", ":")) + "\n")
            for r in recs:
                fh.write(json.dumps(r, separators=(",", ":")) + "\n")
    return Path(out)


def _run_detector(detector: Detector, items: list[ImageItem], images: list[np.ndarray]) -> list[list[Face]]:
    if getattr(detector, "needs_samples", False):
        return detector.detect_samples([it.sample for it in items])  # type: ignore[attr-defined]
    return detector.detect(images)


def _detect_batch(detector: Detector, batch: list[ImageItem], backend: str, fallback: str) -> list[dict]:
    """Records for one batch. A corrupt image is recorded ``unreadable``; when the detector fails on
    the batch, each image is retried alone and the ones it still fails on are recorded ``detector_error``."""
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
    faces_for: dict[int, list[Face]] = {}
    failed: dict[int, str] = {}
    try:
        faces_for = dict(zip(ok, _run_detector(detector, [batch[i] for i in ok], [images[i] for i in ok])))
    except Exception:  # one bad image must not cost the batch: retry one by one
        for i in ok:
            try:
                faces_for[i] = _run_detector(detector, [batch[i]], [images[i]])[0]
            except Exception as exc:
                failed[i] = f"{type(exc).__name__}: {exc}"
    min_side = int(getattr(detector, "min_image_side", 0) or 0)
    records = []
    for i, item in enumerate(batch):
        if images[i] is None:
            records.append(_failed_record(item, backend, "unreadable", errors[i] or ""))
        elif i in failed:
            rec = _failed_record(item, backend, "detector_error", failed[i])
            rec["width"], rec["height"] = int(images[i].shape[1]), int(images[i].shape[0])
            records.append(rec)
        else:
            records.append(make_record(item, images[i].shape[:2], faces_for[i], backend, fallback, min_side))
    return records


#: Statuses that a rerun computes again instead of reusing (a detector failure may be transient).
RETRY_STATUSES = ("detector_error", "invalid")


def _reusable(previous: Mapping[str, dict], by_hash: Mapping[str, dict], item: ImageItem, backend: str) -> dict | None:
    """A finished record for ``item``: its own, or one made from identical content (same hash and space)."""
    done = previous.get(item.key)
    if done is None:
        other = by_hash.get(item.hash)
        if other is None or other.get("space", "file") != item.space:
            return None
        done = dict(other, path=item.path)
        done.pop("root", None)
        if item.root is not None:
            done["root"] = item.root
    if done.get("backend") != backend or done.get("status") in RETRY_STATUSES:
        return None
    return done


def _identity(rec: Mapping[str, Any]) -> tuple[str, str]:
    """Which file a record is about (its folder and path): a new record replaces only its own file's."""
    return rec.get("root") or "", rec["path"]


def extract_landmarks(
    source: str | os.PathLike | Sequence[Mapping[str, Any]] | Iterable[ImageItem],
    out: str | os.PathLike,
    detector: Detector | str = "mtcnn",
    batch_size: int = 16,
    fallback: str = "template",
    progress: bool = True,
    total: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    repair: bool = False,
    notice: Callable[[str], None] = notice_stderr,
) -> ExtractionReport:
    """Detect 5 points for every image of ``source`` and write them to the landmarks file ``out``.

    ``source`` is an image file, a folder (searched recursively), a ferlib dataset (sequence of
    samples) or an iterable of :class:`ImageItem`. Images already in ``out`` or its journal with
    the same content hash and backend are reused, never recomputed. ``fallback`` is
    ``"template"`` (no face → canonical template points, flagged) or ``"none"`` (no points).
    Ctrl-C stops after writing what is finished and re-raises ``KeyboardInterrupt`` (a rerun resumes
    from the journal); any other error saves what is finished in ``out``, marked incomplete, removes
    the journal and re-raises. ``out`` must be a ferlib landmarks file or absent
    (:class:`NotLandmarksFileError`); a damaged one is refused unless ``repair`` (readable records kept,
    the damaged file moved aside, see :func:`~ferlib.data.landmark_files.repair_landmarks_file`).
    """
    from tqdm.auto import tqdm

    if fallback not in ("template", "none"):
        raise ValueError(f"fallback must be 'template' or 'none', got {fallback!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    out = Path(out)
    if out.is_dir():
        raise NotLandmarksFileError(f"--out {out} is a folder; give a file path such as {out}/landmarks.jsonl", out)
    det = create_detector(detector) if isinstance(detector, str) else detector
    backend = det.name
    is_path = isinstance(source, (str, os.PathLike))
    if getattr(det, "needs_samples", False) and is_path:
        raise ValueError(
            f"the {backend!r} backend reads the landmarks a dataset ships, so it needs a dataset "
            f"(e.g. `ferlib landmarks synthfer --backend annotations`), not the image/folder {source}; "
            "use --backend mtcnn or retinaface for image files"
        )
    start = time.perf_counter()

    # Everything already finished: the previous complete file and the journal of a killed run.
    journal = journal_path(out)
    if repair and out.exists():
        fixed = repair_landmarks_file(out)
        if fixed["moved_to"]:
            notice(
                f"{out} was damaged: kept {fixed['kept']} readable record(s), dropped {fixed['dropped']} "
                f"line(s); the damaged file is now {fixed['moved_to']}"
            )
    finished = read_jsonl_records(out, tolerate_torn=False)[1] if out.exists() else []
    journal_records = read_jsonl_records(journal, tolerate_torn=True)[1] if journal.exists() else []
    previous = {key_of(r): r for r in finished + journal_records}
    by_hash = {r["hash"]: r for r in previous.values() if r.get("status") not in RETRY_STATUSES + ("unreadable",)}

    if is_path:
        if total is None:
            total = len(iter_image_files(source))  # type: ignore[arg-type]
        items: Iterable[ImageItem] = items_from_files(source)  # type: ignore[arg-type]
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

    jr = _Journal(journal, journal_records, notice)
    results: dict[str, dict] = {}
    computed = reused = 0
    bar = tqdm(total=total, desc=f"landmarks ({backend})", unit="img", disable=not progress, file=sys.stderr)

    def consolidated() -> list[dict]:
        # Records of other files are kept (a file may collect several folders/splits); a file whose
        # content changed keeps only its new record.
        now = {_identity(r) for r in results.values()}
        # a record of an older file version (no ``root``) is the same file when path and content agree
        same = {(r["path"], r["hash"]) for r in results.values()}
        kept = [
            r
            for k, r in previous.items()
            if _identity(r) not in now
            and k not in results
            and not (not r.get("root") and (r["path"], r["hash"]) in same)
        ]
        return kept + list(results.values())

    try:
        pending: list[ImageItem] = []

        def flush() -> None:
            nonlocal computed
            if not pending:
                return
            recs = _detect_batch(det, pending, backend, fallback)
            jr.append(recs)
            for r in recs:
                results[key_of(r)] = r
            computed += len(recs)
            bar.update(len(recs))
            if on_batch is not None:
                on_batch(computed)
            pending.clear()

        for item in items:
            done = _reusable(previous, by_hash, item, backend)
            if done is not None:
                results[item.key] = done
                reused += 1
                bar.update(1)
                continue
            pending.append(item)
            if len(pending) >= batch_size:
                flush()
        flush()
    except KeyboardInterrupt:
        # Ctrl-C: what is in the journal is finished work; a rerun resumes from it.
        jr.close(remove=False)
        bar.close()
        raise
    except BaseException as exc:
        # A crash: save what is finished (marked incomplete) so that neither work nor litter is left.
        bar.close()
        saved = False
        try:
            write_landmarks_file(out, consolidated(), det.describe(), stopped=f"{type(exc).__name__}: {exc}")
            saved = True
            notice(f"the run stopped early; {len(results)} finished record(s) are saved in {out} (marked incomplete)")
        except Exception:  # keep the journal: a rerun resumes from it
            pass
        finally:
            jr.close(remove=saved)
        raise
    bar.close()
    written = False
    try:
        write_landmarks_file(out, consolidated(), det.describe())
        written = True
    finally:
        jr.close(remove=written)  # keep the journal if the final file could not be written
    counts = count_statuses(results.values())
    seconds = time.perf_counter() - start
    return ExtractionReport(out, len(results), computed, reused, counts, seconds, list(results.values()))


def write_landmarks_csv(records: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> tuple[Path, int]:
    """Export records as the CSV ``ferlib.data.landmark_files.load_landmarks_file`` reads
    (``build_dataset(landmarks_file=...)``).

    Columns ``path``, ``lm5`` (10 numbers ``x1 y1 … x5 y5``), ``status``, ``fallback``, ``hash`` (the
    file's content hash: the loader uses a row only for that content). That loader
    expects points in the pixels of the files on disk, so only records of folder/file extraction
    (``space == "file"``) with points are written; returns (path, number of records left out).
    """
    import csv

    rows, left_out = [], 0
    for r in sorted(records, key=lambda r: r["path"]):
        if r.get("landmarks5") is None or r.get("space", "file") != "file" or r.get("status") == "invalid":
            left_out += 1
            continue
        lm5 = " ".join(f"{v:.3f}" for xy in r["landmarks5"] for v in xy)
        rows.append(
            {
                "path": r["path"],
                "lm5": lm5,
                "status": r["status"],
                "fallback": int(bool(r.get("fallback"))),
                "hash": r["hash"],
            }
        )
    with atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["path", "lm5", "status", "fallback", "hash"])
            writer.writeheader()
            writer.writerows(rows)
    return Path(path), left_out
