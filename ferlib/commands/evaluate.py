"""``ferlib evaluate --checkpoint CKPT --dataset NAME [--root PATH]
[--subset occlusion|pose30|pose45|FILE] [--model-kw KEY=VALUE ...] [--json]``."""

from __future__ import annotations

import argparse
import json
import sys

from ferlib.commands.train import model_kw, model_kw_dict


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a dataset, split or RAN occlusion/pose list",
        description="Evaluate a ferlib training checkpoint (checkpoints/best.pt or last.pt of a run) on any "
        "dataset split or RAN occlusion/pose subset: accuracy, per-class accuracy, macro-F1, confusion matrix.",
    )
    p.add_argument("--checkpoint", required=True, help="a ferlib checkpoint (.pt)")
    p.add_argument("--dataset", required=True, help="dataset name (ferlib data list)")
    p.add_argument("--root", help="folder of your local copy (not needed for SynthFER)")
    p.add_argument("--subset", help="occlusion, pose30, pose45 or a RAN list file")
    p.add_argument("--split", default=None, help="split when no --subset is given (default test)")
    p.add_argument("--n", type=int, help="SynthFER images to generate for the split")
    p.add_argument("--landmarks-file", help="landmarks table (ferlib landmarks) for models that need landmarks")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--model-kw",
        type=model_kw,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a variant keyword the checkpoint was trained with (YAML value; repeatable), "
        "e.g. --model-kw lam=0.5; the weights must still fit the variant",
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferlib.train.checkpoint import read_checkpoint
    from ferlib.train.evaluate import evaluate_checkpoint

    if args.subset and args.split:
        raise ValueError(
            f"--split {args.split} has no effect with --subset {args.subset} (a subset is its own list of test "
            "images); pass one of them"
        )
    args.split = args.split or "test"
    try:
        variant = (
            model_kw_dict(args.model_kw, read_checkpoint(args.checkpoint)["model_name"]) if args.model_kw else None
        )
        m = evaluate_checkpoint(
            args.checkpoint,
            args.dataset,
            args.root,
            subset=args.subset,
            split=args.split,
            device=args.device,
            batch_size=args.batch_size,
            n=args.n,
            progress=not args.no_progress,
            model_kwargs=variant,
            landmarks_file=args.landmarks_file,
        )
    except (ValueError, FileNotFoundError, KeyError) as exc:
        if getattr(args, "debug", False):
            raise
        print(f"ferlib evaluate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(m, indent=2, default=str))
        return 0
    note = " (synthetic)" if m["synthetic"] else ""
    print(
        f"{m['model']} on {m['dataset']} {m['subset'] or m['split']}{note}: {m['n']} images, accuracy "
        f"{m['accuracy']:.4f}, mean class accuracy {m['mean_class_accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}"
    )
    for name, acc in m["per_class_accuracy"].items():
        print(f"  {name:<10} {'-' if acc is None else f'{acc:.4f}'}  (n={m['support'][name]})")
    return 0
