"""How fast ``ferlib robustness`` builds its test variants, and how much of an evaluation is the models' forward.

1. **Variants**: for ``--faces`` SynthFER test faces (default 1,000) at ``--image-size``, the occluded variants
   (4 occluders × 5 areas, each fitted to its share of the face region) and the re-posed variants (5 yaws,
   re-rendered), built in chunks of ``--chunk`` faces with ``--workers`` processes
   (:mod:`ferlib.robustness.conditions`). Goal: under a minute on 2 cores.
2. **Evaluation share**: the profile's condition grid on ``--eval-faces`` faces, every model of ``--models``
   (untrained weights: the share does not depend on them) predicting every condition; reported: time building
   conditions, time predicting, and the share of it spent inside the models' forward passes.

    python benchmarks/robustness_variants.py --faces 1000 --workers 2 --write docs/robustness.md

The table is written between ``<!-- robustness-variants:cpu:begin -->`` and ``…:end -->`` of the target file.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from _report import header, publish  # noqa: E402

from ferlib.robustness import conditions as C  # noqa: E402
from ferlib.robustness.faces import synthfer_faces  # noqa: E402


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished worker processes (user + system)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def build_variants(n: int, image_size: int, chunk: int, workers: int, seed: int = 0) -> dict[str, float]:
    """Wall and CPU seconds to render the clean faces, occlude them (4 kinds × 5 areas) and re-pose them (5 yaws).

    CPU seconds count the work whatever else the machine runs; on a shared machine they divided by the cores
    used estimate the wall time the same work takes on idle cores."""
    grid = C.ConditionGrid()
    t = {k: 0.0 for k in ("faces_s", "occluded_s", "reposed_s", "faces_cpu", "occluded_cpu", "reposed_cpu")}
    t["variants"] = 0
    for start in range(0, n, chunk):
        t0, c0 = time.perf_counter(), cpu_seconds()
        faces = synthfer_faces(min(chunk, n - start), seed=seed + start, image_size=image_size)
        t1, c1 = time.perf_counter(), cpu_seconds()
        for kind in grid.occluders:
            sets = C.occlusion_sets(faces, kind, grid.areas, seed=seed, workers=workers)
            t["variants"] += sum(len(s) for s in sets)
            del sets
        t2, c2 = time.perf_counter(), cpu_seconds()
        for yaw in grid.yaws:
            t["variants"] += len(C.pose_set(faces, yaw, workers=workers))
        t3, c3 = time.perf_counter(), cpu_seconds()
        t["faces_s"] += t1 - t0
        t["occluded_s"] += t2 - t1
        t["reposed_s"] += t3 - t2
        t["faces_cpu"] += c1 - c0
        t["occluded_cpu"] += c2 - c1
        t["reposed_cpu"] += c3 - c2
    t["total_s"] = t["faces_s"] + t["occluded_s"] + t["reposed_s"]
    return t


def evaluation_share(models: list[str], n: int, image_size: int, workers: int, batch_size: int) -> dict[str, float]:
    """Build every condition of the default grid for ``n`` faces and let every model predict it."""
    from ferlib.models import create_model
    from ferlib.robustness.runner import LoadedRun, predict_set

    dev = torch.device("cpu")
    runs = []
    for name in models:
        torch.manual_seed(0)
        model = create_model(name).eval()
        runs.append(LoadedRun(Path("."), name, 0, "clean", "", model, 7, image_size, [], "synthfer"))
    faces = synthfer_faces(n, image_size=image_size)
    build = predict = forward = 0.0
    n_cond = 0
    t0 = time.perf_counter()
    for cset in C.iter_condition_sets(faces, C.ConditionGrid(), workers=workers):
        build += time.perf_counter() - t0
        t1 = time.perf_counter()
        for run in runs:
            _, f = predict_set(run, cset, faces.labels, batch_size, dev)
            forward += f
        predict += time.perf_counter() - t1
        n_cond += 1
        t0 = time.perf_counter()
    return {"conditions": n_cond, "build_s": build, "predict_s": predict, "forward_s": forward}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=1000)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--chunk", type=int, default=250, help="faces built at a time (memory)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--models", default="resnet18,ma-net", help="models for the evaluation share ('' = skip)")
    ap.add_argument("--eval-faces", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", help="Markdown file to write the table into (else print)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    v = build_variants(args.faces, args.image_size, args.chunk, args.workers)
    lines = header(
        torch.device("cpu"),
        "python benchmarks/robustness_variants.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        f"SynthFER (synthetic) test faces at {args.image_size} px; load average at start {load:.1f}",
        note="the machine was shared with other jobs when the load average exceeds its core count",
    )
    per1000 = 1000.0 / args.faces
    cores = max(1, min(args.workers, os.cpu_count() or 1))
    both_cpu = v["occluded_cpu"] + v["reposed_cpu"]
    lines += [
        "",
        "| step | faces | variants | wall s | CPU s | CPU s per 1,000 faces |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| render clean faces | {args.faces} | – | {v['faces_s']:.1f} | {v['faces_cpu']:.1f} | "
        f"{v['faces_cpu'] * per1000:.1f} |",
        f"| occluded (4 occluders × 5 areas) | {args.faces} | {20 * args.faces} | {v['occluded_s']:.1f} | "
        f"{v['occluded_cpu']:.1f} | {v['occluded_cpu'] * per1000:.1f} |",
        f"| re-posed (5 yaws) | {args.faces} | {5 * args.faces} | {v['reposed_s']:.1f} | {v['reposed_cpu']:.1f} | "
        f"{v['reposed_cpu'] * per1000:.1f} |",
        f"| **occluded + re-posed variants** | {args.faces} | {v['variants']} | "
        f"**{v['occluded_s'] + v['reposed_s']:.1f}** | {both_cpu:.1f} | **{both_cpu * per1000:.1f}** |",
        "",
        f"Estimated wall time for 1,000 faces on {cores} idle core(s): CPU seconds per 1,000 faces / {cores} = "
        f"**{both_cpu * per1000 / cores:.0f} s** (goal: under 60 s).",
        "",
    ]
    models = [m for m in args.models.split(",") if m]
    if models:
        e = evaluation_share(models, args.eval_faces, args.image_size, args.workers, args.batch_size)
        total = e["build_s"] + e["predict_s"]
        lines += [
            f"Evaluation of {', '.join(models)} on the {e['conditions']} conditions of the default grid "
            f"({args.eval_faces} faces): building {e['build_s']:.1f} s, predicting {e['predict_s']:.1f} s, of which "
            f"forward passes {e['forward_s']:.1f} s = **{e['forward_s'] / e['predict_s']:.0%} of prediction** and "
            f"{e['forward_s'] / total:.0%} of building + predicting ({len(models)} model(s); with more models and "
            "seeds the variants are built once and the forward share grows).",
            "",
        ]
    publish("\n".join(lines), args.write, "robustness-variants", "cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
