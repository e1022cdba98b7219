"""One process holds the embedded index; the others go through it, or are told who holds it.

Qdrant Edge opens a shard from one process only (its WAL is locked). The first process that
opens the index takes an exclusive ``flock`` on ``<index>/holder.lock`` and writes its pid and
command line there, and, when it serves the index to other processes (``remote``), the path of
its socket. A second process reads them back: it connects to that socket, or raises one clear
``StoreBusyError``. The kernel drops the lock when the holder exits, however it exits (SIGKILL
included).

``holder.lock`` holds lines ``pid N: COMMAND`` and, while the holder serves,
``socket PATH`` (``socket pending`` between taking the lock and listening).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vistarag.agent.errors import StoreBusyError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: Edge's own WAL lock still refuses
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "holder.lock"
PENDING = "pending"
_intent = threading.local()  # set by ``will_serve``: hold() announces a socket to come
_held: dict[str, int] = {}  # folder -> the lock's descriptor, while this process holds it
_on_release: dict[int, Callable[[], None]] = {}


@dataclass
class HolderInfo:
    """What ``holder.lock`` says about the process that holds the index."""

    line: str  # "pid N: COMMAND", as said to users
    pid: int | None
    command: str
    socket: str | None  # a path, PENDING, or None when the holder does not serve


def command_line() -> str:
    """This process's command line (300 characters at most)."""
    try:
        raw = Path(f"/proc/{os.getpid()}/cmdline").read_bytes()
        args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    except OSError:
        args = sys.argv
    return " ".join(args)[:300]


def parse(text: str) -> HolderInfo:
    """Read ``holder.lock``'s text (see the module docstring)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    first = lines[0] if lines else "unknown process"
    pid: int | None = None
    command = ""
    if first.startswith("pid "):
        head, _, command = first[4:].partition(":")
        pid = int(head) if head.strip().isdigit() else None
    sockets = [ln[7:].strip() for ln in lines[1:] if ln.startswith("socket ")]
    return HolderInfo(first, pid, command.strip(), sockets[-1] if sockets else None)


def read_holder(folder: Path) -> HolderInfo:
    """What ``<folder>/holder.lock`` says now (an empty file reads as an unknown process)."""
    try:
        return parse((folder / LOCK_FILE).read_text(errors="replace"))
    except OSError:
        return parse("")


@contextlib.contextmanager
def will_serve() -> Iterator[None]:
    """Within it, ``hold`` writes ``socket pending``: other processes wait for the socket."""
    _intent.on = True
    try:
        yield
    finally:
        _intent.on = False


def hold(folder: Path) -> int | None:
    """Take the index for this process; returns the lock's file descriptor (keep it open)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if fcntl is None:
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = parse(os.read(fd, 4096).decode(errors="replace")).line
        os.close(fd)
        raise StoreBusyError(busy_message(folder, holder)) from None
    _write(fd, PENDING if getattr(_intent, "on", False) else None)
    _held[str(folder.absolute())] = fd
    return fd


def _write(fd: int, socket: str | None) -> None:
    text = f"pid {os.getpid()}: {command_line()}\n" + (f"socket {socket}\n" if socket else "")
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def announce(folder: Path, socket: str | None, on_release: Callable[[], None] | None) -> bool:
    """Say in ``folder``'s lock file where this holder listens (None: it stopped serving), and
    what to run when the lock is released (stop the server); False when this process does not
    hold ``folder``."""
    fd = _held.get(str(folder.absolute()))
    if fd is None:
        return False
    _write(fd, socket)
    if on_release is None:
        _on_release.pop(fd, None)
    else:
        _on_release[fd] = on_release
    return True


def busy_message(folder: Path, holder: str, why: str = "") -> str:
    return (
        f"the index in {folder} is open in another process ({holder}){why}. The embedded index "
        "(Qdrant Edge) serves one process at a time: stop that process, or use it (the chat "
        "answers searches too), or run a Qdrant server and set QDRANT_URL for concurrent use."
    )


def release(fd: int | None) -> None:
    if fd is not None:
        for folder, held in list(_held.items()):
            if held == fd:
                del _held[folder]
        stop = _on_release.pop(fd, None)
        if stop is not None:
            stop()
        os.close(fd)  # closing the only descriptor drops the flock
