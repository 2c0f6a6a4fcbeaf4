"""``ferlib`` command line: thin — parse, call into the library, print (``--json`` for machines).

Each subcommand lives in ``ferlib/commands/<name>.py`` and exposes
``register(subparsers) -> None`` which adds its parser and sets ``func`` (returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand modules, in the order ``ferlib --help`` lists them.
COMMANDS = ("data", "landmarks", "models", "train", "evaluate", "study")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferlib",
        description="Attention-based facial expression recognition: data, landmarks, models, "
        "training, evaluation and the notebook study.",
    )
    from ferlib import __version__

    parser.add_argument("--version", action="version", version=f"ferlib {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"ferlib.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; finished work is kept and a rerun resumes it", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
