"""The RAN robustness lists (Wang et al., "Region Attention Networks", 2020): Occlusion-/Pose-RAF-DB, -AffectNet and
-FERPlus are text lists over the base datasets; the list is parsed by :mod:`ferlib.data.ran_lists` and every
listed image is taken from the base dataset's own format (see ``data_manifests/ran_*.yaml``).
"""

from __future__ import annotations

from pathlib import Path

from ferlib.data.errors import LayoutError, LoadReport
from ferlib.data.formats._common import LoadContext, check_files
from ferlib.data.formats._registry import get_format, register_format
from ferlib.data.manifests import Manifest, load_manifest
from ferlib.data.ran_lists import parse_ran_list
from ferlib.data.records import Record


@register_format("ran")
def ran(
    ctx: LoadContext,
    root: Path,
    split: str,
    m: Manifest,
    *,
    list_file: str | Path | None = None,
    keep_duplicates: bool = False,
    **base_kw,
) -> list[Record]:
    if split not in m.list_files:
        first, *others = list(m.list_files)
        raise ValueError(
            f"{m.name} holds the RAN test lists of {m.base} ({', '.join(m.list_files)}), not a {split!r} split; "
            f"evaluate on one with `ferlib evaluate --dataset {m.base} --subset {first}` (or "
            f"{' or '.join('--subset ' + o for o in others)}); in Python: build_dataset({m.name!r}, {first!r}, root)"
        )
    filename = m.list_files[split]
    if list_file is None:
        candidates = [root / "RAN" / filename, root / filename]
        list_file = next((c for c in candidates if c.is_file()), candidates[0])
    list_file = Path(list_file)
    if not list_file.is_file():
        raise LayoutError(
            list_file,
            f"RAN list {filename} not found",
            f"download it from {m.request.split()[0]} and pass list_file=PATH or copy it to {root / 'RAN'}",
        )
    family = {"rafdb": "rafdb", "affectnet8": "affectnet", "ferplus": "ferplus"}[m.base]
    ctx.report.source = str(list_file)
    ran = parse_ran_list(list_file, family)
    ctx.report.rows = len(ran)
    base_m = load_manifest(m.base)
    base_ctx = LoadContext(LoadReport(base_m.name, "base"), "skip")
    # the base dataset's own format lists every image the list may name (its test split holds them all)
    if family == "ferplus":
        base = get_format("ferplus")(base_ctx, root, "all", base_m, all_rows=True)
    else:
        base = get_format(family)(base_ctx, root, "test", base_m, **base_kw)
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
            ctx.problem(
                "missing",
                f"{list_file}:{e.line_no}",
                f"{e.key!r} is not in your {base_m.title} copy under {root}",
                f"check that root points at the full {base_m.title} copy",
                exc=LayoutError,
            )
            continue
        meta = dict(rec.meta)
        meta.update({"occlusion": e.occlusion, "ran_list": str(list_file), "ran_line": e.line_no})
        records.append(
            Record(
                id=rec.id,
                label=e.label,
                path=rec.path,
                subject=rec.subject,
                landmarks5=rec.landmarks5,
                landmarks8=rec.landmarks8,
                landmarks=rec.landmarks,
                crop=rec.crop,
                pixels=rec.pixels,
                meta=meta,
            )
        )
    return check_files(ctx, records, str(list_file))
