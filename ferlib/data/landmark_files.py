"""Reading landmarks files: the one reader for every format ferlib accepts.

* the JSON-lines file ``ferlib landmarks`` writes (:mod:`ferlib.landmarks.extract` writes it; the format is
  described there and in ``docs/landmarks.md``): a header line ``{"format": "ferlib-landmarks", ...}``
  and one record per image, keyed by the folder it was found in (``root``), its path there **and** its content
  hash, so two different files never share a record;
* a CSV with ``id``/``path`` and ``lm5`` columns, or an NPZ with ``ids`` and ``landmarks5`` (SynthFER's
  manifest columns; what ``build_dataset(..., landmarks_file=PATH)`` also accepts).

:func:`load_landmarks_file` reads any of them into a mapping key → entry. It lives on the data floor so
that loaders read landmarks without importing :mod:`ferlib.landmarks` (which sits above data).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.data.errors import LabelFileError, LayoutError
from ferlib.data.images import to_rgb_array
from ferlib.data.records import parse_floats

FORMAT_NAME = "ferlib-landmarks"
#: 2: records carry ``root``; statuses ``too_small`` and ``detector_error``. Version-1 files are read as before.
FORMAT_VERSION = 2
STATUSES = ("ok", "multiple_faces", "no_face", "too_small", "unreadable", "detector_error")
#: How far outside the image a point may lie (fraction of the image's width/height) before it is impossible:
#: a face cut by the border can put a mouth corner a little outside, never a whole image away.
OUTSIDE_MARGIN = 0.5
HASH_CHARS = 16


class LandmarksFileError(ValueError):
    """A landmarks file that cannot be used as it is: names the file (and line) and the fix."""

    def __init__(self, message: str, file: str | os.PathLike, line: int | None = None):
        self.file, self.line = str(file), line
        super().__init__(message)


class NotLandmarksFileError(LandmarksFileError):
    """The file is not a ferlib landmarks file at all (never damaged work of ferlib's: not to be touched)."""


def bytes_hash(data: bytes) -> str:
    """Content hash of a file's bytes (SHA-1, first 16 hex digits)."""
    return hashlib.sha1(data).hexdigest()[:HASH_CHARS]


def pixels_hash(image: Any) -> str:
    """Content hash of decoded pixels (shape + uint8 bytes) for images that have no file."""
    arr = to_rgb_array(image)
    h = hashlib.sha1(repr(arr.shape).encode())
    h.update(arr.tobytes())
    return h.hexdigest()[:HASH_CHARS]


def record_key(path: str, content_hash: str, root: str | None = None) -> str:
    """``"[<root>/]<path>#<hash>"``: the key of a :class:`LandmarkTable` (the hash never holds '#').

    ``root`` is the folder a folder extraction was given (absolute): ``train/`` and ``test/`` of a
    folder-per-class set hold the same relative names, and their records must stay apart.
    """
    return f"{_norm(root).rstrip('/')}/{path}#{content_hash}" if root else f"{path}#{content_hash}"


def key_of(rec: Mapping[str, Any]) -> str:
    """The :func:`record_key` of a record."""
    return record_key(rec["path"], rec["hash"], rec.get("root"))


def journal_path(out: str | os.PathLike) -> Path:
    """Where an unfinished run of ``ferlib landmarks --out OUT`` appends its records."""
    return Path(str(out) + ".partial")


def _validate_record(rec: Any) -> str | None:
    """Why ``rec`` is not a valid record, or None."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    for name in ("path", "hash", "status", "width", "height"):
        if name not in rec:
            return f"missing field {name!r}"
    if rec["status"] not in STATUSES:
        return f"status {rec['status']!r} not one of {STATUSES}"
    lm = rec.get("landmarks5")
    if lm is not None:
        try:
            arr = np.asarray(lm, dtype=np.float64)
        except (TypeError, ValueError):
            return "landmarks5 is not 5×2 numbers"
        if arr.shape != (5, 2):
            return "landmarks5 is not 5×2"
    return None


def impossible_points(points: Any, width: float, height: float) -> str | None:
    """Why 5×2 ``points`` cannot belong to a ``width``×``height`` image (NaN, inf, far outside), or None."""
    arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(arr).all():
        return "landmarks5 holds NaN or inf"
    if not (width and height and width > 0 and height > 0):
        return f"points given for an image of size {width}×{height}"
    mx, my = OUTSIDE_MARGIN * width, OUTSIDE_MARGIN * height
    if (
        (arr[:, 0] < -mx).any()
        or (arr[:, 0] > width + mx).any()
        or (arr[:, 1] < -my).any()
        or (arr[:, 1] > height + my).any()
    ):
        worst = arr[np.argmax(np.abs(arr - [width / 2, height / 2]).max(axis=1))]
        return (
            f"point ({worst[0]:.1f}, {worst[1]:.1f}) lies far outside the {int(width)}×{int(height)} image "
            f"(more than {OUTSIDE_MARGIN:.0%} of its size)"
        )
    return None


def _mark_impossible(rec: dict, path: Path, line: int) -> str | None:
    """Mark a record whose points cannot be right as ``status: invalid`` (kept, never used); the reason."""
    if rec.get("landmarks5") is None:
        return None
    why = impossible_points(rec["landmarks5"], rec.get("width") or 0, rec.get("height") or 0)
    if why is not None:
        rec["invalid"] = f"{path}:{line}: {why}"
        rec["recorded_status"] = rec["status"]
        rec["status"] = "invalid"
    return why


def _parse_line(raw: bytes) -> tuple[Any, str | None]:
    """(object, problem): the problem is None for a header or a valid record."""
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError) as exc:
        return None, f"not valid JSON ({exc.__class__.__name__})"
    if isinstance(obj, dict) and obj.get("format") == FORMAT_NAME:
        return obj, None
    return obj, _validate_record(obj)


def read_jsonl_records(path: Path, tolerate_torn: bool) -> tuple[dict | None, list[dict], int]:
    """(header, records, number of ignored lines) of a landmarks file, or of its journal (``tolerate_torn``).

    A finished file starts with the ``ferlib-landmarks`` header; a file that does not is not a ferlib
    landmarks file and raises :class:`NotLandmarksFileError` (it may be a user's notes: never touched).
    A bad line in a finished file raises :class:`LandmarksFileError` naming the file and line; a journal
    ignores bad lines (SIGKILL can tear the last one). Records whose points are impossible (NaN, inf,
    far outside the image, see :func:`impossible_points`) are kept with ``status: invalid`` and
    ``invalid: "<file>:<line>: <why>"``, so that nothing uses them and they are counted.
    """
    path = Path(path)
    header: dict | None = None
    records: list[dict] = []
    ignored = 0
    with open(path, "rb") as fh:
        data = fh.read()
    lines = [(i, raw) for i, raw in enumerate(data.split(b"\n"), start=1) if raw.strip()]
    if not tolerate_torn:
        first = _parse_line(lines[0][1])[0] if lines else None
        if not (isinstance(first, dict) and first.get("format") == FORMAT_NAME):
            what = "is empty" if not lines else "does not start with the ferlib-landmarks header line"
            raise NotLandmarksFileError(
                f"{path} is not a ferlib landmarks file (it {what}); ferlib will not read or replace it: "
                "choose another --out (or move that file away)",
                path,
            )
    bad: list[tuple[int, str]] = []
    for i, raw in lines:
        obj, problem = _parse_line(raw)
        if problem is not None:
            bad.append((i, problem))
            ignored += 1
            continue
        if obj.get("format") == FORMAT_NAME:
            if obj.get("version", 1) > FORMAT_VERSION:
                raise LandmarksFileError(
                    f"{path} was written by a newer ferlib (format version {obj.get('version')}); upgrade ferlib",
                    path,
                    i,
                )
            header = obj
        else:
            _mark_impossible(obj, path, i)
            records.append(obj)
    if bad and not tolerate_torn:
        i, problem = bad[0]
        raise LandmarksFileError(
            f"landmarks file {path} line {i} is not a valid record ({problem}; {len(bad)} bad line(s) in all, "
            f"{len(records)} readable record(s)); the file is damaged: rerun `ferlib landmarks` with the same "
            f"source and `--out {path} --repair` to keep the readable records (the damaged file is moved to "
            f"{damaged_path(path)}) and recompute the rest",
            path,
            i,
        )
    if tolerate_torn and bad and not records and len(bad) > 1:
        raise NotLandmarksFileError(
            f"{path} is not the journal of a ferlib landmarks run (none of its {len(bad)} lines is a record); "
            "ferlib will not read or replace it: move it away or choose another --out",
            path,
        )
    return header, records, ignored


def damaged_path(path: str | os.PathLike) -> Path:
    """Where ``--repair`` moves a damaged landmarks file (``<path>.damaged``, numbered if taken)."""
    base = Path(str(path) + ".damaged")
    n = 1
    candidate = base
    while candidate.exists():
        n += 1
        candidate = Path(f"{base}.{n}")
    return candidate


def repair_landmarks_file(path: str | os.PathLike) -> dict[str, Any]:
    """Keep the readable records of a damaged landmarks file: move it aside, write the good lines back.

    Refuses (:class:`NotLandmarksFileError`) a file that never was a ferlib landmarks file. Returns
    ``{"kept": n, "dropped": m, "moved_to": path}``; an intact file is left as it is (``moved_to`` None).
    """
    path = Path(path)
    try:
        read_jsonl_records(path, tolerate_torn=False)
        return {"kept": None, "dropped": 0, "moved_to": None}
    except NotLandmarksFileError:
        raise
    except LandmarksFileError:
        pass
    header, records, dropped = read_jsonl_records(path, tolerate_torn=True)
    aside = damaged_path(path)
    os.replace(path, aside)
    for r in records:  # the marks are made again on every read
        if r.get("status") == "invalid":
            r["status"] = r.pop("recorded_status")
            r.pop("invalid", None)
    head = dict(header or {"format": FORMAT_NAME, "version": FORMAT_VERSION})
    head["repaired"] = {"from": aside.name, "dropped_lines": dropped}
    tmp = Path(str(path) + ".repair.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(head, separators=(",", ":")) + "\n")
        for r in records:
            fh.write(json.dumps(r, separators=(",", ":")) + "\n")
    os.replace(tmp, path)
    return {"kept": len(records), "dropped": dropped, "moved_to": str(aside)}


@dataclass(eq=False)
class LandmarkTable(Mapping):
    """Landmark records with lookup by image path and content hash.

    A record applies only to the image it was computed from: :meth:`match` finds the records whose
    path matches (exactly, or one path a suffix of the other, so a table made from
    ``RAF-DB/basic/Image/aligned`` serves a dataset whose paths are absolute) **and** whose content hash
    is the image's; else any record with that content hash (a renamed or moved file). A path that
    matches only records of other content is ``mismatched``; nothing at all is ``missing``.
    """

    records: dict[str, dict] = field(default_factory=dict)
    header: dict | None = None
    source: Path | None = None
    ignored_lines: int = 0

    def __post_init__(self) -> None:
        self._reindex()

    def _reindex(self) -> None:
        self._by_path: dict[str, list[dict]] = {}
        self._by_name: dict[str, list[dict]] = {}
        self._by_hash: dict[str, list[dict]] = {}
        for rec in self.records.values():
            p = _norm(rec["path"])
            self._by_path.setdefault(p, []).append(rec)
            self._by_name.setdefault(p.rsplit("/", 1)[-1], []).append(rec)
            self._by_hash.setdefault(rec["hash"], []).append(rec)

    @property
    def invalid(self) -> list[str]:
        """``"<file>:<line>: <why>"`` for every record with impossible points (never used)."""
        return [r["invalid"] for r in self.records.values() if r.get("status") == "invalid"]

    @property
    def complete(self) -> bool:
        """False when the file was saved by a run that stopped early (its header says so)."""
        return bool((self.header or {}).get("complete", True))

    @classmethod
    def from_file(cls, path: str | os.PathLike, include_partial: bool = True) -> LandmarkTable:
        path = Path(path)
        journal = journal_path(path)
        if not path.is_file() and not (include_partial and journal.is_file()):
            raise FileNotFoundError(
                f"landmarks file not found at {path}; create it with "
                f"`ferlib landmarks <images|dir|dataset> --out {path}`"
            )
        header, records, ignored = (None, [], 0)
        if path.is_file():
            header, records, ignored = read_jsonl_records(path, tolerate_torn=False)
        if include_partial and journal.is_file():
            _, more, torn = read_jsonl_records(journal, tolerate_torn=True)
            records += more
            ignored += torn
        table = cls({key_of(r): r for r in records}, header, path, ignored)
        bad = table.invalid
        if bad:
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            warnings.warn(
                f"landmarks file {path}: {len(bad)} record(s) with impossible points are marked invalid and "
                f"not used ({'; '.join(bad[:3])}{more}); rerun `ferlib landmarks` on those images",
                stacklevel=2,
            )
        if not table.complete:
            warnings.warn(
                f"landmarks file {path} is incomplete: its run stopped early "
                f"({(header or {}).get('stopped', 'unknown reason')}); rerun the same `ferlib landmarks` "
                f"command with --out {path} to finish it",
                stacklevel=2,
            )
        return table

    # A read-only mapping ``"[<root>/]<path>#<hash>" → record``, like the dict the file holds.
    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, key: object) -> bool:
        return key in self.records

    def __getitem__(self, key: str) -> dict:
        return self.records[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.records)

    def _path_hits(self, image_path: str) -> list[dict]:
        p = _norm(str(image_path))
        hits = list(self._by_path.get(p, []))
        seen = {id(r) for r in hits}
        name = p.rsplit("/", 1)[-1]
        for r in self._by_name.get(name, []):
            rp = _norm(r["path"])
            full = _norm(record_key(r["path"], "", r.get("root")))[:-1]
            if id(r) in seen:
                continue
            if p == full or p.endswith("/" + rp) or rp.endswith("/" + p) or full.endswith("/" + p):
                hits.append(r)
        # the record made from this very file (its folder + relative path) first
        hits.sort(key=lambda r: _norm(record_key(r["path"], "", r.get("root")))[:-1] != p)
        return hits

    def match(self, image_path: str | os.PathLike | None, content_hash: str | None) -> tuple[str, dict | None]:
        """``(status, record)`` for an image: status ``found``, ``mismatched``, ``missing`` or, with
        ``content_hash`` None, ``unverified`` (a path-only match, used only by :meth:`lookup`)."""
        hits = self._path_hits(str(image_path)) if image_path not in (None, "") else []
        if content_hash is None:
            hashes = {r["hash"] for r in hits}
            return ("unverified", hits[-1]) if len(hashes) == 1 else ("missing", None)
        same = [r for r in hits if r["hash"] == content_hash] or self._by_hash.get(content_hash, [])
        if same:
            return "found", same[0]
        return ("mismatched" if hits else "missing"), None

    def lookup(self, image_path: str | os.PathLike | None, content_hash: str | None = None) -> dict | None:
        """The record for an image, or None (see :meth:`match`). Without ``content_hash`` a path matches
        only when every record with that path holds the same content (it cannot be checked)."""
        return self.match(image_path, content_hash)[1]

    def landmarks5(self, record: Mapping[str, Any] | None, image_size: tuple[int, int] | None = None) -> np.ndarray:
        """A record's 5 points as float32 5×2, rescaled to ``image_size`` (height, width) if given.

        NaN when the record is missing, holds no points or is invalid (the schema's "unknown").
        """
        if record is None or record.get("landmarks5") is None or record.get("status") == "invalid":
            return np.full((5, 2), np.nan, dtype=np.float32)
        pts = np.asarray(record["landmarks5"], dtype=np.float32).reshape(5, 2).copy()
        if image_size is not None:
            h, w = image_size
            pts *= np.array([w / record["width"], h / record["height"]], dtype=np.float32)
        return pts

    def counts(self) -> dict[str, int]:
        return count_statuses(self.records.values())


def _norm(p: str) -> str:
    """Forward slashes, no leading "./" (so "./a/b.jpg" and "a/b.jpg" match)."""
    p = str(p).replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p


def count_statuses(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = {s: 0 for s in STATUSES}
    counts["invalid"] = 0
    counts["total"] = 0
    counts["fallback"] = 0
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
        counts["total"] += 1
        counts["fallback"] += bool(r.get("fallback"))
    return counts


def load_landmarks_file(path: str | os.PathLike, include_partial: bool = True) -> Mapping[str, dict]:
    """Read a landmarks table for ``build_dataset(..., landmarks_file=PATH)``.

    Formats:

    * the JSON-lines file ``ferlib landmarks`` writes (:mod:`ferlib.landmarks.extract`): returned as a
      :class:`LandmarkTable`, a mapping ``"<path>#<hash>" → record`` with :meth:`LandmarkTable.lookup`;
      with ``include_partial`` the journal of an interrupted run (``<path>.partial``) is read too,
      ignoring a torn last line, and later records win over earlier ones with the same key. The
      data layer matches records by image path (or id for images without a file) and rescales their
      points, given in the frame of the image the detector saw (``width``×``height``), to the sample;
    * ``.csv`` with a key column ``id`` or ``path`` and ``lm5`` (10 numbers ``x1 y1 ... x5 y5``
      separated by spaces), optional ``lm8`` (16 numbers) — the columns SynthFER's manifest uses;
    * ``.npz`` with ``ids`` (strings) and ``landmarks5`` (N×5×2), optional ``landmarks8`` (N×8×2).

    CSV/NPZ coordinates are pixels of the image file on disk (before any crop or resize); keys are
    matched against a sample's id, then its path, then a trailing part of
    its path (``Happy/0001.png``), then its file name. A CSV ``hash`` column (what
    ``ferlib landmarks --csv`` writes) ties a row to the file's content: another image under that name
    gets no points. NaN/inf are refused with file and line; points far outside the image are marked
    invalid by the loader (see :func:`impossible_points`). Returns a dict
    ``{key: {"landmarks5": 5×2, ["landmarks8": 8×2]}}`` for CSV/NPZ.
    """
    path = Path(path)
    if not path.is_file():
        if include_partial and journal_path(path).is_file():
            return LandmarkTable.from_file(path, include_partial=True)
        raise LayoutError(
            path,
            "landmarks file not found",
            f"create it with `ferlib landmarks <images|dir|dataset> --out {path}`, or pass a CSV/NPZ "
            "as documented in ferlib.data.landmark_files.load_landmarks_file",
        )
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip()
    if head.startswith(b"{"):
        return LandmarkTable.from_file(path, include_partial=include_partial)
    table: dict[str, dict[str, np.ndarray]] = {}
    if path.suffix.lower() == ".npz":
        data = np.load(path, allow_pickle=False)
        ids = [str(i) for i in data["ids"]]
        lm5 = np.asarray(data["landmarks5"], dtype=np.float32).reshape(len(ids), 5, 2)
        lm8 = np.asarray(data["landmarks8"], dtype=np.float32).reshape(len(ids), 8, 2) if "landmarks8" in data else None
        for i, key in enumerate(ids):
            if not np.isfinite(lm5[i]).all() or (lm8 is not None and not np.isfinite(lm8[i]).all()):
                raise LabelFileError(
                    f"{path} entry {i} ({key})", "landmarks hold NaN or inf", "fix the entry or regenerate the file"
                )
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
            raise LabelFileError(
                path,
                f"landmarks CSV needs columns id (or path) and lm5, found {fields}",
                "write it with `ferlib landmarks` or add the columns",
            )
        for no, row in enumerate(reader, start=2):
            where = f"{path}:{no}"
            try:
                entry = {"landmarks5": parse_floats(row["lm5"], 10, "lm5", where).reshape(5, 2)}
                if row.get("lm8"):
                    entry["landmarks8"] = parse_floats(row["lm8"], 16, "lm8", where).reshape(8, 2)
                if not all(np.isfinite(v).all() for v in entry.values()):
                    raise ValueError(f"{where}: landmarks hold NaN or inf")
            except ValueError as exc:
                raise LabelFileError(where, str(exc), "fix the row or regenerate the file") from exc
            if row.get("hash"):
                entry["hash"] = row["hash"].strip()
            table[row[key_col]] = entry
    return table


__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "LandmarkTable",
    "LandmarksFileError",
    "NotLandmarksFileError",
    "OUTSIDE_MARGIN",
    "STATUSES",
    "bytes_hash",
    "count_statuses",
    "damaged_path",
    "impossible_points",
    "journal_path",
    "key_of",
    "load_landmarks_file",
    "pixels_hash",
    "read_jsonl_records",
    "record_key",
    "repair_landmarks_file",
]
