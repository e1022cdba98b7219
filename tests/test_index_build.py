"""HNSW built beside the serving Qdrant Edge shard, in a child process, then swapped in.

The serving process keeps answering and taking writes while the child builds; what was written
after the export reaches the built shard before it serves; a failed or interrupted build leaves
the serving shard as it was and nothing behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_index_backends import RECORD, corpus
from vistarag.agent.errors import VistaRAGError
from vistarag.agent.index import KnowledgeBase, PointRecord, QueryVectors, SearchFilters
from vistarag.agent.index import edge as edge_mod
from vistarag.agent.index.edge import EdgeBackend
from vistarag.agent.index.records import field_filter
from vistarag.agent.settings import Settings
from vistarag.agent.status import search_mode

N = 3_000


def open_kb(root: Path) -> tuple[EdgeBackend, KnowledgeBase]:
    backend = EdgeBackend(root / "edge")
    kb = KnowledgeBase(Settings(home=root / "home", joint_model="none", _env_file=None),
                       "big", backend)
    return backend, kb


def query(seed: int) -> QueryVectors:
    v = np.random.default_rng(seed).normal(size=24)
    return QueryVectors(text=[v / np.linalg.norm(v)])


def ids(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.id for h in hits]


@pytest.fixture()
def built_later(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Hold each build between its export and its child's end, until the test sets the event:
    writes made meanwhile must be caught up (a seam only; the child and shards are real)."""
    release = threading.Event()
    real = edge_mod.send_pages

    def send_then_wait(process, pages):  # type: ignore[no-untyped-def]
        sent = real(process, pages)
        assert release.wait(60)
        return sent

    monkeypatch.setattr(edge_mod, "send_pages", send_then_wait)
    return release


def test_build_runs_beside_serving_shard_and_catches_up(tmp_path: Path, built_later) -> None:
    backend, kb = open_kb(tmp_path)
    kb.ensure(RECORD, owner="alice")
    points = corpus(N)
    kb.upsert(points, batch=500)
    name = kb.physical()
    assert backend.index_state(name)["indexed_points"] == 0

    started = time.perf_counter()
    assert kb.optimize(min_points=1_000, wait=False)
    assert time.perf_counter() - started < 2  # returns at once; the child builds
    build = backend._builds[name]
    assert build.running and backend.index_state(name)["building"]
    assert search_mode(backend.index_state(name)).startswith("exact while the HNSW index is built")

    # the serving process answers and takes writes while the build runs
    served = [ids(kb.search(query(s), 10, SearchFilters(owner="alice"))) for s in range(20)]
    assert all(len(h) == 10 for h in served)
    extra = corpus(N + 200, seed=11)[N:]  # 200 new points
    kb.upsert(extra)
    backend.delete(name, field_filter(doc_id="d3"))  # a document deleted mid-build
    changed = points[1]
    backend.set_payload(name, [changed.id], {"page": 99})
    assert build.running  # all of that happened after the export, before the swap
    built_later.set()
    assert build.finished.wait(120)
    assert build.state == "done", build.error

    state = backend.index_state(name)
    expected = N + 200 - sum(1 for p in [*points, *extra] if p.payload["doc_id"] == "d3")
    assert kb.count() == state["points"] == state["indexed_points"] == expected
    assert search_mode(state) == f"HNSW over {expected:,} points"  # what `vistarag status` says
    assert kb.count(field_filter(doc_id="d3")) == 0
    assert backend.retrieve(name, [changed.id])[0].payload["page"] == 99
    assert backend.retrieve(name, [extra[0].id])
    shard_dir = backend._shard_dir(name)
    assert shard_dir.name == build.generation and (shard_dir / "segments").is_dir()
    assert not (shard_dir.parent / "segments").exists()  # the old shard's files are gone
    assert oct(shard_dir.stat().st_mode & 0o777) == "0o700"
    # a built shard maps its dense vectors and per-document indexes rather than loading them
    config = json.loads((shard_dir / "edge_config.json").read_text())
    assert all(v.get("on_disk") is True for v in config["vectors"].values()), config

    # HNSW answers as the exact search does on this clustered corpus, and survives a reopen
    for s in range(5):
        got = ids(kb.search(query(s), 10, SearchFilters(owner="alice")))
        assert got == ids(kb.search(query(s), 10, SearchFilters(owner="alice"), exact=True))
    before = ids(kb.search(query(1), 10, None))
    backend.close()
    backend, kb = open_kb(tmp_path)
    assert kb.count() == expected and ids(kb.search(query(1), 10, None)) == before
    assert not kb.needs_index(min_points=1_000)  # nothing new since the build
    backend.close()


def test_a_failed_build_leaves_the_serving_shard(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_child(folder, spec, log_path):  # type: ignore[no-untyped-def]
        script = "import sys; sys.stdin.buffer.read(); print('killed: out of memory'); exit(3)"
        with open(log_path, "ab") as log:
            return subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                                    stdout=log, stderr=subprocess.STDOUT)

    monkeypatch.setattr(edge_mod, "start_child", failing_child)
    backend, kb = open_kb(tmp_path)
    kb.ensure(RECORD, owner="alice")
    kb.upsert(corpus(1_200), batch=400)
    name = kb.physical()
    with pytest.raises(VistaRAGError, match="code 3: killed: out of memory"):
        kb.optimize(min_points=1_000, wait=True)
    build = backend._builds[name]
    assert build.state == "failed" and not build.folder.exists()
    assert kb.count() == 1_200 and backend._shard_dir(name) == backend._dir(name)
    assert backend.index_state(name)["indexed_points"] == 0
    assert len(kb.search(query(0), 10, None)) == 10
    backend.close()


def slow_child(folder, spec, log_path):  # type: ignore[no-untyped-def]
    """A builder that takes its time (a big collection)."""
    script = "import sys, time; sys.stdin.buffer.read(); time.sleep(120)"
    return subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE)


def test_close_mid_build_cancels_and_the_next_open_sweeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(edge_mod, "start_child", slow_child)
    backend, kb = open_kb(tmp_path)
    kb.ensure(RECORD, owner="alice")
    kb.upsert(corpus(1_200), batch=400)
    name = kb.physical()
    build = backend.start_build(name)
    stray = backend._dir(name) / "gen-7"  # what a killed process's build would leave
    stray.mkdir()
    (stray / "x").write_text("half a segment")
    while build.state == "exporting":
        time.sleep(0.05)
    started = time.perf_counter()
    backend.close()  # the user quits the chat mid-build
    assert time.perf_counter() - started < 10
    assert build.finished.is_set() and build.state == "cancelled"
    assert build.process.poll() is not None  # the builder is gone too
    backend, kb = open_kb(tmp_path)
    assert not stray.exists() and not build.folder.exists()
    assert kb.count() == 1_200
    kb.upsert([PointRecord(p.id, p.vectors, {**p.payload, "page": 7})
               for p in corpus(1_210, seed=3)[1_200:]])
    assert kb.count() == 1_210
    backend.close()


def test_an_indexed_shard_maps_vectors_and_per_document_indexes(tmp_path: Path) -> None:
    """What an HNSW build writes opens without reading its vectors and its payload indexes into
    memory (``ON_DISK_FIELDS``: owner and modality too), and filters by them as before."""
    import qdrant_edge as qe

    from vistarag.agent.index.payload_indexes import ON_DISK_FIELDS

    shard = edge_mod.new_shard(tmp_path / "s", {"dense": {"text": 384}, "sparse": []},
                               indexed=True)
    rng = np.random.default_rng(0)
    for at in range(0, 9_000, 1_000):  # past Edge's indexing threshold (10 MB of vectors)
        shard.update(qe.UpdateOperation.upsert_points([
            qe.Point(i, {"text": rng.normal(size=384).tolist()},
                     {"doc_id": f"d{i % 300}", "owner": "alice", "page": i % 30})
            for i in range(at + 1, at + 1_001)]))
    shard.optimize()
    shard.close()
    segments = [json.loads(p.read_text()) for p in (tmp_path / "s").glob("segments/*/segment.json")]
    assert "Mmap" in {seg["config"]["vector_data"]["text"]["storage_type"] for seg in segments}
    built = [json.loads(p.read_text())["indexed_types"]
             for p in (tmp_path / "s").glob("segments/*/payload_index/config.json")]
    immutable = [t for t in built if t["doc_id"][0].get("mutability") == "immutable"]
    assert immutable, built
    assert {"doc_id", "owner", "page"} <= set(immutable[0])
    for field in ON_DISK_FIELDS:
        if field in immutable[0]:
            assert immutable[0][field][0]["storage_type"] == {"mmap": {"is_on_disk": True}}
    reopened = qe.EdgeShard.load(str(tmp_path / "s"))
    flt = qe.Filter(must=[qe.FieldCondition(key="doc_id", match=qe.MatchValue(value="d7"))])
    assert reopened.count(qe.CountRequest(filter=flt)) == 30
    alice = qe.Filter(must=[qe.FieldCondition(key="owner", match=qe.MatchValue(value="alice"))])
    assert reopened.count(qe.CountRequest(filter=alice)) == 9_000
    reopened.close()
