"""A data dir built with qdrant-client's local mode moves to Qdrant Edge once, losslessly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient
from typer.testing import CliRunner

from vistarag.agent.index import (
    KnowledgeBase,
    QueryVectors,
    SearchFilters,
    close_all,
    get_backend,
    list_knowledge_bases,
)
from vistarag.agent.index.migrate import MARKER, needs_migration
from vistarag.agent.index.server import ServerBackend
from vistarag.agent.settings import Settings
from vistarag.agent.sparse import query_vector
from vistarag.ui.cli import app

from .test_index_backends import RECORD, corpus, ranking


def _local(settings: Settings) -> ServerBackend:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ServerBackend(QdrantClient(path=str(settings.qdrant_dir)))


def build_old_store(settings: Settings, points: int = 300) -> None:
    """What an older VistaRAG left: local mode, two knowledge bases (one from before aliases)."""
    settings.qdrant_dir.mkdir(parents=True, exist_ok=True)
    old = _local(settings)
    kb = KnowledgeBase(settings, "default", old)
    kb.ensure(RECORD, owner="alice")
    kb.upsert(corpus(points), batch=128)
    plain = KnowledgeBase(settings, "legacy", old)
    plain._create(plain.alias, RECORD, "alice", "ready")  # a plain collection, no alias
    plain.upsert(corpus(20, seed=3))
    old.close()


def snapshot(kb: KnowledgeBase) -> dict:
    points = {p.id: p for p in kb.scroll(with_vectors=True)}
    query = QueryVectors(
        text=[np.asarray(corpus()[7].vectors["text"], dtype=np.float32)],
        lexical=[query_vector("invoice code-4")],
    )
    hits = kb.search(query, limit=10, filters=SearchFilters(owner="alice"))
    return {"points": points, "meta": kb.metadata(), "hits": ranking(hits)}


def test_local_mode_store_is_migrated_losslessly(tmp_path: Path, capfd) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(home=tmp_path / "home", joint_model="none", _env_file=None)
    build_old_store(settings)
    old = _local(settings)
    before = {name: snapshot(KnowledgeBase(settings, name, old)) for name in ("default", "legacy")}
    aliases = old.aliases()
    old.close()
    assert needs_migration(settings.qdrant_dir)

    backend = get_backend(settings)  # the first open migrates
    assert "moved 320 points in 2 collections and 1 aliases" in capfd.readouterr().err
    assert backend.kind == "edge" and backend.aliases() == aliases
    assert list_knowledge_bases(backend) == ["default", "legacy"]
    for name, was in before.items():
        now = snapshot(KnowledgeBase(settings, name))
        assert now["meta"] == was["meta"] and now["hits"] == was["hits"]
        assert set(now["points"]) == set(was["points"])
        for pid, point in was["points"].items():
            moved = now["points"][pid]
            assert moved.payload == point.payload
            assert set(moved.vector) == set(point.vector)  # a third carry a joint vector
            assert moved.vector["text"] == pytest.approx(point.vector["text"], abs=1e-6)
            assert moved.vector["lexical"].indices == point.vector["lexical"].indices
    assert (settings.qdrant_dir / "edge" / MARKER).is_file()
    assert (settings.qdrant_dir / "meta.json").is_file()  # the old store is kept as it was
    close_all()
    assert not needs_migration(settings.qdrant_dir)
    get_backend(settings)  # once only
    assert "moved" not in capfd.readouterr().err
    close_all()


def test_killed_migration_leaves_the_old_store_and_runs_again(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", joint_model="none", _env_file=None)
    build_old_store(settings, points=3000)
    env = {**os.environ, "VISTARAG_HOME": str(settings.home), "VISTARAG_JOINT_MODEL": "none"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vistarag.ui.cli", "kb", "migrate"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    staging = settings.qdrant_dir / "edge.migrating" / "collections"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if staging.is_dir() and any((p / "segments").exists() for p in staging.iterdir()):
                proc.send_signal(signal.SIGKILL)  # copying points: kill it
                break
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    assert not (settings.qdrant_dir / "edge").exists()  # nothing switched
    assert needs_migration(settings.qdrant_dir)

    result = CliRunner().invoke(app, ["kb", "migrate"], env={**env, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "moved 3020 points in 2 collections" in result.stderr
    assert not (settings.qdrant_dir / "edge.migrating").exists()
    assert KnowledgeBase(settings, "default").count() == 3000
    close_all()
    again = CliRunner().invoke(app, ["kb", "migrate"], env=env)
    assert again.exit_code == 0 and "nothing to migrate" in again.stderr
    close_all()
