"""Read an index folder's files into the OS page cache, from a child process.

A built Qdrant Edge shard keeps its vectors and payload indexes mapped, not loaded, so a new
process's first searches read each vector they touch from disk, a page at a time: at 541k
points the first 200 queries of a process took p50/p95 29/90 ms, later ones 7/13. One
sequential pass (``POSIX_FADV_WILLNEED``, 8 MB a call: the kernel's read-ahead cap) reads the
2.6 GB shard in about 1 s here. It runs in its own process because a thread would need the GIL
between calls, and a searching process holds it inside each query (the pass then took hundreds
of queries). This file imports nothing of VistaRAG: the child starts in milliseconds.

Run: ``python prefetch.py FOLDER``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

CHUNK = 8 << 20


def advise(folder: Path, advice: int, chunk: int = 0) -> int:
    """``posix_fadvise`` every file under ``folder`` with ``advice``, ``chunk`` bytes a call (0:
    the whole file in one); bytes advised. Files that vanish meanwhile (a swap, a merge) are
    skipped; not Linux: nothing is done."""
    advised = 0
    if not hasattr(os, "posix_fadvise"):
        return advised
    for path in sorted(Path(folder).rglob("*")):
        with contextlib.suppress(OSError):
            if not path.is_file():
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                size = os.fstat(fd).st_size
                for at in range(0, size, chunk or max(size, 1)):
                    os.posix_fadvise(fd, at, min(chunk, size - at) if chunk else 0, advice)
                advised += size
            finally:
                os.close(fd)
    return advised


def prefetch(folder: Path, chunk: int = CHUNK) -> int:
    """Ask the kernel to read every file under ``folder`` into the page cache; bytes asked."""
    return advise(folder, getattr(os, "POSIX_FADV_WILLNEED", 0), chunk)


def evict(folder: Path) -> int:
    """Drop ``folder``'s files from the page cache (the pages no process maps), as a reboot
    would; bytes advised."""
    return advise(folder, getattr(os, "POSIX_FADV_DONTNEED", 0))


def start(folder: Path) -> subprocess.Popen[bytes]:
    """Prefetch ``folder`` in a child process at a low priority; a thread reaps it."""
    child = subprocess.Popen(
        [sys.executable, "-I", __file__, str(folder)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    threading.Thread(target=child.wait, daemon=True, name="index-prefetch-reaper").start()
    return child


def main(argv: list[str]) -> int:
    with contextlib.suppress(OSError):
        os.nice(10)  # searches first
    prefetch(Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
