"""One process holds the embedded index; another one is told which process and what to do.

Qdrant Edge opens a shard from one process only (its WAL is locked). The first process that
opens the index takes an exclusive ``flock`` on ``<index>/holder.lock`` and writes its pid and
command line there; a second process reads them back into one clear ``StoreBusyError``. The
kernel drops the lock when the holder exits, however it exits (SIGKILL included).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vistarag.agent.errors import StoreBusyError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: Edge's own WAL lock still refuses
    fcntl = None  # type: ignore[assignment]


def _command() -> str:
    try:
        raw = Path(f"/proc/{os.getpid()}/cmdline").read_bytes()
        args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    except OSError:
        args = sys.argv
    return " ".join(args)[:300]


def hold(folder: Path) -> int | None:
    """Take the index for this process; returns the lock's file descriptor (keep it open)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "holder.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if fcntl is None:
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 4096).decode(errors="replace").strip() or "unknown process"
        os.close(fd)
        raise StoreBusyError(busy_message(folder, holder)) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}: {_command()}\n".encode(), 0)
    return fd


def busy_message(folder: Path, holder: str) -> str:
    return (
        f"the index in {folder} is open in another process ({holder}). The embedded index "
        "(Qdrant Edge) serves one process at a time: stop that process, or use it (the chat "
        "answers searches too), or run a Qdrant server and set QDRANT_URL for concurrent use."
    )


def release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the only descriptor drops the flock
