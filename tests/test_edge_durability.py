"""One writer at a time, and a writer killed mid-batch leaves a store that opens and answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vistarag.agent.index import KnowledgeBase, QueryVectors, SearchFilters, close_all, get_backend
from vistarag.agent.index.remote import RemoteBackend
from vistarag.agent.settings import Settings

from .test_index_backends import corpus

WRITER = """
import sys
from vistarag.agent.index import KnowledgeBase
from vistarag.agent.settings import Settings
from tests.test_index_backends import RECORD, corpus

settings = Settings(home=sys.argv[1], joint_model="none", _env_file=None)
kb = KnowledgeBase(settings, "durable")
kb.ensure(RECORD, owner="alice")
batch = 0
while True:  # until killed: 300 points a batch, new ids each time
    points = corpus(300, seed=batch)
    for p in points:
        p.id = p.id[:-8] + f"{batch:08d}"
    kb.upsert(points, batch=300)
    print(batch, flush=True)
    batch += 1
"""


def test_writer_killed_mid_batch_leaves_a_store_that_opens(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", joint_model="none", _env_file=None)
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(settings.home)], cwd=repo,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    done = -1
    try:
        assert proc.stdout is not None
        while done < 3:  # a few batches landed
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            done = int(line)
        # the writer holds the index and serves it: this process reads through it
        backend = get_backend(settings)
        assert isinstance(backend, RemoteBackend) and f"pid {proc.pid}" in backend.location
        assert KnowledgeBase(settings, "durable").count() >= (done + 1) * 300
        close_all()
        time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # most likely inside an upsert
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    close_all()

    kb = KnowledgeBase(settings, "durable")  # the lock died with the writer
    count = kb.count()
    assert count >= (done + 1) * 300 and count % 300 == 0  # whole batches: each is atomic
    hits = kb.search(
        QueryVectors(text=[np.asarray(corpus()[0].vectors["text"], dtype=np.float32)]),
        limit=5, filters=SearchFilters(owner="alice"),
    )
    assert len(hits) == 5 and {h.owner for h in hits} == {"alice"}
    kb.upsert(corpus(10, seed=999))  # and it takes writes again
    assert kb.count() == count + 10
    close_all()
    assert os.path.exists(settings.qdrant_dir / "edge" / "holder.lock")
