"""Build a collection's HNSW index in a child process, beside the serving shard, then swap it in.

Qdrant Edge's ``optimize()`` builds HNSW synchronously and holds the GIL while it runs (minutes
at 100k points, about 20 at 500k here), so calling it in the serving process would stop every
search and write. Instead:

1. **Export.** A thread streams the serving shard's points (vectors and payloads, a scroll page
   at a time, each under the backend's lock for milliseconds) into a child process's stdin.
2. **Build.** The child (``python -m vistarag.agent.index.edge_build``, at a lower CPU
   priority) creates a new shard in the collection's next generation folder (``gen-N``),
   upserts the points, runs ``optimize()`` and closes it.
3. **Catch up.** Meanwhile every write to the serving shard records the point ids it touched
   and the filters it deleted by. The parent opens the built shard, deletes by those filters,
   copies those ids' current state over from the serving shard (rounds outside the lock until
   few are left, the last round under it), then serves the built shard and drops the old one.

The serving shard stays the truth throughout: a build that fails or is interrupted (the child
dies with its parent) leaves a ``gen-N`` folder that nothing points to, removed on next open.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

EXPORT_PAGE = 1_000  # points per scroll page exported (one lock hold each: milliseconds)
CATCH_UP_UNDER_LOCK = 2_000  # ids left to copy when the final round runs under the lock
CHILD_NICE = 10


@dataclass
class IndexBuild:
    """One background build of one collection, as the serving process tracks it."""

    collection: str
    generation: str  # the folder name under the collection: ``gen-N``
    folder: Path
    started: float = field(default_factory=time.monotonic)
    state: str = "exporting"  # exporting, building, catching up, done, failed, cancelled
    points: int = 0
    error: str = ""
    dirty: set[str] = field(default_factory=set)  # ids written since the export began
    deletes: list[Any] = field(default_factory=list)  # filters deleted by since then
    finished: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen[bytes] | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per swap step

    @property
    def running(self) -> bool:
        return not self.finished.is_set()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def wrote(self, ids: Any) -> None:
        self.dirty.update(str(i) for i in ids)

    def deleted(self, flt: Any) -> None:
        self.deletes.append(flt)

    def take_changes(self) -> tuple[set[str], list[Any]]:
        dirty, deletes = self.dirty, self.deletes
        self.dirty, self.deletes = set(), []
        return dirty, deletes

    def cancel(self) -> None:
        if self.running:
            self.state = "cancelled"  # first: the build thread reads it when the child dies
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)


def start_child(folder: Path, spec: dict[str, Any], log_path: Path) -> subprocess.Popen[bytes]:
    """The builder process; it reads ``spec`` then pickled point pages from its stdin."""
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "vistarag.agent.index.edge_build", str(folder)],
            stdin=subprocess.PIPE, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=False,
        )
    assert process.stdin is not None
    pickle.dump(spec, process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
    return process


def send_pages(process: subprocess.Popen[bytes], pages: Iterator[list[Any]]) -> int:
    """Stream point pages into the child, then the end marker; returns the points sent."""
    stdin: IO[bytes] | None = process.stdin
    assert stdin is not None
    sent = 0
    try:
        for page in pages:
            pickle.dump(page, stdin, protocol=pickle.HIGHEST_PROTOCOL)
            sent += len(page)
        pickle.dump(None, stdin)
    finally:
        with contextlib.suppress(OSError):
            stdin.close()
    return sent


def log_tail(path: Path, limit: int = 1_500) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-limit:].strip()
    except OSError:
        return ""


# ---- the child ------------------------------------------------------------------------------
def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the serving process exits, however it exits."""
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def build(folder: Path, source: IO[bytes], progress: Callable[[str], None] = print) -> int:
    """Create the shard in ``folder`` from the pages on ``source``, build HNSW, close it."""
    import qdrant_edge as qe

    from vistarag.agent.index import edge_convert as cv
    from vistarag.agent.index.edge import new_shard

    spec = pickle.load(source)
    shard = new_shard(folder, spec, indexed=True)
    points = 0
    started = time.monotonic()
    while (page := pickle.load(source)) is not None:
        batch = [qe.Point(p.id, cv.vectors(p.vectors), p.payload) for p in page]
        shard.update(qe.UpdateOperation.upsert_points(batch))
        points += len(batch)
    progress(f"upserted {points} points in {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    shard.optimize()
    shard.flush()
    progress(f"built HNSW in {time.monotonic() - started:.1f} s: {shard.info()}")
    shard.close()
    return points


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    _die_with_parent()
    os.umask(0o077)  # the data dir is owner-only
    with contextlib.suppress(OSError):
        os.nice(CHILD_NICE)  # the serving process answers searches first
    build(Path(args[0]), sys.stdin.buffer, lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
