"""A decoded-image cache: decode and resize every image once, then read a memory-mapped array.

The first pass over a dataset decodes each item (JPEG/PNG decode + resize, the expensive part of
an epoch on 2 CPU cores) into one uint8 N×C×H×W file; labels, landmarks and meta go beside it.
Later epochs index the memory map and never decode an image again.

The cache folder is ``<cache_dir>/<name>-<split>-<key>/`` where ``key`` hashes the dataset's
fingerprint (manifest, split, root, the list of files with sizes and mtimes, image size, class
count) plus :data:`CACHE_VERSION`; change any of those and a new cache is built. It is written into
a temporary folder (with a progress bar) and renamed into place only when complete, so an
interrupted build never leaves a half-written cache that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ferlib.fileio import atomic_write_json

CACHE_VERSION = 1
_INDEX = "index.json"
_IMAGES = "images.npy"
_ARRAYS = "arrays.npz"
_META = "meta.json"


def dataset_fingerprint(dataset: Any) -> dict[str, Any]:
    """What identifies a dataset's decoded content (``dataset.fingerprint()`` when it has one)."""
    fp = getattr(dataset, "fingerprint", None)
    if callable(fp):
        return {"type": type(dataset).__name__, **fp()}
    out: dict[str, Any] = {"type": type(dataset).__name__, "n": len(dataset)}
    config = getattr(dataset, "config", None)
    if config is not None:
        from ferlib.config import to_dict

        out["config"] = to_dict(config) if not isinstance(config, dict) else config
    for attr in ("name", "split", "seed", "image_size", "n"):
        if hasattr(dataset, attr):
            out[attr] = getattr(dataset, attr)
    # wrappers (subsets, index views): key on the wrapped dataset and the chosen indices
    for attr in ("base", "dataset"):
        inner = getattr(dataset, attr, None)
        if inner is not None and hasattr(inner, "__getitem__") and inner is not dataset:
            out["wrapped"] = dataset_fingerprint(inner)
            break
    for attr in ("indices", "_index"):
        idx = getattr(dataset, attr, None)
        if idx is not None:
            out["indices"] = hashlib.sha256(np.asarray(idx, dtype=np.int64).tobytes()).hexdigest()
            break
    if len(out) <= 2:
        warnings.warn(
            f"{type(dataset).__name__} has no fingerprint(); the cache key uses only its type and length",
            stacklevel=2,
        )
    return out


def cache_key(dataset: Any) -> str:
    text = json.dumps(
        {"version": CACHE_VERSION, "fingerprint": dataset_fingerprint(dataset)}, sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class DecodedCache(Dataset):
    """Wrap ``dataset``: build the cache on first use, then serve samples from the memory map.

    Keeps ``labels``, ``class_names``, ``num_classes`` and ``report`` of the wrapped dataset. Items
    carry the same keys as the wrapped dataset's (``image``, ``label``, ``landmarks5`` and, when every
    item has them, ``landmarks8``/``landmarks``, and ``meta``).
    """

    def __init__(self, dataset: Any, cache_dir: str | Path, *, progress: bool = True, rebuild: bool = False):
        self.dataset = dataset
        self.cache_dir = Path(cache_dir)
        self.key = cache_key(dataset)
        name = f"{getattr(dataset, 'name', type(dataset).__name__)}-{getattr(dataset, 'split', 'all')}-{self.key}"
        self.path = self.cache_dir / name
        self.built_now = False
        if rebuild and self.path.exists():
            shutil.rmtree(self.path)
        if not (self.path / _INDEX).is_file():
            self._build(progress)
            self.built_now = True
        self._load_sidecars()
        self._mm: np.memmap | None = None

    # -- attributes passed through ---------------------------------------------------------------
    @property
    def labels(self) -> np.ndarray:
        return self._labels

    @property
    def class_names(self):
        return getattr(self.dataset, "class_names", None)

    @property
    def num_classes(self):
        return getattr(self.dataset, "num_classes", None)

    @property
    def report(self):
        return getattr(self.dataset, "report", None)

    @property
    def skipped(self) -> int:
        """Items the wrapped dataset skipped (``dataset.skipped``), including those met while the cache was
        built (stored with it, so a reused cache still reports them)."""
        return max(self._skipped_at_build, int(getattr(self.dataset, "skipped", 0) or 0))

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"DecodedCache({self.dataset!r}, path={str(self.path)!r})"

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_mm"] = None  # each DataLoader worker opens its own map
        return state

    # -- build ---------------------------------------------------------------------------------
    def _build(self, progress: bool) -> None:
        from tqdm.auto import tqdm

        n = len(self.dataset)
        if n == 0:
            raise ValueError(f"cannot cache an empty dataset ({self.dataset!r})")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.cache_dir))
        try:
            first = self.dataset[0]
            shape = tuple(first["image"].shape)
            mm = np.lib.format.open_memmap(tmp / _IMAGES, mode="w+", dtype=np.uint8, shape=(n, *shape))
            labels = np.zeros(n, dtype=np.int64)
            lm5 = np.full((n, 5, 2), np.nan, dtype=np.float32)
            optional: dict[str, np.ndarray | None] = {}
            for key in ("landmarks8", "landmarks"):
                optional[key] = (
                    np.full((n, *first[key].shape), np.nan, dtype=np.float32)
                    if isinstance(first.get(key), torch.Tensor)
                    else None
                )
            metas: list[Any] = []
            for i in tqdm(range(n), desc=f"caching {self.path.name}", disable=not progress, unit="img"):
                sample = first if i == 0 else self.dataset[i]
                image = sample["image"]
                if tuple(image.shape) != shape or image.dtype != torch.uint8:
                    raise ValueError(
                        f"item {i} has image {tuple(image.shape)} {image.dtype}; the cache needs uint8 {shape} for "
                        "every item (build the dataset with one image_size)"
                    )
                mm[i] = image.numpy()
                labels[i] = int(sample["label"])
                if sample.get("landmarks5") is not None:
                    lm5[i] = np.asarray(sample["landmarks5"], dtype=np.float32)
                for key, arr in optional.items():
                    if arr is None:
                        continue
                    value = sample.get(key)
                    if isinstance(value, torch.Tensor) and tuple(value.shape) == arr.shape[1:]:
                        arr[i] = value.numpy()
                    else:
                        optional[key] = None  # not every item has it: drop the key entirely
                metas.append(_jsonable(sample.get("meta", {})))
            mm.flush()
            del mm
            arrays = {"labels": labels, "landmarks5": lm5}
            arrays.update({k: v for k, v in optional.items() if v is not None})
            np.savez(tmp / _ARRAYS, **arrays)
            atomic_write_json(tmp / _META, metas)
            atomic_write_json(
                tmp / _INDEX,
                {
                    "version": CACHE_VERSION,
                    "n": n,
                    "shape": list(shape),
                    "fingerprint": _jsonable(dataset_fingerprint(self.dataset)),
                    "keys": sorted(arrays),
                    "skipped": int(getattr(self.dataset, "skipped", 0) or 0),
                },
            )
            try:
                os.replace(tmp, self.path)
            except OSError:
                if not (self.path / _INDEX).is_file():  # nobody else finished it either
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _load_sidecars(self) -> None:
        index = json.loads((self.path / _INDEX).read_text())
        self._n = int(index["n"])
        self._skipped_at_build = int(index.get("skipped", 0))
        with np.load(self.path / _ARRAYS) as data:
            self._arrays = {k: data[k] for k in data.files}
        self._labels = self._arrays["labels"]
        base_labels = getattr(self.dataset, "labels", None)
        if base_labels is not None and len(base_labels) == self._n:
            self._labels = np.asarray(base_labels)
        self._metas = json.loads((self.path / _META).read_text())

    def _images(self) -> np.ndarray:
        if self._mm is None:
            self._mm = np.load(self.path / _IMAGES, mmap_mode="r")
        return self._mm

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += self._n
        image = torch.from_numpy(np.array(self._images()[index]))
        sample: dict[str, Any] = {
            "image": image,
            "label": int(self._arrays["labels"][index]),
            "landmarks5": torch.from_numpy(self._arrays["landmarks5"][index].copy()),
        }
        for key in ("landmarks8", "landmarks"):
            if key in self._arrays:
                sample[key] = torch.from_numpy(self._arrays[key][index].copy())
        sample["meta"] = dict(self._metas[index])
        return sample


def cached_dataset(dataset: Any, cache_dir: str | Path, **kw: Any) -> DecodedCache:
    """``DecodedCache(dataset, cache_dir)``: build on first call, reuse afterwards."""
    return DecodedCache(dataset, cache_dir, **kw)


__all__ = ["DecodedCache", "cached_dataset", "cache_key", "dataset_fingerprint", "CACHE_VERSION"]
