"""``ferlib robustness RUN_DIR... [--dataset NAME --root PATH] [--profile smoke|default|full] [--out DIR] [--json]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from ferlib.commands.train import model_kw
    from ferlib.robustness.runner import PROFILES

    p = subparsers.add_parser(
        "robustness",
        help="every trained model under occlusion, pose and degradation, with intervals and paired tests",
        description="Evaluate trained run folders (several models, several seeds) on test conditions built from the "
        "same test faces: occluder type x occluded share of the face, yaw, blur/noise/JPEG/low resolution/"
        "brightness/contrast and (SynthFER) expression intensity. Writes results.json, accuracy.csv, per_run.csv, "
        "drops.csv, pairs.csv, attention.csv and seaborn figures (docs/robustness.md).",
    )
    p.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="run folders written by `ferlib train`, or folders above them (e.g. a study's train/)",
    )
    p.add_argument("--dataset", default="synthfer", help="synthfer (default) or a real dataset name (ferlib data list)")
    p.add_argument("--root", help="folder of your local copy of a real dataset (its test split is used)")
    p.add_argument("--landmarks-file", help="landmarks table (ferlib landmarks) when the copy ships no five points")
    p.add_argument(
        "--dataset-kw",
        type=model_kw,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a keyword of the real dataset's loader (YAML value; repeatable), e.g. --dataset-kw variant=original "
        "for RAF-DB's uncropped images with their five annotated points",
    )
    p.add_argument("--profile", default="smoke", choices=sorted(PROFILES), help="sizes (default smoke)")
    p.add_argument("--n-faces", type=int, help="test faces (overrides the profile's)")
    p.add_argument(
        "--synthfer-preset", help="SynthFER world of the clean test faces (default: the runs' training preset)"
    )
    p.add_argument("--workers", type=int, help="processes drawing occluders (overrides the profile's)")
    p.add_argument("--out", help="output folder (default runs/robustness-<profile>)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0, help="seed of the test faces, occluders and bootstrap")
    p.add_argument("--no-figures", action="store_true", help="write the tables only")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the result summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferlib.robustness.runner import run_robustness

    if args.n_faces is not None and args.n_faces < 2:
        raise ValueError(f"--n-faces must be at least 2 (intervals need two faces), got {args.n_faces}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {args.workers}")
    out = Path(args.out) if args.out else Path("runs") / f"robustness-{args.profile}"
    res = run_robustness(
        args.run_dirs,
        args.dataset,
        args.root,
        profile=args.profile,
        out_dir=out,
        device=args.device,
        seed=args.seed,
        n_faces=args.n_faces,
        landmarks_file=args.landmarks_file,
        synthfer_preset=args.synthfer_preset,
        figures=not args.no_figures,
        progress=not args.no_progress,
        workers=args.workers,
        dataset_kwargs=dict(args.dataset_kw) or None,
    )
    if args.json:
        summary = {
            "out_dir": str(out),
            "settings": res.settings,
            "runs": res.runs,
            "accuracy": res.accuracy,
            "timing": res.timing,
            "notes": res.notes,
        }
        print(json.dumps(summary, indent=2, default=str))
        return 0
    acc = res.table("accuracy")
    print(f"robustness on {res.settings['label']}: {len(res.runs)} run(s), {len(res.conditions)} condition(s)")
    for key, g in acc.groupby("key", sort=False):
        clean = g[g.family == "clean"]
        worst = g.loc[g.accuracy.idxmin()]
        c = clean.iloc[0] if len(clean) else None
        head = f"clean {c.accuracy:.3f} [{c.accuracy_low:.3f}, {c.accuracy_high:.3f}]" if c is not None else ""
        print(f"  {key:<24} {head}; hardest {worst.condition} {worst.accuracy:.3f}")
    for note in res.notes:
        print(f"  note: {note}", file=sys.stderr)
    print(f"tables and figures in {out}")
    return 0
