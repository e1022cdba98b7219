"""Locks shared by threads and processes: a re-entrant thread lock plus an ``flock`` on a file.

``path_lock(path)`` is one lock per lock file in this process: a thread takes the thread lock
first, then (on its outermost entry only) an exclusive ``fcntl.flock`` on the file, so two
threads of one process, or two processes on one data dir, never run the guarded code at once.
Where ``fcntl`` is missing (Windows) it serialises threads only.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: threads only
    fcntl = None  # type: ignore[assignment]

_registry: dict[str, PathLock] = {}
_registry_lock = threading.Lock()


class PathLock:
    """A re-entrant lock held across threads (RLock) and processes (``flock`` on ``path``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def acquire(self) -> None:
        self._thread_lock.acquire()
        try:
            if self._depth == 0:
                self._fd = _open_locked(self.path)
            self._depth += 1
        except BaseException:
            self._thread_lock.release()
            raise

    def release(self) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)  # closing the only descriptor drops the flock
        finally:
            self._thread_lock.release()

    def __enter__(self) -> PathLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _open_locked(path: Path) -> int | None:
    """Open (creating, 0600) the lock file and wait for an exclusive flock on it."""
    if fcntl is None:
        return None
    if not path.parent.is_dir():
        from vistarag.agent.settings import private_dir  # 0700 folders, like the data dir

        private_dir(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise OSError(
            exc.errno, f"cannot open the lock file {path} ({exc.strerror}): check that the "
            "data dir is writable (VISTARAG_HOME)"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


def path_lock(path: Path) -> PathLock:
    """The process-wide lock for this lock file (the same object for the same path)."""
    key = str(Path(path).absolute())
    with _registry_lock:
        lock = _registry.get(key)
        if lock is None:
            lock = _registry[key] = PathLock(Path(key))
        return lock
