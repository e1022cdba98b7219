"""Freed heap memory goes back to the OS (``agent.memory``), and ingestion asks for it."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
from pathlib import Path

import pytest

from vistarag.agent import memory
from vistarag.agent.settings import Settings

GLIBC = sys.platform.startswith("linux") and "libc.so.6" in (ctypes.util.find_library("c") or "")

# 160 MiB in 8 KiB blocks (under malloc's mmap threshold, so on the heap), all freed but the
# last: glibc keeps the freed blocks resident until ``malloc_trim``.
_CHILD = """
import re
from vistarag.agent.memory import release_freed_memory
def rss():
    return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) // 1024
blocks = [bytes(8192) + bytes([i % 256]) for i in range(20_000)]
keep = blocks[-1]
del blocks
before = rss()
assert release_freed_memory()
print(before, rss())
"""


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_freed_heap_memory_goes_back_to_the_os() -> None:
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                         check=True).stdout
    before, after = map(int, out.split())
    assert before - after > 100, (before, after)


def test_without_malloc_trim_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    assert memory.release_freed_memory() is False


def test_ingesting_a_file_releases_freed_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """Each file's peak is handed back before the next file, whatever its result."""
    from vistarag.agent.engine import Engine
    from vistarag.agent.ingest import pipeline

    calls = []
    monkeypatch.setattr(pipeline, "release_freed_memory", lambda: calls.append(1) or True)
    good = tmp_path / "note.md"
    good.write_text("A note about memory.")
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"not a pdf")
    ingestor = Engine(settings).ingestor()
    results = [ingestor.ingest_file(good), ingestor.ingest_file(bad)]
    assert [r.status for r in results] == ["added", "error"]
    assert len(calls) == 2
