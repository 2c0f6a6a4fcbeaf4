"""``ferlib`` command line: thin — parse, call into the library, print (``--json`` for machines).

Each subcommand lives in ``ferlib/commands/<name>.py`` and exposes
``register(subparsers) -> None`` which adds its parser and sets ``func`` (returning an exit code).

Errors from user input (ferlib's own :class:`~ferlib.runs.DeviceUnavailableError` and
:class:`~ferlib.fileio.FileInUseError`, ``ValueError``,
``FileNotFoundError``/``FileExistsError``/``NotADirectoryError``, ``KeyError``, ``TypeError``, a full disk)
end as one line ``ferlib <command>: <message>`` and exit code 2; ``ferlib --debug …`` (or ``FERLIB_DEBUG=1``)
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

#: Subcommand modules, in the order ``ferlib --help`` lists them.
COMMANDS = ("data", "landmarks", "models", "train", "evaluate", "robustness", "study")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferlib",
        description="Attention-based facial expression recognition: data, landmarks, models, "
        "training, evaluation and the notebook study.",
    )
    from ferlib import __version__

    parser.add_argument("--version", action="version", version=f"ferlib {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the Python traceback of an error instead of the one-line message"
    )
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
    except Exception as exc:
        message = user_error_message(exc)
        if message is None or args.debug or os.environ.get("FERLIB_DEBUG"):
            raise
        print(f"ferlib {args.command}: {message}", file=sys.stderr)
        return 2


#: Exception types that come from what the user gave (options, files, folders), not from a bug in ferlib.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    KeyError,
    TypeError,
)


def user_error_message(exc: BaseException) -> str | None:
    """The one-line message for an error caused by user input, or None for anything else (a bug: traceback)."""
    from ferlib.fileio import FileInUseError
    from ferlib.runs import DeviceUnavailableError

    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        if str(exc.strerror or "").startswith("no space left"):
            return str(exc.strerror)  # ferlib's own: names the file and what is intact
        name = f" while writing {exc.filename}" if exc.filename else ""
        return f"no space left on device{name}; free some space and rerun (finished files are intact)"
    if not isinstance(exc, (DeviceUnavailableError, FileInUseError, *USER_ERRORS)):
        return None
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])  # str(KeyError) adds quotes around the message
    elif isinstance(exc, OSError) and exc.strerror and exc.filename and str(exc.filename) not in str(exc.strerror):
        text = f"{exc.strerror}: {exc.filename}"
    else:
        text = str(exc)
    return " ".join(text.split()) or type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
