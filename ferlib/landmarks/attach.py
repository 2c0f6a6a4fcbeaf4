"""Landmarks for the samples of any dataset, from a landmarks file: :func:`attach_landmarks`.

A record is used only for the image it was made from: the sample's file bytes (or, for a dataset
extraction of in-memory images, its pixels) must hash to the record's ``hash``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.data.landmark_files import STATUSES, LandmarkTable, bytes_hash, pixels_hash


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

    def _match(self, sample: Mapping[str, Any], index: int) -> tuple[str, dict | None]:
        """(status, record): the record made from this sample's content (its file's bytes or its pixels)."""
        path = sample_key_path(sample, index)
        status, rec = self.table.match(path, sample_content_hash(sample, path))
        if rec is None and Path(path).is_file():  # a dataset extraction may have hashed the returned pixels
            status2, rec = self.table.match(path, pixels_hash(sample["image"]))
            status = status2 if rec is not None else status
        if rec is not None:
            status = rec["status"]
        return status, rec

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        sample = dict(self.dataset[index])
        meta = dict(sample.get("meta") or {})
        status, rec = self._match(sample, index)
        if rec is None and self.strict:
            raise KeyError(
                f"no landmarks for sample {index} (path {sample_key_path(sample, index)!r}, {status}: no record "
                f"made from this image's content) in {self.table.source}; "
                f"rerun `ferlib landmarks` on this dataset with --out {self.table.source}"
            )
        if not self.overwrite:
            existing = sample.get("landmarks5")
            if existing is not None and torch.isfinite(torch.as_tensor(existing)).all():
                return sample
        img = sample["image"]
        hw = tuple(img.shape[-2:]) if img.ndim == 3 and img.shape[0] in (1, 3, 4) else tuple(img.shape[:2])
        sample["landmarks5"] = torch.from_numpy(self.table.landmarks5(rec, hw))  # type: ignore[arg-type]
        meta["landmarks_status"] = status
        meta["landmarks_fallback"] = bool(rec and rec.get("fallback"))
        sample["meta"] = meta
        return sample

    def landmark_coverage(self) -> dict[str, int]:
        """Counts per landmark status over the whole dataset (decodes every sample once).

        Keys: the record statuses, ``invalid`` (impossible points), ``mismatched`` (a record for the
        path, made from other content), ``missing``, ``fallback`` (template points), ``usable``
        (samples that get finite points) and ``total``.
        """
        counts = {s: 0 for s in (*STATUSES, "invalid", "mismatched", "missing")}
        counts.update(fallback=0, usable=0, total=0)
        for i in range(len(self.dataset)):
            status, rec = self._match(self.dataset[i], i)
            counts[status] = counts.get(status, 0) + 1
            counts["total"] += 1
            counts["fallback"] += bool(rec and rec.get("fallback"))
            counts["usable"] += bool(np.isfinite(self.table.landmarks5(rec)).all())
        return counts


def attach_landmarks(
    dataset: Sequence[Mapping[str, Any]],
    path: str | os.PathLike | LandmarkTable,
    strict: bool = False,
    overwrite: bool = True,
) -> LandmarkedDataset:
    """Wrap ``dataset`` so each sample's ``landmarks5`` comes from the landmarks file ``path``.

    A record is used only for the image it was made from (same file bytes, or same pixels for a
    dataset extraction); points are rescaled from the image size recorded at extraction to the
    sample's image size. ``meta['landmarks_status']`` says ``ok``/``multiple_faces``/``no_face``/
    ``too_small``/``unreadable``/``detector_error``, ``invalid`` (impossible points, not used),
    ``mismatched`` (the file holds a record for this path but of other content) or ``missing``;
    ``meta['landmarks_fallback']`` marks template points; ``landmark_coverage()`` counts them all.
    ``strict`` raises on a sample that has no record; ``overwrite=False`` keeps landmarks the
    dataset already has.
    """
    table = path if isinstance(path, LandmarkTable) else LandmarkTable.from_file(path)
    return LandmarkedDataset(dataset, table, strict=strict, overwrite=overwrite)


__all__ = ["LandmarkedDataset", "attach_landmarks", "sample_content_hash", "sample_key_path"]
