"""The training set on the device: uint8 images and landmarks gathered by index, no DataLoader workers.

An epoch of the usual path decodes or reads every sample in Python, collates it and copies the batch
to the device; on a GPU that costs more than the model step (issue 16). Here the decoded training
part (``ferlib.data.cache.DecodedCache``'s uint8 N×3×H×W array, or any dataset read once) is copied
to the device **once**, with its labels and landmarks, and every batch is one ``index_select`` per
key. Augmentation (:class:`ferlib.data.transforms.LandmarkAugment`, whose whole-batch path runs on
accelerators) and ImageNet normalisation then run on the device as before
(:mod:`ferlib.train.batches`). RAF-DB at 224 px is 12,271 × 150,528 bytes ≈ 1.8 GB.

When the set does not fit the memory budget (AffectNet-sized sets) it stays in host memory (the
cache's memory map) and each batch is gathered on the host into pinned memory and copied without
blocking: still no worker processes, but one host gather per batch.

Determinism: the sample order of epoch ``e`` is :class:`ferlib.data.protocols.EpochSampler`'s (a
function of ``(seed, e)`` and the rank only); it is drawn once per epoch (a few thousand integers),
moved to the device once, and sliced there into batches. The batches are therefore exactly those of
the DataLoader path (same indices, same order, same tensors), a resumed run replays its interrupted
epoch, and without class balancing each epoch visits every index once (tests/test_train_device_data.py).

Selected by ``TrainConfig.data_on_device``: ``"auto"`` (on for CUDA, resident when it fits, else
streamed; off on a CPU, where the loader's memory map is already local), ``"on"`` or ``"off"``;
``TrainConfig.data_device_budget_gb`` caps the device memory it may take (default: half the free
device memory).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ferlib.data.cache import DecodedCache
from ferlib.data.protocols import IndexedDataset

#: Keys a device batch carries when every sample has them (``meta`` stays on the host and is dropped).
TENSOR_KEYS = ("image", "label", "landmarks5", "landmarks8", "landmarks")
_CHUNK = 1024  # rows copied to the device at a time while building (bounds the host copy)


def _source_arrays(dataset: Dataset) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``(arrays, rows)``: per-key arrays (memory-mapped where the cache is) and, for each item of
    ``dataset``, its row in them. Index views are followed down to a decoded cache without copying;
    any other dataset is read once, item by item."""
    if isinstance(dataset, IndexedDataset):
        arrays, rows = _source_arrays(dataset.base)
        return arrays, rows[np.asarray(dataset.indices, dtype=np.int64)]
    if isinstance(dataset, DecodedCache):
        # The cache's own arrays: the uint8 memory map and its label/landmark side arrays.
        arrays = {"image": dataset._images(), "label": np.asarray(dataset.labels, dtype=np.int64)}
        arrays.update({k: v for k, v in dataset._arrays.items() if k in TENSOR_KEYS and k != "label"})
        return arrays, np.arange(len(dataset), dtype=np.int64)
    n = len(dataset)
    if n == 0:
        raise ValueError(f"cannot put an empty dataset on the device ({dataset!r})")
    samples = [dataset[i] for i in range(n)]
    keys = [k for k in TENSOR_KEYS if all(isinstance(s.get(k), (torch.Tensor, int, np.integer)) for s in samples)]
    arrays = {}
    for k in keys:
        if k == "label":
            arrays[k] = np.asarray([int(s[k]) for s in samples], dtype=np.int64)
        else:
            arrays[k] = np.stack([s[k].numpy() for s in samples])
    return arrays, np.arange(n, dtype=np.int64)


def default_budget_bytes(device: torch.device) -> int:
    """Half of the free memory of a CUDA device; unlimited elsewhere (host memory is the source anyway)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 2
    return 1 << 62


class DeviceTrainSet:
    """A training set whose batches are gathered by index on the device (see the module docstring).

    ``resident`` is ``True`` when every tensor lives on ``device``; otherwise the arrays stay on the
    host and each batch is gathered into pinned memory (on CUDA) and copied without blocking.
    """

    def __init__(self, dataset: Dataset, device: torch.device | str, *, budget_bytes: int | None = None):
        self.device = torch.device(device)
        arrays, rows = _source_arrays(dataset)
        if "image" not in arrays or "label" not in arrays:
            raise ValueError(f"{dataset!r} has no uint8 'image' and 'label' in every item; it cannot go on the device")
        self.n = len(rows)
        self.nbytes = sum(int(np.prod(a.shape[1:])) * a.dtype.itemsize * self.n for a in arrays.values())
        budget = default_budget_bytes(self.device) if budget_bytes is None else int(budget_bytes)
        self.resident = self.nbytes <= budget
        self._pin = self.device.type == "cuda"
        if self.resident:
            self.tensors = {k: self._to_device(a, rows) for k, a in arrays.items()}
            self._host: dict[str, np.ndarray] = {}
            self._rows = None
        else:
            self.tensors = {}
            self._host, self._rows = arrays, rows

    def _to_device(self, array: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        out: torch.Tensor | None = None
        for start in range(0, len(rows), _CHUNK):
            part = torch.from_numpy(np.ascontiguousarray(array[rows[start : start + _CHUNK]]))
            if out is None:
                out = torch.empty((len(rows), *part.shape[1:]), dtype=part.dtype, device=self.device)
            out[start : start + len(part)] = part.to(self.device)
        return out

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        where = "resident" if self.resident else "streamed from host memory"
        return f"DeviceTrainSet(n={self.n}, {self.nbytes / 2**30:.2f} GiB, {where}, device={self.device})"

    def batch(self, idx: torch.Tensor) -> dict[str, Any]:
        """The batch of items ``idx`` (a 1-D index tensor; on ``device`` when resident)."""
        if self.resident:
            idx = idx.to(self.device)
            return {k: t.index_select(0, idx) for k, t in self.tensors.items()}
        rows = self._rows[idx.cpu().numpy()]
        out = {}
        for k, a in self._host.items():
            t = torch.from_numpy(np.ascontiguousarray(a[rows]))
            if self._pin:
                t = t.pin_memory()
            out[k] = t.to(self.device, non_blocking=self._pin)
        return out

    def epoch_batches(self, order: torch.Tensor, batch_size: int, *, drop_last: bool = True) -> Iterator[dict]:
        """Batches of ``batch_size`` items in ``order`` (e.g. ``EpochSampler.indices()``), the last partial
        batch dropped when asked, as the training loader does. The order moves to the device once."""
        order = order.to(self.device if self.resident else torch.device("cpu"))
        stop = len(order) - (len(order) % batch_size if drop_last else 0)
        for start in range(0, stop, batch_size):
            yield self.batch(order[start : start + batch_size])


def device_data_enabled(mode: str, device: torch.device) -> bool:
    """``TrainConfig.data_on_device``: ``"on"``, ``"off"`` or ``"auto"`` (on for CUDA devices only)."""
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"data_on_device must be 'auto', 'on' or 'off', got {mode!r}")
    return mode == "on" or (mode == "auto" and device.type == "cuda")


def build_device_data(
    dataset: Dataset, device: torch.device, mode: str = "auto", budget_gb: float | None = None
) -> DeviceTrainSet | None:
    """The :class:`DeviceTrainSet` of ``dataset`` when ``mode`` selects it, else ``None`` (DataLoader path)."""
    if not device_data_enabled(mode, device):
        return None
    budget = None if budget_gb is None else int(budget_gb * 2**30)
    return DeviceTrainSet(dataset, device, budget_bytes=budget)


__all__ = ["DeviceTrainSet", "build_device_data", "device_data_enabled", "default_budget_bytes", "TENSOR_KEYS"]
