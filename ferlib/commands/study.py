"""``ferlib study``: run the five study notebooks headlessly (papermill) into one run folder.

Examples::

    ferlib study                                   # default profile, SynthFER, all notebooks
    ferlib study --profile smoke --check           # CI: smoke run + regression check
    ferlib study --profile full --dataset rafdb --root ~/data/RAF-DB --device cuda
    ferlib study --notebooks 03,04 --models ma-net,lan -p epochs=3
    ferlib study --sweep sweeps/lambda.yaml        # one study per parameter set
    ferlib study --check-run runs/20260101-120000-study   # check an existing run only
    ferlib study --profile lecture --run-dir runs/lecture --resume   # rerun the notebooks, reuse finished training
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ferlib.profiles import PROFILES


def _notebook_names(text: str) -> tuple[str, ...]:
    from ferlib.study import NOTEBOOKS

    names = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        matches = [nb for nb in NOTEBOOKS if nb == part or nb.startswith(part)]
        if len(matches) != 1:
            raise argparse.ArgumentTypeError(
                f"{part!r} names {'no' if not matches else 'several'} study notebook(s); "
                f"use a number or name from {', '.join(NOTEBOOKS)}"
            )
        names.append(matches[0])
    return tuple(names)


def _ineffective_options(args: argparse.Namespace) -> str | None:
    """An option the user gave that this combination would ignore (refused rather than ignored)."""
    if args.check_run:
        given = [
            opt
            for opt, value in (
                ("--sweep", args.sweep),
                ("--check", args.check),
                ("--run-dir", args.run_dir),
                ("--overwrite", args.overwrite),
                ("--resume", args.resume),
                ("--models", args.models),
                ("--notebooks", args.notebooks),
                ("-p", args.parameter),
                ("--update-notebooks", args.update_notebooks),
                ("--cell-timeout", args.cell_timeout),
                ("--dataset", args.dataset),
                ("--root", args.root),
                ("--device", args.device),
                ("--seed", args.seed is not None),
            )
            if value
        ]
        if given:
            return f"--check-run only checks an existing run; {', '.join(given)} would have no effect: leave them out"
    if args.sweep:
        given = [o for o, v in (("--check", args.check), ("--update-notebooks", args.update_notebooks)) if v]
        if given:
            return (
                f"{' and '.join(given)} apply to a single study, not to --sweep; run them on one set's folder "
                "(ferlib study --check-run <sweep folder>/<NN-name>)"
            )
    if args.baseline and not (args.check or args.check_run):
        return "--baseline is used only with --check or --check-run; add one of them or leave --baseline out"
    if args.resume and (not args.run_dir or args.overwrite or args.sweep):
        return (
            "--resume continues the single study in --run-dir (finished training runs are read back, not retrained): "
            "name that folder, and leave --overwrite and --sweep out"
        )
    if args.overwrite and not args.run_dir:
        return "--overwrite applies to --run-dir (a new runs/<stamp>-study/ folder is always empty); leave it out"
    return None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "study",
        help="run the study notebooks (papermill) into runs/<stamp>-study/ with a report",
        description="Run notebooks/01_landmarks … 06_robustness in order with papermill (kernel "
        "python3, cwd notebooks/) into runs/<stamp>-study/: executed notebooks, PNG figures, "
        "metrics.json and report.md/report.html. Stops at the first failing notebook.",
    )
    p.add_argument(
        "--profile", default=None, choices=tuple(PROFILES), help="study profile (default: $FERLIB_PROFILE or 'default')"
    )
    p.add_argument("--dataset", default=None, help="dataset manifest name (default synthfer)")
    p.add_argument("--root", default=None, help="folder holding the dataset (real datasets)")
    p.add_argument("--models", default=None, help="comma-separated model names (default: the profile's models)")
    p.add_argument("--device", default=None, help="auto (default) | cpu | cuda | cuda:N | mps")
    p.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    p.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra notebook parameter (YAML value), repeatable: -p epochs=3",
    )
    p.add_argument(
        "--notebooks", type=_notebook_names, default=None, help="subset to run, e.g. 01,02 (default: all five)"
    )
    p.add_argument(
        "--sweep", default=None, metavar="FILE.yaml", help="YAML list of parameter sets; runs the study once per set"
    )
    p.add_argument(
        "--check", action="store_true", help="compare the run's metrics with notebooks/baselines/<profile>_metrics.json"
    )
    p.add_argument(
        "--check-run",
        default=None,
        metavar="RUN_DIR",
        help="only check an existing run folder against the baseline (runs nothing)",
    )
    p.add_argument(
        "--baseline", default=None, help="baseline file (default: notebooks/baselines/<profile>_metrics.json)"
    )
    p.add_argument(
        "--run-dir",
        default=None,
        help="write into this folder instead of runs/<stamp>-study/ (refused if it holds a study; see --overwrite)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="with --run-dir: delete the study (or sweep) already in that folder first, so no old result survives",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="with --run-dir: run the notebooks again into the study already there (same profile, dataset and seed); "
        "training runs finished in it are read back instead of retrained, interrupted ones continue",
    )
    p.add_argument(
        "--notebook-dir", default=None, help="folder holding the notebooks (default: the checkout's notebooks/)"
    )
    p.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell before failing")
    p.add_argument(
        "--update-notebooks",
        action="store_true",
        help="after a successful run, copy the executed notebooks over notebooks/*.ipynb "
        "(cleaned for commit: no injected parameters, papermill/widget metadata or stderr)",
    )
    p.add_argument("--json", action="store_true", help="print the study result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferlib.profiles import profile_name

    problem = _ineffective_options(args)
    if problem:
        print(f"ferlib study: {problem}", file=sys.stderr)
        return 2
    from ferlib.study import (
        StudyConfig,
        baseline_path,
        check_run,
        check_study,
        export_notebooks,
        parse_parameter,
        run_study,
        run_sweep,
    )

    try:
        profile = profile_name(args.profile)
        if args.check_run and args.profile is None:
            # check against the baseline of the profile the run used
            cfg_file = Path(args.check_run) / "config.json"
            if cfg_file.exists():
                profile = profile_name(json.loads(cfg_file.read_text()).get("profile"))
    except ValueError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"ferlib study: {exc}", file=sys.stderr)
        return 2
    baseline = Path(args.baseline) if args.baseline else baseline_path(profile, args.notebook_dir)

    if args.check_run:
        try:
            result = check_run(args.check_run, baseline)
        except (FileNotFoundError, ValueError) as exc:
            if getattr(args, "debug", False):
                raise
            print(f"ferlib study: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(result.to_dict(), indent=2) if args.json else result.summary())
        return 0 if result.ok else 1

    try:
        params = dict(parse_parameter(t) for t in args.parameter)
    except ValueError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"ferlib study: {exc}", file=sys.stderr)
        return 2
    models = None
    if args.models:
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    kwargs = dict(
        profile=profile,
        dataset=args.dataset or "synthfer",
        data_root=args.root,
        models=models,
        device=args.device or "auto",
        seed=0 if args.seed is None else args.seed,
        parameters=params,
        notebook_dir=args.notebook_dir,
        cell_timeout=args.cell_timeout,
    )
    if args.notebooks:
        kwargs["notebooks"] = args.notebooks
    config = StudyConfig(**kwargs)
    echo = None if args.json else print

    if args.sweep:
        root, results = run_sweep(args.sweep, config, run_dir=args.run_dir, echo=echo, overwrite=args.overwrite)
        ok = all(r.ok for _, r in results)
        if args.json:
            print(
                json.dumps(
                    {"sweep_dir": str(root), "ok": ok, "sets": [{"set": k, **r.to_dict()} for k, r in results]},
                    indent=2,
                )
            )
        else:
            print(f"sweep report: {root / 'sweep.md'}")
        return 0 if ok else 1

    if not args.json:
        print(
            f"ferlib study: profile {profile}, dataset {config.dataset}"
            + (" (synthetic)" if config.dataset == "synthfer" else "")
        )
    try:
        study = run_study(config, run_dir=args.run_dir, echo=echo, overwrite=args.overwrite, resume=args.resume)
    except (FileNotFoundError, ValueError) as exc:
        if getattr(args, "debug", False):
            raise
        print(f"ferlib study: {exc}", file=sys.stderr)
        return 2
    if args.check and study.failed is None:
        try:
            check_study(study, baseline)
        except (FileNotFoundError, ValueError) as exc:
            if getattr(args, "debug", False):
                raise
            print(f"ferlib study: {exc}", file=sys.stderr)
            return 2
    if args.update_notebooks and study.failed is None:
        written = export_notebooks(study.run_dir, args.notebook_dir)
        if not args.json:
            print("updated " + ", ".join(str(p.name) for p in written))
    if args.json:
        print(json.dumps(study.to_dict(), indent=2))
    else:
        if study.failed is not None:
            print("FAILED: " + study.failed.failure_message(), file=sys.stderr)
        if study.check is not None:
            print(study.check.summary())
        print(f"report: {study.run_dir / 'report.md'} (and report.html)")
    return 0 if study.ok else 1
