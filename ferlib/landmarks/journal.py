"""The journal of a running extraction: ``<out>.partial``, append-only, fsynced per batch, behind a lock.

Written by :func:`ferlib.landmarks.extract.extract_landmarks`; see that module's docstring ("Crash safety").
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

try:
    import fcntl  # POSIX advisory lock: refuse two runs writing the same journal
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from ferlib.fileio import FileInUseError, atomic_path


class ExtractionLockedError(FileInUseError):
    """Another ``ferlib landmarks`` run is writing the same ``--out``."""


def notice_stderr(message: str) -> None:
    print(f"ferlib landmarks: {message}", file=sys.stderr)


class ExtractionJournal:
    """Append-only JSONL journal: each batch is written, flushed and fsynced; exclusive lock.

    The lock file ``<journal>.lock`` holds the writer's process id. A lock file nobody holds (its
    process ended without cleaning up) is stale: it is taken over with a notice. The lock file is
    removed whenever the run ends, the journal only when its records are in the final file.
    """

    def __init__(self, path: Path, keep: list[dict], notice: Callable[[str], None] = notice_stderr) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = Path(str(path) + ".lock")
        while True:
            existed = self._lock_path.exists()
            self._lock = open(self._lock_path, "a+")
            try:
                if fcntl is not None:
                    fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._lock.seek(0)
                pid = self._lock.read().strip() or "?"
                self._lock.close()
                raise ExtractionLockedError(
                    f"another `ferlib landmarks` run (process {pid}) is writing {path}; "
                    "wait for it to finish or choose another --out"
                ) from None
            try:  # the holder may have removed the file between our open and our lock: lock the new one
                same = os.fstat(self._lock.fileno()).st_ino == os.stat(self._lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            self._lock.close()
        if existed:
            self._lock.seek(0)
            old = self._lock.read().strip() or "unknown"
            notice(f"removed a stale lock {self._lock_path} left by a run that ended (process {old})")
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(str(os.getpid()))
        self._lock.flush()
        if path.exists():
            # Drop a torn tail (SIGKILL mid-write) before appending, atomically.
            with atomic_path(path, suffix=".partial") as tmp:
                tmp.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in keep))
        self._fh = open(path, "a", encoding="utf-8")

    def append(self, records: Sequence[dict]) -> None:
        if not records:
            return
        self._fh.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self, remove: bool = False) -> None:
        self._fh.close()
        if remove and self.path.exists():
            self.path.unlink()
        try:
            self._lock_path.unlink(missing_ok=True)  # while still holding the lock
            if fcntl is not None:
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
        finally:
            self._lock.close()


__all__ = ["ExtractionJournal", "ExtractionLockedError", "notice_stderr"]
