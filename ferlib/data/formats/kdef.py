"""KDEF (Lundqvist et al., 1998): ``KDEF/<session><gender><id>/<...><expression><angle>.JPG``, five head angles;
subject-disjoint folds; see ``data_manifests/kdef.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ferlib.data import native_labels
from ferlib.data.errors import LayoutError
from ferlib.data.formats._common import LoadContext, folds_split, require
from ferlib.data.formats._registry import register_format
from ferlib.data.manifests import Manifest
from ferlib.data.records import Record

_KDEF_SESSION = re.compile(r"^[AB][FM]\d\d$", re.I)
_KDEF_FILE = re.compile(
    r"^(?P<session>[AB])(?P<gender>[FM])(?P<id>\d\d)(?P<expr>AF|AN|DI|HA|NE|SA|SU)(?P<angle>FL|HL|S|HR|FR)\.jpe?g$",
    re.I,
)


@register_format("kdef")
def kdef(
    ctx: LoadContext,
    root: Path,
    split: str,
    m: Manifest,
    *,
    fold: int | None = None,
    num_folds: int = 10,
    angles: Iterable[str] | None = None,
    sessions: Iterable[str] = ("A", "B"),
) -> list[Record]:
    base = root / "KDEF" if (root / "KDEF").is_dir() else root
    require(base, "KDEF folder", m, is_dir=True)
    session_dirs = sorted(p for p in base.iterdir() if p.is_dir() and _KDEF_SESSION.match(p.name))
    if not session_dirs:
        raise LayoutError(
            base,
            "no KDEF session folders (AF01 ... BM35) found",
            f"point root at the folder holding AF01/, AM01/, ... (or its parent KDEF/); see {m.path}",
        )
    wanted_angles = None if angles is None else {a.upper() for a in angles}
    wanted_sessions = {s.upper() for s in sessions}
    records = []
    for d in session_dirs:
        for f in sorted(d.iterdir()):
            if not f.is_file() or f.name.startswith("."):
                continue
            match = _KDEF_FILE.match(f.name)
            if not match:
                ctx.problem(
                    "bad_name",
                    f,
                    "file name does not follow <A|B><F|M><01-35><AF|AN|DI|HA|NE|SA|SU><FL|HL|S|HR|FR>.JPG",
                    "rename it to the KDEF convention or remove it",
                )
                continue
            g = {k: v.upper() for k, v in match.groupdict().items()}
            ctx.report.rows += 1
            if g["session"] not in wanted_sessions or (wanted_angles is not None and g["angle"] not in wanted_angles):
                continue
            records.append(
                Record(
                    id=f.stem.upper(),
                    label=native_labels.KDEF[g["expr"]],
                    path=str(f),
                    subject=f"{g['gender']}{g['id']}",
                    meta={
                        "yaw": native_labels.KDEF_ANGLES[g["angle"]],
                        "pitch": 0.0,
                        "roll": 0.0,
                        "angle": g["angle"],
                        "session": g["session"],
                    },
                )
            )
    return folds_split(ctx, records, split, fold, num_folds, "KDEF")
