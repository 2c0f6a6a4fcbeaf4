"""``ferlib data list|verify|synth|occlude|cache``: dataset manifests, checks and materialised copies.

Thin: parse, call :mod:`ferlib.data` / :mod:`ferlib.occlusion`, print (``--json`` for machines).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="list dataset manifests, verify a local copy, materialise SynthFER or an occluded copy, build a cache",
        description="Datasets: manifests (data_manifests/*.yaml), verification of a local copy, the SynthFER "
        "synthetic dataset, occluded copies and the decoded-image cache.",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")

    p = sub.add_parser("list", help="list the dataset manifests")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_list)

    p = sub.add_parser(
        "verify",
        help="check a local dataset copy against its manifest",
        description="Check layout, label parsing, counts against the manifest's split sizes and that "
        "every image decodes. Exits 1 when a problem is found, 2 when a split has no images at all (or the "
        "dataset name is unknown); every message names the file, the expectation and the fix.",
    )
    p.add_argument("name", help="manifest name (see `ferlib data list`)")
    p.add_argument("--root", required=True, help="folder of your local copy, in the official layout")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--no-decode", action="store_true", help="skip decoding the images (layout, labels, counts only)")
    p.add_argument("--max-images", type=int, default=None, help="decode at most this many images per split")
    p.add_argument("--list-file", default=None, help="RAN list file (ran_* manifests; default <root>/RAN/<file>)")
    p.set_defaults(func=run_verify)

    p = sub.add_parser("synth", help="materialise SynthFER (synthetic) as an image folder with a manifest")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, required=True, help="number of (training) images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="both", help="train, val, test or both (train + test; default)")
    p.add_argument("--n-test", type=int, default=None, help="test images with --split both (default max(classes, n/4))")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--num-classes", type=int, default=7, choices=(7, 8))
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers for rendering")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_synth)

    p = sub.add_parser("occlude", help="write an occluded copy of a dataset (mask, sunglasses, hand, random)")
    p.add_argument("dataset", help="manifest name, e.g. rafdb or synthfer")
    p.add_argument("--kind", required=True, help="mask, sunglasses, hand or random")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--root", default=None, help="local copy of the dataset (not needed for synthfer)")
    p.add_argument("--split", default="test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=None, help="synthfer without --root: number of images")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--num-classes", type=int, default=7, choices=(7, 8))
    p.add_argument("--landmarks-file", default=None, help="landmarks to place the occluders (see ferlib landmarks)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_occlude)

    p = sub.add_parser("cache", help="decode and resize a dataset once into a memory-mapped cache")
    p.add_argument("name")
    p.add_argument("--root", default=None)
    p.add_argument("--split", default="train")
    p.add_argument("--cache-dir", default=".cache/ferlib", help="where caches live (default .cache/ferlib)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--num-classes", type=int, default=7, choices=(7, 8))
    p.add_argument("--on-corrupt", default="error", choices=("error", "skip"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_cache)

    parser.set_defaults(func=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _fail(message: str, action: str = "") -> int:
    """A refusal: ``ferlib data <action>: <message>`` on stderr, exit code 2."""
    print(f"ferlib data{' ' + action if action else ''}: {message}", file=sys.stderr)
    return 2


def run_list(args: argparse.Namespace) -> int:
    from ferlib.data.manifests import list_manifests, load_manifest

    manifests = [load_manifest(n) for n in list_manifests()]
    if args.json:
        _print_json(
            [
                {
                    "name": m.name,
                    "title": m.title,
                    "loader": m.loader,
                    "num_classes": m.num_classes,
                    "splits": dict(m.splits),
                    "landmarks": m.landmarks,
                    "request": m.request,
                }
                for m in manifests
            ]
        )
        return 0
    width = max(len(m.name) for m in manifests)
    for m in manifests:
        splits = ", ".join(f"{k} {v:,}" for k, v in m.splits.items()) or "any size"
        print(f"{m.name:<{width}}  {m.title}  [{splits}]")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from ferlib.data.datasets import DatasetError
    from ferlib.data.verify import verify_dataset

    kw = {"list_file": args.list_file} if args.list_file else {}
    try:
        report = verify_dataset(
            args.name, args.root, decode=not args.no_decode, max_images=args.max_images, progress=not args.json, **kw
        )
    except (KeyError, DatasetError) as exc:
        return _fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc), "verify")
    if args.json:
        _print_json(report.as_dict())
    else:
        print(report.summary())
    if report.empty:
        empty = [p for p in report.problems if p.kind == "empty"]
        first = empty[0]
        return _fail(
            f"{first.file}: {first.expectation}; {len(empty)} split(s) without images. Fix: {first.fix}", "verify"
        )
    return 0 if report.ok else 1


def run_synth(args: argparse.Namespace) -> int:
    from ferlib.data.synthfer import materialise

    path = materialise(
        args.out,
        n=args.n,
        seed=args.seed,
        split=args.split,
        image_size=args.image_size,
        num_classes=args.num_classes,
        n_test=args.n_test,
        num_workers=args.workers,
        progress=not args.json,
    )
    if args.json:
        _print_json({"manifest": str(path)})
    else:
        print(f"SynthFER (synthetic) written: {path}")
        print(f"load it with build_dataset('synthfer', split, root={args.out!r})")
    return 0


def run_occlude(args: argparse.Namespace) -> int:
    from ferlib.data.datasets import DatasetError, build_dataset
    from ferlib.occlusion import materialise_occluded

    kw: dict[str, Any] = {}
    if args.n is not None:
        kw["n"] = args.n
    try:
        dataset = build_dataset(
            args.dataset,
            args.split,
            args.root,
            num_classes=args.num_classes,
            image_size=args.image_size,
            landmarks_file=args.landmarks_file,
            **kw,
        )
        path = materialise_occluded(dataset, args.kind, args.out, seed=args.seed, progress=not args.json)
    except (DatasetError, ValueError) as exc:
        return _fail(str(exc), "occlude")
    if args.json:
        _print_json({"manifest": str(path), "n": len(dataset)})
    else:
        print(f"occluded copy ({args.kind}) of {args.dataset}/{args.split} written: {path}")
        print(f"load it with build_dataset('synthfer', '{args.split}', root={args.out!r})")
    return 0


def run_cache(args: argparse.Namespace) -> int:
    from ferlib.data.cache import cached_dataset
    from ferlib.data.datasets import DatasetError, build_dataset

    try:
        dataset = build_dataset(
            args.name,
            args.split,
            args.root,
            num_classes=args.num_classes,
            image_size=args.image_size,
            on_corrupt=args.on_corrupt,
        )
        cache = cached_dataset(dataset, args.cache_dir, progress=not args.json)
    except (DatasetError, ValueError) as exc:
        return _fail(str(exc), "cache")
    report = getattr(dataset, "report", None)
    info = {
        "path": str(cache.path),
        "n": len(cache),
        "built_now": cache.built_now,
        "skipped": cache.skipped,
    }
    if args.json:
        _print_json(info)
    else:
        print(f"cache {'built' if cache.built_now else 'already present'}: {cache.path} ({len(cache)} images)")
        if info["skipped"]:
            print(
                f"skipped {info['skipped']} problem item(s)" + (f": {report.summary()}" if report is not None else "")
            )
    return 0
