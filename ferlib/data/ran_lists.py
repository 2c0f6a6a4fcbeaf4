"""Parsers for the RAN occlusion and pose test lists (Wang et al., "Region attention networks for
pose and occlusion robust facial expression recognition", IEEE TIP 2020).

The lists live in https://github.com/kaiwang960112/Challenge-condition-FER-dataset. Three formats:

* RAF-DB occlusion (``rafdb_occlusion_list.txt``): ``test_0003_aligned 3 4`` = image stem, label
  (RAF-DB native label minus 1), occlusion type 1-4. CRLF line endings, 735 rows, ``test_2464``
  appears twice.
* RAF-DB pose (``val_raf_db_list.txt`` 1,247 rows > 30°, ``val_raf_db_list_45.txt`` 558 rows
  > 45°): ``3/test_0025_aligned.jpg`` = label (native minus 1) as a directory prefix.
* AffectNet (``occlusion_affectnet_list.txt``, ``pose_{30,45}_affectnet_list.txt``):
  ``val/<label>/<hash>/`` with AffectNet's native label; the hash is the stem of the image file in
  the user's ``Manually_Annotated_Images/<dir>/<hash>.jpg``.
* FERPlus: the label is the name's prefix, ``0/fer0032226.jpg`` (pose lists) or
  ``1_fer0034656.png 8 0`` (occlusion list: name, number of classes, occlusion type), in FERPlus
  vote-column order.

Every parser keeps the list's rows in order, duplicates included (``RanList.duplicates`` names
them), and converts labels to ferlib's canonical order.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ferlib.data import native_labels
from ferlib.data.errors import LabelFileError


@dataclass(frozen=True)
class RanEntry:
    """One row of a RAN list."""

    key: str  # what identifies the image in the user's copy (stem: test_0003, a hash, fer0034656)
    label: int  # canonical
    native_label: int  # as written in the list
    occlusion: int | None  # occlusion type when the list gives one
    line_no: int  # 1-based
    raw: str


@dataclass
class RanList:
    path: Path
    dataset: str  # rafdb | affectnet | ferplus
    entries: list[RanEntry] = field(default_factory=list)
    crlf: bool = False

    @property
    def duplicates(self) -> dict[str, int]:
        """Keys listed more than once → number of rows."""
        counts = Counter(e.key for e in self.entries)
        return {k: n for k, n in counts.items() if n > 1}

    def unique(self) -> list[RanEntry]:
        """Entries with later duplicates of the same key removed (first occurrence kept)."""
        seen: set[str] = set()
        out = []
        for e in self.entries:
            if e.key not in seen:
                seen.add(e.key)
                out.append(e)
        return out

    def __len__(self) -> int:
        return len(self.entries)


def _read_lines(path: Path) -> tuple[list[tuple[int, str]], bool]:
    if not path.is_file():
        raise FileNotFoundError(
            f"RAN list {path} not found; expected a list file from "
            "https://github.com/kaiwang960112/Challenge-condition-FER-dataset; pass list_file=PATH "
            "or copy it to <root>/RAN/"
        )
    data = path.read_bytes()
    crlf = b"\r\n" in data
    text = data.decode("utf-8-sig")
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines())]
    return [(i, ln) for i, ln in lines if ln], crlf


def _bad(path: Path, line_no: int, line: str, expected: str) -> LabelFileError:
    """A row that cannot be parsed (a ``ValueError``): ``<file>:<line>: cannot parse ...; expected .... Fix: ...``."""
    return LabelFileError(
        f"{path}:{line_no}",
        f"cannot parse {line!r}; expected {expected}",
        "use the unmodified list from the RAN repository (Challenge-condition-FER-dataset)",
    )


_RAF_STEM = re.compile(r"^(?P<stem>(?:train|test)_\d+)(?:_aligned)?(?:\.jpg|\.png)?$", re.I)


def _raf_key(name: str) -> str | None:
    m = _RAF_STEM.match(name)
    return m.group("stem").lower() if m else None


def parse_rafdb_list(path: str | Path) -> RanList:
    """Parse a RAF-DB occlusion list (``name label occ``) or pose list (``label/name``)."""
    path = Path(path)
    lines, crlf = _read_lines(path)
    out = RanList(path=path, dataset="rafdb", crlf=crlf)
    for no, line in lines:
        parts = line.split()
        if len(parts) == 1:  # pose list: label/name
            prefix, _, name = parts[0].partition("/")
            key = _raf_key(name)
            if key is None or not prefix.isdigit():
                raise _bad(path, no, line, "'<label>/test_0025_aligned.jpg'")
            native, occ = int(prefix), None
        else:  # occlusion list: name label occlusion
            key = _raf_key(parts[0])
            if key is None or len(parts) < 2 or not parts[1].isdigit():
                raise _bad(path, no, line, "'test_0003_aligned <label> <occlusion type>'")
            native = int(parts[1])
            occ = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
        if native not in native_labels.RAFDB_RAN:
            raise _bad(path, no, line, "a label 0-6 (RAF-DB native label minus 1)")
        out.entries.append(RanEntry(key, native_labels.RAFDB_RAN[native], native, occ, no, line))
    return out


def parse_affectnet_list(path: str | Path) -> RanList:
    """Parse an AffectNet RAN list of ``val/<label>/<hash>/`` names."""
    path = Path(path)
    lines, crlf = _read_lines(path)
    out = RanList(path=path, dataset="affectnet", crlf=crlf)
    for no, line in lines:
        parts = [p for p in line.split()[0].replace("\\", "/").split("/") if p]
        if len(parts) < 2:
            raise _bad(path, no, line, "'val/<label>/<hash>/'")
        if parts[0].lower() in ("val", "validation", "train"):
            parts = parts[1:]
        if len(parts) < 2 or not parts[0].isdigit():
            raise _bad(path, no, line, "'val/<label>/<hash>/'")
        native = int(parts[0])
        if native not in native_labels.AFFECTNET:
            raise _bad(path, no, line, "an AffectNet expression id 0-7")
        key = Path(parts[-1]).stem.lower()
        out.entries.append(RanEntry(key, native_labels.AFFECTNET[native], native, None, no, line))
    return out


_FERPLUS_NAME = re.compile(r"^(?P<label>\d+)[/_](?P<name>fer\d+)(?:\.\w+)?$", re.I)


def parse_ferplus_list(path: str | Path) -> RanList:
    """Parse a FERPlus RAN list (``0/fer0032226.jpg`` or ``1_fer0034656.png 8 0``)."""
    path = Path(path)
    lines, crlf = _read_lines(path)
    out = RanList(path=path, dataset="ferplus", crlf=crlf)
    for no, line in lines:
        parts = line.split()
        m = _FERPLUS_NAME.match(parts[0])
        if not m:
            raise _bad(path, no, line, "'<label>/fer0032226.jpg' or '<label>_fer0034656.png ...'")
        native = int(m.group("label"))
        if native not in native_labels.FERPLUS_INDEX:
            raise _bad(path, no, line, "a label prefix 0-7 (FERPlus vote-column order)")
        occ = int(parts[-1]) if len(parts) >= 3 and parts[-1].isdigit() else None
        key = m.group("name").lower()
        out.entries.append(RanEntry(key, native_labels.FERPLUS_INDEX[native], native, occ, no, line))
    return out


PARSERS = {"rafdb": parse_rafdb_list, "affectnet": parse_affectnet_list, "ferplus": parse_ferplus_list}


def parse_ran_list(path: str | Path, dataset: str) -> RanList:
    """Parse a RAN list for ``dataset`` in {rafdb, affectnet, ferplus}."""
    try:
        parser = PARSERS[dataset]
    except KeyError:
        raise ValueError(f"RAN lists exist for {sorted(PARSERS)}, not {dataset!r}") from None
    return parser(path)


__all__ = ["RanEntry", "RanList", "parse_rafdb_list", "parse_affectnet_list", "parse_ferplus_list", "parse_ran_list"]
