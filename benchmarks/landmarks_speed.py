"""Benchmark (not a test): landmark extraction speed, cold and cached.

Writes ``--n`` real face images (LFW faces from scikit-image, enlarged and centred on a
``--size``² canvas) to a temporary folder, runs :func:`ferlib.landmarks.extract_landmarks` on it
(cold: every image detected), then again (cached: every image reused), and prints faces per second.

Targets (issue 3): ≥ 40 faces/s with MTCNN on 2 CPU cores, ≥ 1,000 images/s for the cached rerun.

    .venv/bin/python benchmarks/landmarks_speed.py --threads 2
    .venv/bin/python benchmarks/landmarks_speed.py --threads 2 --json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200, help="number of images (default 200)")
    p.add_argument("--size", type=int, default=224, help="image side in pixels (default 224)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads without --workers (default 2)")
    p.add_argument("--workers", type=int, default=0, help="DetectorPool processes (0: in this process)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--backend", default="mtcnn")
    p.add_argument("--weights", default=None, help="retinaface checkpoint")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    import numpy as np
    import torch
    from PIL import Image

    from ferlib.landmarks import create_detector, extract_landmarks
    from ferlib.landmarks.examples import lfw_face

    torch.set_num_threads(args.threads)
    options = {"weights": args.weights} if args.backend == "retinaface" else {}
    if args.workers:
        from ferlib.landmarks.parallel import DetectorPool

        detector = DetectorPool(args.backend, workers=args.workers, threads=1, **options)  # 1 thread each
    else:
        detector = create_detector(args.backend, **options)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "faces"
        folder.mkdir()
        face = int(args.size * 0.66)
        for i in range(args.n):
            Image.fromarray(lfw_face(i % 100, face, args.size)).save(folder / f"{i:05d}.png")
        # warm-up (model load, first-call allocations) outside the timing
        detector.detect([np.zeros((args.size, args.size, 3), np.uint8)])
        out = Path(tmp) / "landmarks.jsonl"
        c0 = time.process_time()
        t0 = time.perf_counter()
        cold = extract_landmarks(folder, out, detector=detector, batch_size=args.batch_size, progress=False)
        t1 = time.perf_counter()
        c1 = time.process_time()
        cached = extract_landmarks(folder, out, detector=detector, batch_size=args.batch_size, progress=False)
        t2 = time.perf_counter()
    result = {
        "backend": args.backend,
        "n": args.n,
        "size": args.size,
        "threads": args.threads,
        "workers": args.workers,
        "batch_size": args.batch_size,
        "cold_images_per_s": round(args.n / (t1 - t0), 1),
        "cached_images_per_s": round(args.n / (t2 - t1), 1),
        # CPU seconds of this process per image: tells a loaded machine (wall ≫ CPU/threads) apart
        # (main process only, so not meaningful with --workers)
        "cold_cpu_ms_per_image": None if args.workers else round((c1 - c0) / args.n * 1000, 2),
        "faces_found": cold.counts["ok"] + cold.counts["multiple_faces"],
        "cached_recomputed": cached.computed,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{args.backend}: {args.n} images {args.size}px, {args.threads} thread(s), {args.workers} worker(s): "
            f"cold {result['cold_images_per_s']} faces/s ({result['faces_found']} faces found, "
            f"{result['cold_cpu_ms_per_image']} CPU ms/image), "
            f"cached rerun {result['cached_images_per_s']} images/s ({cached.computed} recomputed)"
        )
    if hasattr(detector, "close"):
        detector.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
