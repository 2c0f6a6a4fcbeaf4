"""``ferlib train``: train a model with its paper's recipe, shrunk by a profile; resumable.

ferlib train --model ma-net --dataset synthfer --profile smoke
ferlib train --model ma-net --dataset rafdb --root /data/RAF-DB --profile full --seeds 0,1,2
ferlib train --model ma-net --dataset rafdb --root /data/RAF-DB --run-dir runs/manet --resume
torchrun --standalone --nproc-per-node 4 -m ferlib train --model ma-net --dataset rafdb --root ...
"""

from __future__ import annotations

import argparse
import json
import os


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seeds takes comma-separated integers such as 0,1,2, got {text!r}"
        ) from None
    if not seeds:
        raise argparse.ArgumentTypeError("--seeds needs at least one seed")
    return seeds


def _param(text: str) -> tuple[str, object]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"-p takes KEY=VALUE (e.g. -p fold=0), got {text!r}")
    return key.strip(), yaml.safe_load(value)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model with its paper's recipe (profiles smoke/default/full)",
        description="Train MODEL on DATASET with a paper recipe shrunk by a profile. Selection uses a "
        "seeded stratified validation split of the training data; the test set is evaluated once at the end. "
        "Launch with torchrun for data-parallel training (docs/training.md).",
    )
    p.add_argument("--model", required=True, help="registered model name (ferlib models)")
    p.add_argument("--dataset", default="synthfer", help="dataset name (ferlib data list); default synthfer")
    p.add_argument("--root", help="folder of your local copy of the dataset (not needed for SynthFER)")
    p.add_argument(
        "--recipe",
        help="recipe name (amp-net, ma-net, lan, ffra-net, man, baseline) or YAML path; default: the model's own",
    )
    p.add_argument(
        "--profile",
        choices=("smoke", "default", "full"),
        default=os.environ.get("FERLIB_PROFILE", "default"),
        help="how much to shrink the recipe (default $FERLIB_PROFILE or 'default')",
    )
    p.add_argument("--epochs", type=int, help="epochs per stage (rescales the schedule's milestones)")
    p.add_argument("--iterations", type=int, help="iterations per stage for iteration-based recipes (MAN)")
    p.add_argument("--batch-size", type=int, help="global batch size (split over torchrun processes)")
    p.add_argument("--lr", type=float, help="base learning rate")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (default auto)")
    p.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds, e.g. 0,1,2 (mean ± std)")
    p.add_argument("--run-dir", help="run folder (default runs/<stamp>-<model>-<dataset>-<profile>-seed<S>)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --run-dir")
    p.add_argument("--init", help="weights to start from")
    p.add_argument(
        "--init-format",
        default="ferlib",
        help="ferlib | manet-official | ampnet-official | torchvision (default ferlib)",
    )
    p.add_argument("--num-classes", type=int, default=7, choices=(7, 8))
    p.add_argument("--n-train", type=int, help="SynthFER training images (default: the profile's)")
    p.add_argument("--n-test", type=int, help="SynthFER test images (default: the profile's)")
    p.add_argument("--val-fraction", type=float, help="validation share of the training data (default: profile's)")
    p.add_argument("--cache-dir", help="decoded uint8 image cache folder (fast epochs on real data)")
    p.add_argument(
        "-p",
        "--dataset-param",
        type=_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="loader keyword for build_dataset, e.g. -p fold=0 (CK+/KDEF), -p variant=original (RAF-DB)",
    )
    p.add_argument("--landmarks-file", help="landmarks table replacing the shipped ones")
    p.add_argument("--workers", type=int, default=0, help="data-loader worker processes (default 0)")
    p.add_argument("--amp", default="auto", choices=("auto", "off", "bf16", "fp16"))
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--no-augment", action="store_true", help="switch the recipe's augmentation off")
    p.add_argument(
        "--no-deterministic",
        action="store_true",
        help="allow non-deterministic (faster) CUDA kernels; seeds are still set",
    )
    p.add_argument("--save-every-epoch", action="store_true", help="keep checkpoints/epoch-NNN.pt too")
    p.add_argument("--cpu-threads", type=int, help="torch threads on CPU")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferlib.train import TrainConfig, distributed, train_seeds
    from ferlib.train.metrics import format_mean_std

    cfg = TrainConfig(
        model=args.model,
        dataset=args.dataset,
        root=args.root,
        recipe=args.recipe,
        profile=args.profile,
        seed=args.seeds[0],
        epochs=args.epochs,
        iterations=args.iterations,
        batch_size=args.batch_size,
        lr=args.lr,
        num_classes=args.num_classes,
        val_fraction=args.val_fraction,
        n_train=args.n_train,
        n_test=args.n_test,
        landmarks_file=args.landmarks_file,
        dataset_kwargs=dict(args.dataset_param),
        cache_dir=args.cache_dir,
        init=args.init,
        init_format=args.init_format,
        augment=not args.no_augment,
        device=args.device,
        num_workers=args.workers,
        amp=args.amp,
        compile=args.compile,
        cpu_threads=args.cpu_threads,
        progress=not args.no_progress,
        deterministic=not args.no_deterministic,
        save_every_epoch=args.save_every_epoch,
        run_dir=args.run_dir,
        resume=args.resume,
    )
    try:  # a user error propagates to ferlib.cli.main: one line, exit code 2 (--debug: the traceback)
        result = train_seeds(cfg, args.seeds)
    finally:
        main = distributed.current_context().is_main
        distributed.shutdown()
    if not main:
        return 0
    out = {"run_dir": str(result.run_dir), "runs": [r.metrics for r in result.runs], "summary": result.summary}
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    note = " (SynthFER: synthetic data, not a paper reproduction)" if args.dataset.lower() == "synthfer" else ""
    print(f"run folder: {result.run_dir}{note}")
    for r in result.runs:
        m = r.metrics
        print(
            f"seed {m['seed']}: test accuracy {m['test_selected']['accuracy']:.4f} (epoch {m['best_epoch']} "
            f"chosen on validation), final epoch {m['test_final']['accuracy']:.4f}, "
            f"macro-F1 {m['test_selected']['macro_f1']:.4f}"
        )
    if len(result.runs) > 1:
        for key in ("test_selected.accuracy", "test_selected.macro_f1", "test_final.accuracy"):
            print(f"{key}: {format_mean_std(result.summary[key])} % over {len(result.runs)} seeds")
    return 0
