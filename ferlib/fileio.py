"""Atomic file writes: a crash or SIGKILL never leaves a half-written file behind.

Every writer goes to a temporary file in the same directory, flushes and fsyncs it, then
``os.replace``s it over the target (atomic on POSIX file systems). The temporary file is named
``.<name>.<pid>.<random>.tmp``: a writer killed mid-write (SIGKILL, power loss) leaves it behind, and
:func:`remove_stale_temp_files` removes those of writers that are no longer alive. A full disk ends as an
``OSError(ENOSPC)`` that names the file, with the previous version of the file untouched.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class FileInUseError(RuntimeError):
    """Another process holds the lock of a file this one was asked to write (e.g. a concurrent extraction)."""


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; give the final file the usual umask-derived mode (0644 typically).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise OSError(
            errno.ENOSPC,
            f"no space left on device while writing {path}; the previous version of it (if any) is intact",
            str(path),
        ) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    text = json.dumps(obj, indent=indent, default=_json_default, sort_keys=False)
    return atomic_write_text(path, text + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically. The bytes are serialised in memory first, so a full disk surfaces as a plain
    ``OSError(ENOSPC)`` naming ``path`` (torch's own writer reports it as "inline_container.cc … unexpected pos")."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getbuffer())


_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")
_OLD_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp$")  # before the writer's pid was in the name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(folder: str | os.PathLike, older_than_s: float = 3600.0, note: bool = True) -> list[Path]:
    """Remove the temporary files that writers killed mid-write left in ``folder`` (not recursive).

    A file ``.<name>.<pid>.<random>.tmp`` is stale when process ``pid`` is gone; one without a pid (written
    by an older ferlib) when it is older than ``older_than_s``. Prints one note to stderr naming what went.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for f in sorted(folder.iterdir()):
        if not f.is_file():
            continue
        m = _TEMP_NAME.match(f.name)
        if m:
            stale = int(m["pid"]) != os.getpid() and not _alive(int(m["pid"]))
        elif _OLD_TEMP_NAME.match(f.name):
            stale = time.time() - f.stat().st_mtime > older_than_s
        else:
            continue
        if stale:
            f.unlink(missing_ok=True)
            removed.append(f)
    if removed and note:
        print(
            f"note: removed {len(removed)} unfinished temporary file(s) left in {folder} by an interrupted "
            f"write: {', '.join(f.name for f in removed)}",
            file=sys.stderr,
        )
    return removed
