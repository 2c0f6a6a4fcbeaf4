"""The dataset class every loader returns: a list of :class:`~ferlib.data.records.Record` s decoded on access.

Items follow the one sample schema (:mod:`ferlib.data.schema`)::

    {"image": uint8 3×S×S, "label": int, "landmarks5": float32 5×2 (NaN if unknown),
     ["landmarks8": 8×2], ["landmarks": K×2], "meta": {id, path, subject, yaw, pitch, roll, occlusion, ...}}

Images are resized to ``image_size``×``image_size`` (bilinear, antialiased); landmarks are scaled
with the pixel-centre convention ``x' = (x + 0.5)·S/W − 0.5`` so that a point on a pixel centre stays
on the corresponding pixel centre.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ferlib.data.errors import SKIP_HINT, CorruptImageError, LoadReport, Problem
from ferlib.data.images import check_image_size, decode_image, pil_to_tensor
from ferlib.data.labels import CANONICAL_CLASSES, class_names
from ferlib.data.landmark_files import STATUSES, bytes_hash, impossible_points, pixels_hash
from ferlib.data.manifests import Manifest
from ferlib.data.records import Record

#: Every ``landmarks_status`` a sample can carry (see :meth:`FERDataset.landmark_coverage`).
LANDMARK_STATUSES = (*STATUSES, "invalid", "mismatched", "missing")


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
        return decode_image(rec.pixels if rec.pixels is not None else rec.path)

    def _file_hash(self, path: str) -> str | None:
        """Content hash of an image file (cached while its size and mtime stay the same)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        cache = self.__dict__.setdefault("_hash_cache", {})
        hit = cache.get(path)
        if hit is None or hit[0] != stamp:
            with open(path, "rb") as fh:
                hit = (stamp, bytes_hash(fh.read()))
            cache[path] = hit
        return hit[1]

    def _csv_suffix_keys(self, path: str | None) -> list[str]:
        """Keys of a CSV/NPZ table that are a trailing part of ``path`` (``Happy/0001.png``), longest first."""
        if not path:
            return []
        index = self.__dict__.get("_suffix_index")
        if index is None:
            index = {}
            for key in self.landmarks_table:
                k = str(key).replace("\\", "/")
                index.setdefault(k.rsplit("/", 1)[-1], []).append(str(key))
            self.__dict__["_suffix_index"] = index
        p = str(path).replace("\\", "/")
        hits = [k for k in index.get(p.rsplit("/", 1)[-1], []) if p.endswith("/" + k.replace("\\", "/").lstrip("/"))]
        return sorted(hits, key=len, reverse=True)

    def _landmarks_for(
        self, rec: Record, file_size: tuple[int, int], image: Any = None
    ) -> tuple[np.ndarray | None, np.ndarray | None, tuple[int, int] | None, dict]:
        """(landmarks5, landmarks8, frame, extra meta). ``frame`` is the (width, height) the points
        refer to when that is not the file on disk (records of ``ferlib landmarks``).

        A landmarks-file entry applies only to the image it was made from (its content hash; the
        decoded sample ``image``'s pixels for in-memory records) and only when its points are possible
        for that image; else the sample gets NaN points and ``landmarks_status`` ``mismatched``,
        ``missing`` or ``invalid`` (counted by :meth:`landmark_coverage`)."""
        table = self.landmarks_table
        if table is None:
            return rec.landmarks5, rec.landmarks8, None, {}
        on_disk = bool(rec.path) and rec.pixels is None
        content = self._file_hash(rec.path) if on_disk else None
        if content is None and image is not None:
            content = pixels_hash(image)
        if isinstance(table, dict):
            for key in (rec.id, rec.path, *self._csv_suffix_keys(rec.path), os.path.basename(rec.path or "")):
                if key and key in table:
                    entry = table[key]
                    if entry.get("hash") and content is not None and entry["hash"] != content:
                        return None, None, None, {"landmarks_status": "mismatched"}
                    why = impossible_points(entry["landmarks5"], *file_size)
                    if why is not None:
                        return None, None, None, {"landmarks_status": "invalid", "landmarks_invalid": why}
                    return entry.get("landmarks5"), entry.get("landmarks8"), None, {"landmarks_status": "ok"}
            return None, None, None, {"landmarks_status": "missing"}
        status, found = table.match(rec.path or rec.id, content)
        if found is None and content is not None and image is not None and on_disk:
            # a dataset extraction of in-memory samples hashed the pixels the dataset returned
            status, found = table.match(rec.path or rec.id, pixels_hash(image))
        if found is None or found.get("landmarks5") is None or found.get("status") == "invalid":
            extra = {"landmarks_status": status if found is None else found.get("status")}
            return None, None, None, extra
        points = np.asarray(found["landmarks5"], dtype=np.float32).reshape(5, 2)
        extra = {"landmarks_status": found.get("status"), "landmarks_fallback": bool(found.get("fallback"))}
        return points, None, (int(found["width"]), int(found["height"])), extra

    def landmarks_of(self, index: int) -> tuple[Any, Any, dict]:
        """(landmarks5, landmarks8, extra meta) item ``index`` gets, in the file's pixel frame, by the
        loader's own rules (see :meth:`_landmarks_for`), without decoding an image file: files are
        hashed, in-memory images decoded. ``extra`` holds ``landmarks_status``/``landmarks_fallback``
        when a landmarks file is attached."""
        rec = self.records[index]
        if self.landmarks_table is None:
            return rec.landmarks5, rec.landmarks8, {}
        if rec.pixels is not None or not rec.path:
            sample = self.load_sample(index)
            lm8 = sample.get("landmarks8")
            return sample["landmarks5"].numpy(), None if lm8 is None else lm8.numpy(), sample["meta"]
        size = (0, 0)
        if isinstance(self.landmarks_table, dict):  # CSV/NPZ points are checked against the file's size
            try:
                from PIL import Image

                with Image.open(rec.path) as im:
                    size = im.size
            except Exception:  # an unreadable file: its points cannot be checked, nor used
                pass
        lm5, lm8, _, extra = self._landmarks_for(rec, size)
        return lm5, lm8, extra

    def landmark_coverage(self) -> dict[str, int]:
        """Counts of samples per landmark status, for a trainer to refuse a split that lacks landmarks.

        Keys: ``total``; ``usable`` (the sample gets finite 5 points); ``fallback`` (template points
        of a no-face record); and one count per status: ``ok``, ``multiple_faces``, ``no_face``,
        ``too_small``, ``unreadable``, ``detector_error`` (records of ``ferlib landmarks``),
        ``invalid`` (impossible points, not used), ``mismatched`` (the file has a record for this path,
        made from other content: not used), ``missing`` (no record, or no shipped points). Without a
        landmarks file the dataset's own points count as ``ok``. Image files are hashed, not decoded;
        in-memory images are decoded once.
        """
        counts = {k: 0 for k in ("total", "usable", "fallback", *LANDMARK_STATUSES)}
        for index in range(len(self.records)):
            pts, _, extra = self.landmarks_of(index)
            ok = pts is not None and bool(np.isfinite(np.asarray(pts, dtype=np.float32)).all())
            status = extra["landmarks_status"] if self.landmarks_table is not None else ("ok" if ok else "missing")
            counts[status] = counts.get(status, 0) + 1
            counts["total"] += 1
            counts["usable"] += ok
            counts["fallback"] += bool(extra.get("landmarks_fallback"))
        return counts

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
                "re-extract this file from the original archive, or skip and count it " + SKIP_HINT,
            ) from exc
        width, height = img.size
        too_small = check_image_size(width, height)
        if too_small:
            raise CorruptImageError(
                rec.path or rec.id,
                f"{too_small} ({self.name}/{self.split} item {rec.id!r})",
                "replace it with the full-size image from the original archive or remove its row, "
                "or skip and count it " + SKIP_HINT,
            )
        original_w, original_h = width, height
        x0, y0 = 0.0, 0.0
        if rec.crop is not None:
            x, y, x2, y2 = rec.crop  # xyxy
            box = (int(round(x)), int(round(y)), int(round(x2)), int(round(y2)))
            img = img.crop(box)  # outside the image PIL pads with black; landmarks shift exactly
            x0, y0 = float(box[0]), float(box[1])
            width, height = box[2] - box[0], box[3] - box[1]
        size = self.image_size
        if (width, height) != (size, size):
            img = img.resize((size, size), Image.BILINEAR)
        sx, sy = size / width, size / height
        image = pil_to_tensor(img)
        lm5, lm8, frame, lm_meta = self._landmarks_for(rec, (original_w, original_h), image)
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
        raise CorruptImageError(
            self.records[index].path or self.records[index].id,
            f"unreadable and no other readable {CANONICAL_CLASSES[label]} image to stand in",
            "repair the dataset copy",
        )

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
                warnings.warn(
                    f"skipped unreadable image {exc.file} (counted in dataset.report); "
                    "an image of the same class stands in for it",
                    stacklevel=2,
                )
            while True:
                j = self._substitute(index)
                try:
                    sample = self.load_sample(j)
                except CorruptImageError as exc2:
                    self._bad.add(j)
                    self.report.add(Problem("corrupt", exc2.file, exc2.expectation, exc2.fix))
                    warnings.warn(
                        f"skipped unreadable image {exc2.file}, met while looking for a stand-in for "
                        f"{self.records[index].path or self.records[index].id} (counted in dataset.report)",
                        stacklevel=2,
                    )
                    continue
                sample["meta"]["substituted_for"] = self.records[index].id
                return sample

    @property
    def skipped(self) -> int:
        """Items left out because of a problem (bad rows, missing and unreadable images, unsafe paths) so far:
        the load report's count, growing as ``on_corrupt='skip'`` meets unreadable images. Images found
        unreadable inside DataLoader worker processes are counted in those processes' copies only."""
        return len(self.report.skipped)

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
        return {
            "name": self.name,
            "split": self.split,
            "root": str(self.root),
            "image_size": self.image_size,
            "num_classes": self.num_classes,
            "n": len(self.records),
            "records": h.hexdigest(),
            "manifest": None if self.manifest is None else self.manifest.name,
            "landmarks_file": None
            if self.landmarks_file is None
            else f"{self.landmarks_file.resolve()}:{self.landmarks_file.stat().st_mtime_ns}",
        }


__all__ = ["FERDataset"]
