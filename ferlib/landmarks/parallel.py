"""Run any image backend in several single-threaded worker processes.

MTCNN's small convolutions gain little from torch's intra-op threads, and when the CPU is shared
two threads can be far slower than one (they wait for each other). :class:`DetectorPool` instead
splits every batch across ``workers`` processes, each with one torch thread and its own copy of the
backend, which scales with the cores actually free. It is itself a :class:`Detector`, so
``extract_landmarks(..., detector=DetectorPool("mtcnn", workers=2))`` and
``ferlib landmarks ... --workers 2`` need nothing else.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from ferlib.landmarks.base import Detector, Face, create_detector, detector_class

_WORKER_DETECTOR: Detector | None = None


def _init_worker(backend: str, options: dict[str, Any], threads: int) -> None:
    global _WORKER_DETECTOR
    import torch

    torch.set_num_threads(threads)
    _WORKER_DETECTOR = create_detector(backend, **options)


def _detect_in_worker(images: list[np.ndarray]) -> list[list[Face]]:
    assert _WORKER_DETECTOR is not None, "worker not initialised"
    return _WORKER_DETECTOR.detect_arrays(images)


def _describe_in_worker() -> tuple[dict[str, Any], int]:
    assert _WORKER_DETECTOR is not None, "worker not initialised"
    return _WORKER_DETECTOR.describe(), int(getattr(_WORKER_DETECTOR, "min_image_side", 0) or 0)


class DetectorPool(Detector):
    """``workers`` processes each running ``create_detector(backend, **options)`` with ``threads`` torch threads.

    Use it as a context manager or call :meth:`close`; the processes start (and load the weights)
    in the constructor, so timing the first batch does not include start-up.
    """

    def __init__(self, backend: str = "mtcnn", workers: int = 2, threads: int = 1, **options: Any) -> None:
        if detector_class(backend).needs_samples:
            raise ValueError(f"the {backend!r} backend reads dataset annotations; it needs no worker processes")
        if workers < 1:
            raise ValueError(f"workers must be ≥ 1, got {workers}")
        self.name = backend  # records say which backend made them, not how it was run
        self.workers = int(workers)
        # spawn, not fork: forking a process that already ran torch can deadlock its thread pools.
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(backend, dict(options), int(threads)),
        )
        # Start every worker now (a tiny batch each), so model loading is not part of the first batch.
        blank = [np.zeros((32, 32, 3), np.uint8)]
        list(self._pool.map(_detect_in_worker, [blank] * self.workers))
        settings, self.min_image_side = self._pool.submit(_describe_in_worker).result()
        self._settings = {**settings, "workers": self.workers}

    def describe(self) -> dict[str, Any]:
        return dict(self._settings)

    def detect_arrays(self, images: list[np.ndarray]) -> list[list[Face]]:
        if not images:
            return []
        # Equal-sized contiguous chunks keep MTCNN's same-size batching inside each worker.
        chunks = [list(c) for c in np.array_split(np.arange(len(images)), min(self.workers, len(images)))]
        futures = [self._pool.submit(_detect_in_worker, [images[i] for i in idx]) for idx in chunks]
        out: list[list[Face]] = []
        for f in futures:
            out.extend(f.result())
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> DetectorPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
