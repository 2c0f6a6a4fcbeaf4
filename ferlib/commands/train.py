"""``ferlib train``: train a model with its paper's recipe, shrunk by a profile; resumable.

ferlib train --model ma-net --dataset synthfer --profile smoke
ferlib train --model ma-net --dataset rafdb --root /data/RAF-DB --profile full --seeds 0,1,2
ferlib train --model ma-net --dataset rafdb --root /data/RAF-DB --run-dir runs/manet --resume
ferlib train --model lan --dataset rafdb --root /data/RAF-DB --model-kw alpha=0 --init r18.pth --init-format torchvision
torchrun --standalone --nproc-per-node 4 -m ferlib train --model ma-net --dataset rafdb --root ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys


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


def model_kw(text: str) -> tuple[str, object]:
    """``--model-kw KEY=VALUE``: the value is read as YAML (``0.5``, ``true``, ``[gp, lp]``, ``null``)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--model-kw takes KEY=VALUE (e.g. --model-kw alpha=0), got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"--model-kw {text!r}: the value is not valid YAML ({exc})") from None


def model_kw_dict(pairs: list[tuple[str, object]], model: str) -> dict[str, object]:
    """The ``--model-kw`` pairs as keywords of ``model``'s factory; a repeated or unknown key is refused."""
    from ferlib.train.config import check_model_kwargs

    kw: dict[str, object] = {}
    for key, value in pairs:
        if key in kw:
            raise ValueError(f"--model-kw {key} given twice ({kw[key]!r} and {value!r}); give it once")
        kw[key] = value
    check_model_kwargs(model, kw)
    return kw


def _engine_profiles() -> tuple[str, ...]:
    """The profile names ``ferlib/recipes/profiles.yaml`` defines (read without importing torch)."""
    import importlib.resources

    import yaml

    return tuple(yaml.safe_load((importlib.resources.files("ferlib") / "recipes" / "profiles.yaml").read_text()))


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
        choices=_engine_profiles(),
        default=os.environ.get("FERLIB_PROFILE", "default"),
        help="how much to shrink the recipe: smoke, default, full, or a study notebook's budget such as "
        "study-lecture (ferlib/recipes/profiles.yaml; default $FERLIB_PROFILE or 'default')",
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
        help="ferlib | torchvision (ResNet-18/34, VGG16) | vgg-face (vgg_face_dag) | manet-official | "
        "ampnet-official (default ferlib); docs/training.md 'Outside weights'",
    )
    p.add_argument(
        "--init-partial",
        action="store_true",
        help="accept an --init that leaves part of the backbone it maps at its random init (refused otherwise)",
    )
    p.add_argument(
        "--model-kw",
        type=model_kw,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model variant keyword (YAML value; repeatable), e.g. --model-kw alpha=0 --model-kw fusion=concat",
    )
    p.add_argument("--num-classes", type=int, default=7, choices=(7, 8))
    p.add_argument("--n-train", type=int, help="SynthFER training images (default: the profile's)")
    p.add_argument("--n-test", type=int, help="SynthFER test images (default: the profile's)")
    p.add_argument("--val-fraction", type=float, help="validation share of the training data (default: profile's)")
    p.add_argument(
        "--protocol",
        choices=("validation", "paper"),
        default="validation",
        help="validation (default): the epoch is chosen on a validation split, the test set touched once at the end; "
        "paper: the papers' protocol — full training split, best-epoch TEST accuracy (optimistic) beside the final",
    )
    p.add_argument(
        "--augment-preset",
        help="the recipe's named augmentation block: paper (the text) or public (the public code); default: its own",
    )
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
    p.add_argument(
        "--amp",
        default="auto",
        choices=("auto", "off", "bf16", "fp16"),
        help="autocast: auto = bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16/AMX), else fp32; "
        "off = fp32 (and contiguous on CPU)",
    )
    p.add_argument(
        "--channels-last",
        default="auto",
        choices=("auto", "on", "off"),
        help="memory format: auto = on CUDA and with bf16 autocast on CPU",
    )
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

    try:
        variant = model_kw_dict(args.model_kw, args.model)
    except (ValueError, KeyError) as exc:
        print(f"ferlib train: {exc}", file=sys.stderr)
        return 2
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
        init_partial=args.init_partial,
        model_kwargs=variant,
        augment=not args.no_augment,
        device=args.device,
        num_workers=args.workers,
        amp=args.amp,
        channels_last={"auto": None, "on": True, "off": False}[args.channels_last],
        compile=args.compile,
        cpu_threads=args.cpu_threads,
        progress=not args.no_progress,
        deterministic=not args.no_deterministic,
        save_every_epoch=args.save_every_epoch,
        run_dir=args.run_dir,
        resume=args.resume,
        protocol=args.protocol,
        augment_preset=args.augment_preset,
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
        if m.get("protocol") == "paper":
            print(
                f"seed {m['seed']} (paper protocol): best-epoch test accuracy {m['test_best_epoch']['accuracy']:.4f} "
                f"(epoch {m['best_epoch']}, OPTIMISTIC: the test set chose the epoch, as in the papers), final epoch "
                f"{m['test_final']['accuracy']:.4f}, macro-F1 {m['test_best_epoch']['macro_f1']:.4f}"
            )
            continue
        print(
            f"seed {m['seed']}: test accuracy {m['test_selected']['accuracy']:.4f} (epoch {m['best_epoch']} "
            f"chosen on validation), final epoch {m['test_final']['accuracy']:.4f}, "
            f"macro-F1 {m['test_selected']['macro_f1']:.4f}"
        )
    if len(result.runs) > 1:
        if result.runs[0].metrics.get("protocol") == "paper":
            print("paper protocol: test_selected is the best TEST epoch of each seed (optimistic)")
        for key in ("test_selected.accuracy", "test_selected.macro_f1", "test_final.accuracy"):
            print(f"{key}: {format_mean_std(result.summary[key])} % over {len(result.runs)} seeds")
    return 0
