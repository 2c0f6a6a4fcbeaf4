"""Benchmark (not a test): SynthFER images per second at 224 px.

Usage::

    .venv/bin/python benchmarks/synthfer_speed.py            # 2 DataLoader workers, 224 px
    .venv/bin/python benchmarks/synthfer_speed.py --workers 1 --n 1000 --size 112

Renders ``--n`` samples of the default config (occlusions and degradations included) through a
``torch.utils.data.DataLoader`` with ``--workers`` worker processes — the way training consumes it —
and prints images/s. The issue's target is ≥ 500 images/s at 224 px on 2 cores. The number depends
on what else runs on the machine; report the load average printed with it. It also prints the
*CPU time* per image of an in-process run (``time.process_time``), which other users of a shared
machine disturb much less: ``2 / cpu_seconds_per_image`` is the 2-core rate on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch.utils.data import DataLoader

from ferlib.data.schema import collate_samples
from ferlib.data.synthfer import SynthFERDataset
from ferlib.runs import worker_init_fn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="images to render (after a warm-up batch)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu-n", type=int, default=400, help="images for the in-process CPU-time measure")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu_ds = SynthFERDataset(args.cpu_n + 10, seed=args.seed + 1, image_size=args.size)
    for i in range(10):
        cpu_ds[i]
    c0 = time.process_time()
    for i in range(10, args.cpu_n + 10):
        cpu_ds[i]
    cpu_per_image = (time.process_time() - c0) / args.cpu_n
    print(
        f"SynthFER {args.size}px: {cpu_per_image * 1000:.2f} ms CPU time per image in one process "
        f"→ {1 / cpu_per_image:.0f} images/s per core, {2 / cpu_per_image:.0f} images/s on 2 idle cores"
    )
    ds = SynthFERDataset(args.n + args.batch_size, seed=args.seed, image_size=args.size)
    loader = DataLoader(
        ds,
        batch_size=args.batch_size,
        num_workers=args.workers,
        collate_fn=collate_samples,
        worker_init_fn=worker_init_fn,
        persistent_workers=False,
    )
    it = iter(loader)
    next(it)  # warm-up: worker start-up and imports are not counted
    start = time.perf_counter()
    count = 0
    for batch in it:
        count += batch["image"].shape[0]
    elapsed = time.perf_counter() - start
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"SynthFER {args.size}px: {count / elapsed:.0f} images/s with {args.workers} worker(s) "
        f"({count} images in {elapsed:.1f} s; cpu count {os.cpu_count()}, load avg {load:.2f})"
    )


if __name__ == "__main__":
    main()
