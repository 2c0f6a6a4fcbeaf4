"""``ferlib models [--json] [NAME ...]``: every registered model with its parameters and GMACs per
part (measured by :func:`ferlib.models.profile.profile_model` at 224 px) beside the papers' claims."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the models with parameters and GMACs per part beside the papers' claims",
        description="List registered models with measured parameters and GMACs (FlopCounterMode FLOPs / 2, "
        "one 224×224 image) per part, side by side with the figures the papers and public codes claim.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="models to profile (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    parser.add_argument("--num-classes", type=int, default=7, help="classifier size (default 7)")
    parser.set_defaults(func=run)


def _claim(claims: dict[str, Any], kind: str, part: str) -> float | None:
    """A claimed figure for ``part`` ("total" or a part name) in absolute parameters or GMACs.

    Understands ``claims[kind]`` (a number for the total or a ``{part: value}`` dict, absolute
    units) and, failing that, any dict-valued claim whose name contains ``gmacs`` (GMACs) or
    ``params_M`` (millions of parameters), e.g. ``public_code_params_M_per_part``."""
    value = claims.get(kind)
    if isinstance(value, dict):
        value = value.get(part)
    elif part != "total":
        value = None
    if isinstance(value, (int, float)):
        return float(value)
    for key, entry in claims.items():
        if not isinstance(entry, dict):
            continue
        if kind == "gmacs" and "gmacs" in key.lower() and isinstance(entry.get(part), (int, float)):
            return float(entry[part])
        if kind == "params" and "params_m" in key.lower() and isinstance(entry.get(part), (int, float)):
            return float(entry[part]) * 1e6
    return None


def _fmt(value: float | None, scale: float = 1.0, digits: int = 2) -> str:
    return "-" if value is None else f"{value / scale:.{digits}f}"


def _other_claims(claims: dict[str, Any]) -> str:
    rest = {k: v for k, v in claims.items() if k not in ("params", "gmacs")}
    return "; ".join(f"{k}={json.dumps(v) if isinstance(v, (dict, list)) else v}" for k, v in rest.items())


def format_table(profiles: list[dict[str, Any]]) -> str:
    """A plain-text table: one row per model part, measured beside claimed."""
    header = f"{'model':<14} {'part':<16} {'params M':>9} {'claim M':>9} {'GMACs':>7} {'claim':>7}"
    lines = [header, "-" * len(header)]
    for prof in profiles:
        claims = prof["claims"]
        for part in prof["params"]:
            lines.append(
                f"{prof['name'] if part == 'total' else '':<14} {part:<16} "
                f"{_fmt(prof['params'][part], 1e6):>9} {_fmt(_claim(claims, 'params', part), 1e6):>9} "
                f"{_fmt(prof['gmacs'].get(part), 1.0, 3):>7} {_fmt(_claim(claims, 'gmacs', part), 1.0, 3):>7}"
            )
        lines.append(f"{'':<14} exact params: {prof['params']['total']:,}")
        other = _other_claims(claims)
        if other:
            lines.append(f"{'':<14} claims: {other}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ferlib.models import list_models
    from ferlib.models.profile import profile_model

    available = list_models()
    names = args.names or available
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"unknown model(s): {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    profiles = [
        profile_model(name, num_classes=args.num_classes)
        for name in tqdm(names, desc="profiling models", unit="model", disable=len(names) < 2, file=sys.stderr)
    ]
    if args.json:
        print(json.dumps(profiles, indent=2, default=str))
    else:
        print(format_table(profiles))
        print("GMACs = FlopCounterMode FLOPs / 2 at one 224×224 image; parameters exclude BN buffers.")
    return 0
