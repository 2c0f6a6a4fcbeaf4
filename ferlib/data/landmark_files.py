"""Reading landmarks files: the one reader for every format ferlib accepts.

* the JSON-lines file ``ferlib landmarks`` writes (:mod:`ferlib.landmarks.extract` writes it; the format is
  described there and in ``docs/landmarks.md``): a header line ``{"format": "ferlib-landmarks", ...}``
  and one record per image, keyed by path **and** content hash;
* a CSV with ``id``/``path`` and ``lm5`` columns, or an NPZ with ``ids`` and ``landmarks5`` (SynthFER's
  manifest columns; what ``build_dataset(..., landmarks_file=PATH)`` also accepts).

:func:`load_landmarks_file` reads any of them into a mapping key → entry. It lives on the data floor so
that loaders read landmarks without importing :mod:`ferlib.landmarks` (which sits above data).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.data.errors import LabelFileError, LayoutError
from ferlib.data.records import parse_floats

FORMAT_NAME = "ferlib-landmarks"
FORMAT_VERSION = 1
STATUSES = ("ok", "multiple_faces", "no_face", "unreadable")


def record_key(path: str, content_hash: str) -> str:
    """``"<path>#<hash>"``: the key of a :class:`LandmarkTable` (the hash never holds '#')."""
    return f"{path}#{content_hash}"


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
    if lm is not None and np.asarray(lm, dtype=np.float64).shape != (5, 2):
        return "landmarks5 is not 5×2"
    return None


def read_jsonl_records(path: Path, tolerate_torn: bool) -> tuple[dict | None, list[dict], int]:
    """(header, records, number of ignored lines). A bad line raises unless ``tolerate_torn``."""
    header: dict | None = None
    records: list[dict] = []
    ignored = 0
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    for i, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
            problem = None if (isinstance(obj, dict) and obj.get("format") == FORMAT_NAME) else _validate_record(obj)
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError) as exc:
            obj, problem = None, f"not valid JSON ({exc.__class__.__name__})"
        if problem is not None:
            if tolerate_torn:
                ignored += 1
                continue
            raise ValueError(
                f"landmarks file {path} line {i} is not a valid record ({problem}); the file is damaged: "
                f"delete it and rerun `ferlib landmarks` (finished work in {journal_path(path)} is kept if present)"
            )
        if isinstance(obj, dict) and obj.get("format") == FORMAT_NAME:
            if obj.get("version", 1) > FORMAT_VERSION:
                raise ValueError(
                    f"{path} was written by a newer ferlib (format version {obj.get('version')}); upgrade ferlib"
                )
            header = obj
        else:
            records.append(obj)
    return header, records, ignored


@dataclass(eq=False)
class LandmarkTable(Mapping):
    """Landmark records with lookup by image path and/or content hash.

    ``lookup`` tries, in order: the exact (path, hash) key; the path alone (also when one path
    is a suffix of the other, so a table made from ``RAF-DB/basic/Image/aligned`` serves a
    dataset whose paths are absolute); the hash alone (a renamed or moved file).
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
        table = cls({record_key(r["path"], r["hash"]): r for r in records}, header, path, ignored)
        return table

    # A read-only mapping ``"<path>#<hash>" → record``, like the dict the file holds.
    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, key: object) -> bool:
        return key in self.records

    def __getitem__(self, key: str) -> dict:
        return self.records[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.records)

    def lookup(self, image_path: str | os.PathLike | None, content_hash: str | None = None) -> dict | None:
        """The record for an image, or None (see the class docstring for the matching order)."""
        if image_path is not None and content_hash is not None:
            rec = self.records.get(record_key(str(image_path), content_hash))
            if rec is not None:
                return rec
        if image_path is not None:
            p = _norm(str(image_path))
            hits = self._by_path.get(p)
            if not hits:
                name = p.rsplit("/", 1)[-1]
                hits = [
                    r
                    for r in self._by_name.get(name, [])
                    if p.endswith("/" + _norm(r["path"])) or _norm(r["path"]).endswith("/" + p)
                ]
            if content_hash is not None and hits:
                same = [r for r in hits if r["hash"] == content_hash]
                hits = same or hits
            if hits:
                return hits[-1]
        if content_hash is not None:
            hits = self._by_hash.get(content_hash)
            if hits:
                return hits[-1]
        return None

    def landmarks5(self, record: Mapping[str, Any] | None, image_size: tuple[int, int] | None = None) -> np.ndarray:
        """A record's 5 points as float32 5×2, rescaled to ``image_size`` (height, width) if given.

        NaN when the record is missing or holds no points (the schema's "unknown").
        """
        if record is None or record.get("landmarks5") is None:
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
    matched against a sample's id, then its path, then its file name. Returns a dict
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
            except ValueError as exc:
                raise LabelFileError(where, str(exc), "fix the row or regenerate the file") from exc
            table[row[key_col]] = entry
    return table


__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "LandmarkTable",
    "STATUSES",
    "count_statuses",
    "journal_path",
    "load_landmarks_file",
    "read_jsonl_records",
    "record_key",
]
