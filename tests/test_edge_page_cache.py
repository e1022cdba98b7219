"""A process that ends leaves the index's files in the OS page cache for the next one.

Qdrant Edge evicts a shard's files from the page cache when the shard closes, so each fresh
``vistarag search`` read the vectors it touched from disk again. At process exit the backend
flushes its shards and leaves them open instead; what was written is still there next time.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import sys
import numpy as np
from tests.test_index_backends import RECORD, corpus
from vistarag.agent.index import KnowledgeBase, QueryVectors, SearchFilters
from vistarag.agent.index.backend import close_all, get_backend
from vistarag.agent.settings import Settings

settings = Settings(home=sys.argv[1], joint_model="none", _env_file=None)
kb = KnowledgeBase(settings, "pc", get_backend(settings))
kb.ensure(RECORD, owner="alice")
kb.upsert(corpus(2_000, seed=1))
v = np.random.default_rng(0).normal(size=24)
assert kb.search(QueryVectors(text=[v / np.linalg.norm(v)]), 5, SearchFilters(owner="alice"))
if sys.argv[2] == "close":
    close_all()
elif sys.argv[2] == "delete":  # a temp data dir removed before the process ends
    import shutil
    shutil.rmtree(sys.argv[1])
"""


def resident_pages(path: Path) -> int:
    """Pages of ``path`` in the page cache (``mincore``; mapping the file reads nothing)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        vec = ctypes.create_string_buffer(pages)
        assert libc.mincore(addr, size, vec) == 0, os.strerror(ctypes.get_errno())
        libc.munmap(addr, size)
    finally:
        os.close(fd)
    return sum(b & 1 for b in vec.raw)


def run_child(home: Path, how: str) -> int:
    """Fill and search a knowledge base in a new process; the text vectors' resident pages."""
    subprocess.run([sys.executable, "-c", CHILD, str(home), how], cwd=ROOT, check=True,
                   timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    chunks = list(home.glob("qdrant/edge/collections/*/segments/*/vector_storage-text/vectors/"
                            "chunk_*.mmap"))
    assert chunks
    return sum(resident_pages(c) for c in chunks)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mincore, Linux page cache")
def test_the_page_cache_outlives_the_process_and_the_data_is_kept(tmp_path: Path) -> None:
    closed = run_child(tmp_path / "closed", "close")
    exited = run_child(tmp_path / "exited", "exit")
    assert closed == 0  # what Edge does on close: the next process would read from disk
    assert exited > 0

    from tests.test_index_backends import RECORD
    from vistarag.agent.index import KnowledgeBase
    from vistarag.agent.index.edge import EdgeBackend
    from vistarag.agent.settings import Settings

    backend = EdgeBackend(tmp_path / "exited" / "qdrant" / "edge")  # the locks went too
    kb = KnowledgeBase(Settings(home=tmp_path / "exited", joint_model="none", _env_file=None),
                       "pc", backend)
    assert kb.metadata()["text_dim"] == RECORD["text_dim"]
    assert kb.count() == 2_000
    backend.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mincore, Linux page cache")
def test_warm_up_reads_the_index_into_the_page_cache(tmp_path: Path) -> None:
    """What a long-running process (the chat) does before its first question."""
    from vistarag.agent.index import KnowledgeBase
    from vistarag.agent.index.edge import EdgeBackend
    from vistarag.agent.settings import Settings

    home = tmp_path / "closed"
    assert run_child(home, "close") == 0
    backend = EdgeBackend(home / "qdrant" / "edge")
    kb = KnowledgeBase(Settings(home=home, joint_model="none", _env_file=None), "pc", backend)
    assert kb.count() == 2_000
    # the payloads are mapped, not read, when a shard opens (a small shard reads its vectors)
    pages = list(home.glob("qdrant/edge/collections/*/segments/*/payload_storage/page_*.dat"))
    assert pages
    before = sum(resident_pages(p) for p in pages)
    assert kb.warm_up(wait=True)
    after = sum(resident_pages(p) for p in pages)
    assert before < 8 and after == sum(p.stat().st_size // mmap.PAGESIZE for p in pages)
    backend.close()


def test_a_data_dir_deleted_before_exit_ends_the_process_cleanly(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "home"), "delete"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "home").exists()
