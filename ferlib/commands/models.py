"""``ferlib models [--json] [NAME ...]``: every registered model with its parameters and GMACs per
part (measured by :func:`ferlib.models.complexity.model_complexity` at 224 px) beside the figures its
paper card states (the paper's own, and reference figures such as the public code's)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

#: Shown where a paper states no figure (distinct from a figure ferlib could not measure).
NOT_STATED = "n/s"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the models with parameters and GMACs per part beside the papers' claims",
        description="List registered models with measured parameters and GMACs (FlopCounterMode FLOPs / 2, "
        "one 224×224 image) per part, side by side with the figures the papers state (paper) and reference "
        "figures from the paper cards (ref: e.g. measured on the public code).",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="models to profile (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    parser.add_argument("--num-classes", type=int, default=7, help="classifier size (default 7)")
    parser.set_defaults(func=run)


def _fmt(value: float | None, scale: float = 1.0, digits: int = 2, missing: str = "-") -> str:
    return missing if value is None else f"{value / scale:.{digits}f}"


def format_table(profiles: list[dict[str, Any]]) -> str:
    """A plain-text table, one row per model part: measured, the paper's figure, a reference figure.

    ``profiles`` are :func:`~ferlib.models.complexity.model_complexity` results; their ``"claims"``
    come from the paper card. A total the paper does not state reads ``n/s``.
    """
    header = (
        f"{'model':<12} {'part':<15} {'params M':>9} {'paper M':>8} {'ref M':>7} "
        f"{'GMACs':>7} {'paper G':>7} {'ref G':>6}"
    )
    lines = [header, "-" * len(header)]
    for prof in profiles:
        claims = prof["claims"]
        for part in prof["params"]:
            missing = NOT_STATED if part == "total" else "-"
            lines.append(
                f"{prof['name'] if part == 'total' else '':<12} {part:<15} "
                f"{_fmt(prof['params'][part], 1e6):>9} "
                f"{_fmt(claims['params'].get(part), 1e6, missing=missing):>8} "
                f"{_fmt(claims['reference_params'].get(part), 1e6):>7} "
                f"{_fmt(prof['gmacs'].get(part), 1.0, 3):>7} "
                f"{_fmt(claims['gmacs'].get(part), 1.0, 2, missing=missing):>7} "
                f"{_fmt(claims['reference_gmacs'].get(part), 1.0, 2):>6}"
            )
        lines.append(f"{'':<12} exact params: {prof['params']['total']:,}; paper: {prof['paper']}")
        for note in claims["notes"]:
            lines.append(f"{'':<12} note: {note}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ferlib.models import list_models
    from ferlib.models.complexity import model_complexity

    available = list_models()
    names = args.names or available
    unknown = [n for n in names if n not in available]
    if unknown:
        print(
            f"ferlib models: unknown model(s): {', '.join(unknown)}; available: {', '.join(available)}",
            file=sys.stderr,
        )
        return 2
    if args.num_classes < 1:
        print(f"ferlib models: --num-classes must be a positive integer, got {args.num_classes}", file=sys.stderr)
        return 2
    profiles = [
        model_complexity(name, num_classes=args.num_classes)
        for name in tqdm(names, desc="measuring models", unit="model", disable=len(names) < 2, file=sys.stderr)
    ]
    if args.json:
        print(json.dumps(profiles, indent=2, default=str))
    else:
        print(format_table(profiles))
        print(
            f"GMACs = FlopCounterMode FLOPs / 2 at one 224×224 image; parameters exclude BN buffers; "
            f"{NOT_STATED} = the paper states no figure; ref = reference figure of the paper card (see notes)."
        )
    return 0
