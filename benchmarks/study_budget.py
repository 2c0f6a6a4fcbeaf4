"""Per-model training cost at the study's batch size, and what a study profile would take.

Trains each model for a few steps with the trainer itself (SynthFER generation, augmentation,
bf16 autocast where the CPU has it, validation and test evaluation included) through an engine
profile's settings, and reports seconds per training step (the last epoch's, warm), seconds per
evaluated face, and the run's wall time. ``--estimate`` then multiplies these costs by the steps
and faces of the named study profiles (``ferlib/profiles.py``):

    python benchmarks/study_budget.py --models resnet18,ma-net,amp-net-r18,lan,ffra-net,man \
        --engine study-default --estimate default,lecture

The estimate is, per run, steps x s/step + evaluated faces x s/step / batch / 3 (a forward pass is
about a third of a training step) + the run's fixed cost (data, model build, checkpoints, figures:
the measured wall time less both), summed over models, seeds and ablation rows; the notebooks'
other cells (landmarks, sub-regions, Grad-CAM) are not included.
Timings on a shared machine vary several-fold with the load; the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def measure(model: str, engine: str, batch: int, steps: int) -> dict:
    """A two-epoch run of ``steps`` training steps per epoch; the second epoch's s/step is warm."""
    from ferlib.train import TrainConfig, train

    n_train = math.ceil(batch * steps / 0.9) + 1
    n_test = 28
    with tempfile.TemporaryDirectory() as tmp:
        kw = dict(iterations=steps) if model == "man" else dict(epochs=2)
        cfg = TrainConfig(
            model=model,
            profile=engine,
            batch_size=batch,
            n_train=n_train,
            n_test=n_test,
            progress=False,
            tensorboard=False,
            run_dir=str(Path(tmp) / model),
            **kw,
        )
        t0 = time.perf_counter()
        res = train(cfg)
        wall = time.perf_counter() - t0
    hist = res.history
    last = hist[-1]
    train_s = sum(h["epoch_seconds"] for h in hist)
    n_eval = len(hist) * round(n_train * 0.1) + 2 * n_test  # validation per epoch, test final + selected
    s_step = last["epoch_seconds"] / max(last["steps"], 1)
    # a forward pass costs about a third of forward + backward + step: evaluation's share of the
    # non-training time; the rest (data, model build, checkpoints, figures) is a fixed cost per run
    s_face = s_step / batch / 3
    return {
        "model": model,
        "batch": batch,
        "s_per_step": round(s_step, 3),
        "s_per_eval_face": round(s_face, 4),
        "s_fixed_per_run": round(max(wall - train_s - n_eval * s_face, 0.0), 1),
        "wall_s": round(wall, 1),
        "precision": res.metrics.get("precision"),
    }


def estimate(costs: dict[str, dict], study: str) -> dict:
    """Seconds notebooks 03 and 04 of study profile ``study`` would train and evaluate for."""
    from ferlib.models import ablation_grids
    from ferlib.profiles import get_profile
    from ferlib.train import load_profile

    prof = get_profile(study)
    out: dict[str, float] = {}

    def run_cost(model: str, engine_name: str) -> float:
        eng = load_profile(engine_name)
        c = costs[model]
        n_train = eng.n_train or 2000
        n_fit = round(n_train * (1 - (eng.val_fraction or 0.1)))
        batch = eng.batch_size or 32
        steps = 2 * (eng.iterations or 60) if model == "man" else (eng.epochs or 1) * math.ceil(n_fit / batch)
        epochs = 2 if model == "man" else (eng.epochs or 1)
        n_eval = epochs * (n_train - n_fit) + 2 * (eng.n_test or 700)
        s_step = c["s_per_step"] * batch / c["batch"]
        return steps * s_step + n_eval * s_step / batch / 3 + c.get("s_fixed_per_run", 0.0)

    for model in prof.models:
        seeds = prof.seeds_for(model)
        out[f"03 {model} x{len(seeds)}"] = len(seeds) * run_cost(model, prof.train_profile)
    for name in prof.ablations:
        grid = ablation_grids()[name]
        rows = grid.select(prof.ablation_points)
        seeds = prof.ablation_seeds or (prof.seeds[0],)
        for row in rows:
            model = row.model or grid.model
            base = model if model in costs else grid.model
            key = f"04 {name}"
            out[key] = out.get(key, 0.0) + len(seeds) * run_cost(base, prof.ablation_profile)
    out["total"] = sum(out.values())
    return {k: round(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="resnet18,ma-net,amp-net-r18,lan,ffra-net,man")
    p.add_argument("--engine", default="study-default", help="engine profile the runs take their preset and lr from")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=2, help="training steps per epoch (MAN: per stage)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--estimate", default="", help="study profiles to estimate, comma-separated")
    p.add_argument("--costs", default=None, help="reuse a JSON of measured costs instead of measuring")
    p.add_argument("--save", default=None, help="write the measured costs to this JSON")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    if args.costs:
        costs = json.loads(Path(args.costs).read_text())
    else:
        costs = {}
        for model in args.models.split(","):
            costs[model] = measure(model, args.engine, args.batch_size, args.steps)
            print(json.dumps(costs[model]), flush=True)
        if args.save:
            Path(args.save).write_text(json.dumps(costs, indent=1))
    print(f"load average at end: {os.getloadavg()}", flush=True)
    for study in filter(None, args.estimate.split(",")):
        print(study, json.dumps(estimate(costs, study), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
