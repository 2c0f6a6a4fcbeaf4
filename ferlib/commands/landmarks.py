"""``ferlib landmarks <image|dir|dataset>``: extract 5-point landmarks into a resumable landmarks file.

Examples::

    ferlib landmarks photo.jpg --json
    ferlib landmarks ~/data/RAF-DB/basic/Image/aligned --out landmarks/rafdb-mtcnn.jsonl
    ferlib landmarks rafdb --root ~/data/RAF-DB --split test --backend retinaface --weights mobilenet0.25_Final.pth
    ferlib landmarks synthfer --n 500 --backend annotations

An interrupted run (Ctrl-C, SIGKILL) is continued by running the same command again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "landmarks",
        help="detect 5-point landmarks for an image, a folder or a dataset (cached, resumable)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "source", help="an image file, a folder of images (recursive), or a dataset name (see `ferlib data list`)"
    )
    p.add_argument(
        "--backend",
        default="mtcnn",
        help="landmark backend: mtcnn (default), retinaface, retina-face (PyPI package), annotations",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="landmarks file (JSON lines) to write; default landmarks/<source>-<backend>[-<split>].jsonl",
    )
    p.add_argument(
        "--csv",
        type=Path,
        default=None,
        help="also export path,lm5 CSV for `build_dataset(..., landmarks_file=CSV)` (folder/file extraction only)",
    )
    p.add_argument(
        "--weights",
        default=None,
        help="RetinaFace checkpoint (retinaface: mobilenet0.25_Final.pth or Resnet50_Final.pth; "
        "retina-face: retinaface.pth, default $DEEPFACE_HOME/.deepface/weights/retinaface.pth)",
    )
    p.add_argument("--score-threshold", type=float, default=None, help="minimum face score (retinaface: default 0.5)")
    p.add_argument(
        "--min-face-size", type=int, default=None, help="mtcnn: smallest face in pixels (default 20; larger is faster)"
    )
    p.add_argument("--batch-size", type=int, default=16, help="images per detector call (default 16)")
    p.add_argument(
        "--fallback",
        choices=("template", "none"),
        default="template",
        help="no face found: use the canonical template points (default; right for aligned crops) or none",
    )
    p.add_argument("--root", default=None, help="dataset: folder of your local copy")
    p.add_argument("--split", default="train", help="dataset split (default train)")
    p.add_argument("--image-size", type=int, default=224, help="dataset: image size the samples are resized to")
    p.add_argument("--n", type=int, default=None, help="synthfer: number of samples")
    p.add_argument("--seed", type=int, default=0, help="synthfer: seed")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (per worker with --workers; default 1 for mtcnn, torch's choice otherwise)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run mtcnn/retinaface in N single-threaded processes (e.g. one per core); 0 = in this process",
    )
    p.add_argument("--device", default="cpu", help="mtcnn/retinaface device (cpu, cuda, auto)")
    p.add_argument(
        "--repair",
        action="store_true",
        help="--out is damaged: keep its readable records (the damaged file is moved to <out>.damaged) and go on",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def _default_out(args: argparse.Namespace, is_path: bool) -> Path:
    name = (Path(args.source).resolve().stem or "images") if is_path else args.source
    suffix = "" if is_path else f"-{args.split}"
    return Path("landmarks") / f"{name}-{args.backend}{suffix}.jsonl"


def _refuse(message: str) -> int:
    print(f"ferlib landmarks: {message}", file=sys.stderr)
    return 2


def _image_entry(rec: dict[str, Any]) -> dict[str, Any]:
    """One image of ``--json``: its status and every face (box, score, five points)."""
    from ferlib.landmarks.extract import record_faces

    entry = {k: rec.get(k) for k in ("path", "status", "width", "height", "n_faces", "fallback")}
    entry["faces"] = record_faces(rec)
    if rec.get("error"):
        entry["error"] = rec["error"]
    return entry


def run(args: argparse.Namespace) -> int:
    import torch

    from ferlib.data.landmark_files import LandmarksFileError
    from ferlib.landmarks import create_detector, extract_landmarks
    from ferlib.landmarks.base import detector_class
    from ferlib.landmarks.journal import ExtractionLockedError
    from ferlib.runs import resolve_device

    if args.batch_size < 1:
        return _refuse(f"--batch-size must be at least 1, got {args.batch_size}")
    try:
        backend_cls = detector_class(args.backend)
    except ValueError as exc:
        return _refuse(f"{exc} (--backend)")
    is_path = Path(args.source).exists()
    if is_path and backend_cls.needs_samples:
        return _refuse(
            f"the {args.backend!r} backend reads the landmarks a dataset ships, so it needs a dataset name "
            f"(e.g. `ferlib landmarks synthfer --backend annotations`), not the image/folder {args.source}; "
            "use --backend mtcnn or retinaface for image files"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    elif args.backend == "mtcnn":
        # MTCNN's small convolutions gain little from intra-op threads and, on a shared CPU, two
        # threads measured 5x slower than one; --workers is the way to use more cores.
        torch.set_num_threads(1)
    options: dict[str, Any] = {}
    if args.backend in ("mtcnn", "retinaface"):
        try:
            options["device"] = str(resolve_device(args.device))
        except (RuntimeError, ValueError) as exc:
            return _refuse(str(exc))
    if args.backend in ("retinaface", "retina-face"):
        if args.weights is not None or args.backend == "retinaface":
            options["weights"] = args.weights
        if args.score_threshold is not None:
            options["score_threshold"] = args.score_threshold
    elif args.backend == "mtcnn":
        if args.score_threshold is not None:
            options["min_score"] = args.score_threshold
        if args.min_face_size is not None:
            options["min_face_size"] = args.min_face_size
    try:
        if args.workers and args.backend != "annotations":
            from ferlib.landmarks.parallel import DetectorPool

            detector = DetectorPool(args.backend, workers=args.workers, threads=args.threads or 1, **options)
        else:
            detector = create_detector(args.backend, **options)
    except (ValueError, FileNotFoundError, ImportError, RuntimeError) as exc:
        return _refuse(str(exc))

    if is_path:
        source: Any = args.source
    else:
        from ferlib.data.datasets import build_dataset

        kw: dict[str, Any] = {}
        if args.n is not None:
            kw["n"] = args.n
        if args.root is None:
            kw["seed"] = args.seed
        try:
            source = build_dataset(args.source, split=args.split, root=args.root, image_size=args.image_size, **kw)
        except (ValueError, FileNotFoundError, KeyError, TypeError) as exc:
            if hasattr(detector, "close"):
                detector.close()
            return _refuse(f"{args.source!r} is neither an existing image/folder nor a usable dataset: {exc}")
    out = args.out or _default_out(args, is_path)
    try:
        report = extract_landmarks(
            source,
            out,
            detector=detector,
            batch_size=args.batch_size,
            fallback=args.fallback,
            progress=not args.no_progress,
            repair=args.repair,
        )
    except (LandmarksFileError, ExtractionLockedError) as exc:
        return _refuse(str(exc))
    finally:
        if hasattr(detector, "close"):
            detector.close()
    summary = report.to_dict()
    if is_path and Path(args.source).is_file():
        summary["images"] = [_image_entry(r) for r in report.records]
    if args.csv is not None:
        from ferlib.landmarks import load_landmarks_file
        from ferlib.landmarks.extract import write_landmarks_csv

        csv_path, left_out = write_landmarks_csv(load_landmarks_file(out).values(), args.csv)
        summary["csv"] = {"path": str(csv_path), "left_out": left_out}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        c = report.counts
        print(
            f"{report.total} image(s) → {report.out}: {report.computed} computed, {report.reused} reused "
            f"({report.images_per_second:.1f} img/s)\n"
            f"  one face: {c['ok']}, several faces (largest/most central kept): {c['multiple_faces']}, "
            f"no face: {c['no_face']}, too small for the detector: {c['too_small']} "
            f"({c['fallback']} given template points, flagged), unreadable: {c['unreadable']}, "
            f"detector errors: {c['detector_error']} (retried by a rerun)"
        )
        for entry in summary.get("images", []):
            for k, face in enumerate(entry["faces"]):
                pts = " ".join(f"({x:.1f},{y:.1f})" for x, y in face["landmarks5"])
                print(f"  {entry['path']} face {k}: box {face['box']} score {face['score']:.3f} points {pts}")
        if "csv" in summary:
            print(
                f"  CSV for build_dataset(landmarks_file=...): {summary['csv']['path']} "
                f"({summary['csv']['left_out']} record(s) without file-pixel points left out)"
            )
    return 0
