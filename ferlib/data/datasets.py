"""The entry point to every dataset: ``build_dataset(name, split, root)``.

``build_dataset`` reads the dataset's own label files in their official layout (``data_manifests/<name>.yaml``
describes it) with the format registered for the manifest's ``loader`` (one module per dataset family in
:mod:`ferlib.data.formats`, e.g. :mod:`ferlib.data.formats.rafdb`), converts native labels to ferlib's
canonical order (:mod:`ferlib.data.native_labels`) and returns a :class:`~ferlib.data.dataset.FERDataset`
whose items follow the one sample schema (:mod:`ferlib.data.schema`).

Bad input is never skipped silently. Label-file rows that repeat with the same label are loaded
once and counted in ``dataset.report``; a missing image file, an unreadable image, a bad row or a
row that contradicts an earlier one raises an error naming the file, the expectation and the fix
(``on_corrupt="error"``, the default), or is skipped and counted (``on_corrupt="skip"``).

Where the rest lives: errors and the load report :mod:`ferlib.data.errors`; :class:`Record`
:mod:`ferlib.data.records`; landmark files :mod:`ferlib.data.landmark_files`; 68→5/8 points and the
template :mod:`ferlib.data.face_geometry`. The names are re-exported here for existing imports.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ferlib.data.dataset import FERDataset
from ferlib.data.errors import (
    BENIGN_KINDS,
    CorruptImageError,
    DatasetError,
    EmptyDatasetError,
    LabelFileError,
    LayoutError,
    LoadReport,
    Problem,
)
from ferlib.data.face_geometry import landmarks68_to_5 as landmarks5_from_68
from ferlib.data.face_geometry import landmarks68_to_8 as landmarks8_from_68
from ferlib.data.face_geometry import order_landmarks5_by_x
from ferlib.data.formats import get_format, list_formats
from ferlib.data.formats._common import IMAGE_EXTENSIONS, LoadContext
from ferlib.data.formats.synthfer import synthfer_lazy
from ferlib.data.landmark_files import load_landmarks_file
from ferlib.data.manifests import load_manifest
from ferlib.data.records import Record


def _filter_classes(ctx: LoadContext, records: list[Record], num_classes: int) -> list[Record]:
    if num_classes not in (7, 8):
        raise ValueError(f"num_classes must be 7 or 8, got {num_classes}")
    keep = [r for r in records if r.label < num_classes]
    dropped = len(records) - len(keep)
    if dropped:
        ctx.report.dropped["contempt (7-class run)"] += dropped
    return keep


#: Other spellings of manifest names (compared lower-case, ``_`` read as ``-``).
ALIASES = {
    "raf-db": "rafdb",
    "affectnet": "affectnet7",
    "affectnet-7": "affectnet7",
    "affectnet-8": "affectnet8",
    "sfew": "sfew2",
    "sfew-2": "sfew2",
    "sfew2.0": "sfew2",
    "caer-s": "caers",
    "ck+": "ckplus",
    "ck-plus": "ckplus",
    "fed-ro": "fedro",
    "fer-2013": "fer2013",
    "fer+": "ferplus",
    "fer-plus": "ferplus",
    "materialised": "synthfer",
    "occluded": "synthfer",
}


def resolve_name(name: str) -> str:
    """The canonical (manifest) name of a dataset name or alias: ``CAER-S``/``caer_s`` → ``caers``,
    ``CK+`` → ``ckplus``, ``FER-2013`` → ``fer2013``, ``RAF_DB`` → ``rafdb``; unknown names come back
    lower-cased (``load_manifest`` then names the known ones). The one place aliases are resolved."""
    key = name.strip().lower()
    return ALIASES.get(key, ALIASES.get(key.replace("_", "-"), key))


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
        return synthfer_lazy(split, image_size, num_classes, n, seed, **kw)
    if root is None:
        raise ValueError(
            f"{manifest.title} needs the folder of your local copy (--root PATH; root=PATH in Python): "
            "ferlib never downloads it. "
            f"Get it at {manifest.request}; the expected layout is in {manifest.path}"
        )
    root = Path(root).expanduser()
    if not root.is_dir():
        raise LayoutError(
            root,
            f"{manifest.title} root folder does not exist",
            f"pass the folder holding {', '.join(manifest.layout)}; see {manifest.path}",
        )
    report = LoadReport(manifest.name, split)
    ctx = LoadContext(report, on_corrupt)
    builder = get_format(manifest.loader)
    try:
        records = builder(ctx, root, split, manifest, **kw)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise TypeError(
                f"{manifest.name}: {exc}; see build_dataset's docstring for the keywords each loader takes"
            ) from exc
        raise
    records = [r for r in records if r.label >= 0]
    records = _filter_classes(ctx, records, num_classes)
    if not records:
        skipped = len(report.skipped)
        raise EmptyDatasetError(
            report.source or root,
            f"{manifest.title} split {split!r} has no images ({report.rows} label rows read"
            + (f", {skipped} skipped as bad" if skipped else "")
            + (f", {sum(report.dropped.values())} dropped on purpose" if report.dropped else "")
            + ")",
            f"use the complete official label files (layout in {manifest.path}); "
            f"`ferlib data verify {manifest.name} --root {root}` lists what is wrong",
        )
    table = load_landmarks_file(landmarks_file) if landmarks_file is not None else None
    for kind in ("duplicate", "conflict", "missing", "bad_row", "corrupt", "bad_name", "layout"):
        n = report.count(kind)
        if n and kind != "duplicate":
            warnings.warn(f"{manifest.name}/{split}: skipped {n} item(s) ({kind}); see dataset.report", stacklevel=2)
    return FERDataset(
        manifest.name,
        split,
        root,
        records,
        num_classes=num_classes,
        image_size=image_size,
        on_corrupt=on_corrupt,
        report=report,
        manifest=manifest,
        landmarks_table=table,
        landmarks_file=landmarks_file,
    )


__all__ = [
    "build_dataset",
    "FERDataset",
    "Record",
    "LoadReport",
    "Problem",
    "DatasetError",
    "EmptyDatasetError",
    "LayoutError",
    "LabelFileError",
    "CorruptImageError",
    "load_landmarks_file",
    "landmarks5_from_68",
    "landmarks8_from_68",
    "order_landmarks5_by_x",
    "resolve_name",
    "BENIGN_KINDS",
    "IMAGE_EXTENSIONS",
    "list_formats",
]
