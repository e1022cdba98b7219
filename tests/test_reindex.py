"""Re-index without loss: build beside the serving collection, swap an alias when complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vistarag.agent.engine import Engine
from vistarag.agent.index import BUILD_PREFIX, READY, list_knowledge_bases
from vistarag.agent.maintenance import reindex
from vistarag.agent.qdrant import close_all
from vistarag.agent.settings import Settings

FACTS = [f"Depot {i} opens its loading bay at {6 + i % 5} am on weekdays." for i in range(60)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reindex-corpus")
    for i, fact in enumerate(FACTS):
        (root / f"depot_{i:02d}.txt").write_text(fact)
    (root / "manual.txt").write_text("Reset the router by holding its button for ten seconds.")
    return root


def _settings(home: Path) -> Settings:
    return Settings(home=home, joint_model="none", _env_file=None)


def test_reindex_swaps_an_alias_and_keeps_search_working(settings: Settings, corpus: Path) -> None:
    engine = Engine(settings)
    engine.ingestor().ingest_paths([corpus / "manual.txt", corpus / "depot_01.txt"])
    kb = engine.kb()
    first = kb.physical()
    assert first and first.startswith(BUILD_PREFIX) and kb.count() == 2

    done = reindex(engine)
    assert done.swapped and done.report.count("added") == 2 and done.missing == []
    second = kb.physical()
    assert second != first and kb.builds() == [second]  # the old build is gone
    assert kb.metadata()["state"] == READY
    assert engine.find("how do I reset the router", k=1)[0].source.endswith("manual.txt")
    assert list_knowledge_bases(kb.backend) == ["default"]


def test_failed_rebuild_keeps_the_old_index_serving(settings: Settings, corpus: Path) -> None:
    engine = Engine(settings)
    engine.ingestor().ingest_paths([corpus / "manual.txt"])
    serving = engine.kb().physical()
    tiny = Engine(settings.model_copy(update={"max_file_mb": 1e-6}))  # every file now too big
    done = reindex(tiny)
    assert not done.swapped and done.report.errors
    kb = engine.kb()
    assert kb.physical() == serving and kb.builds() == [serving]  # half-built one dropped
    assert engine.find("reset the router", k=1)[0].source.endswith("manual.txt")


def test_plain_collection_from_before_aliases_moves_to_an_alias(
    settings: Settings, corpus: Path
) -> None:
    engine = Engine(settings)
    kb = engine.kb()
    kb._create(kb.alias, engine.models.record(), settings.owner, READY)  # the old layout
    engine.ingestor().ingest_paths([corpus / "manual.txt"])
    assert kb.physical() == kb.alias and kb.count() == 1
    assert reindex(engine).swapped
    assert kb.physical().startswith(BUILD_PREFIX) and kb.count() == 1
    assert list(kb.backend.aliases()) == [kb.alias]


def test_killed_reindex_leaves_the_old_one_serving(tmp_path: Path, corpus: Path) -> None:
    settings = _settings(tmp_path / "home")
    engine = Engine(settings)
    report = engine.ingestor().ingest_paths([corpus])
    assert report.count("added") == len(FACTS) + 1
    serving = engine.kb().physical()
    close_all()  # the embedded index: one process at a time

    env = {**os.environ, "VISTARAG_HOME": str(settings.home), "VISTARAG_JOINT_MODEL": "none"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vistarag.ui.cli", "kb", "reindex"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    folder = settings.qdrant_dir / "edge" / "collections"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            listed = [p.name for p in folder.iterdir() if (p / "vistarag.json").is_file()]
            building = [name for name in listed if name != serving]
            if building:
                proc.send_signal(signal.SIGKILL)  # the rebuild is filling its collection: kill it
                break
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()

    kb = Engine(settings).kb()
    assert kb.physical() == serving  # the alias never moved
    (leftover,) = set(kb.builds()) - {serving}  # the half-built one is left over, not serving
    assert kb.backend.metadata(leftover)["state"] == "building"
    assert kb.count() == len(FACTS) + 1
    hits = Engine(settings).find("reset the router button", k=1)
    assert hits[0].source.endswith("manual.txt")

    done = reindex(Engine(settings))  # the next re-index clears the leftover and completes
    assert done.swapped and done.report.count("added") == len(FACTS) + 1
    assert kb.builds() == [kb.physical()] and kb.physical() not in {serving, leftover}
    assert kb.count() == len(FACTS) + 1
