"""Conversation memory in PostgreSQL (VISTARAG_CHECKPOINTER=postgres), on a real server.

The test starts a throwaway PostgreSQL cluster with the server binaries on this machine
(initdb / pg_ctl); it is skipped where PostgreSQL is not installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from tests.fixtures_media import make_pdf
from vistarag.agent.engine import Engine
from vistarag.agent.qdrant import close_all
from vistarag.graphs import build_graph, default_checkpointer

PG_BIN = Path("/usr/lib/postgresql")


def _pg_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(PG_BIN.glob(f"*/bin/{name}")) if PG_BIN.exists() else []
    return str(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    initdb, pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    # Not under pytest's tmp dir: the server's user must be able to reach it.
    root = Path(tempfile.mkdtemp(prefix="vistarag-pg-"))
    data = root / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "vistarag"],
                   check=True, capture_output=True)
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-o",
         f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
        check=True, capture_output=True,
    )
    try:
        yield f"postgresql://vistarag@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_two_turns_remembered_in_postgres(postgres_url: str, settings, tmp_path: Path) -> None:
    pg_settings = settings.model_copy(
        update={"checkpointer": "postgres", "postgres_url": postgres_url}
    )
    engine = Engine(pg_settings)
    assert not engine.ingestor().ingest_file(make_pdf(tmp_path / "report.pdf")).message
    config = {"configurable": {"thread_id": "pg-thread"}}
    graph = build_graph(engine=engine, checkpointer=default_checkpointer(pg_settings))
    first = graph.invoke({"question": "How often is each lorry inspected?"}, config)
    assert first["citations"][0]["page"] == 2
    second = graph.invoke({"messages": [HumanMessage("and the next page?")]}, config)
    assert second["citations"][0]["page"] == 3
    # A new graph and connection read the same thread back from the database.
    again = build_graph(engine=engine, checkpointer=default_checkpointer(pg_settings))
    assert len(again.get_state(config).values["messages"]) == 4
    close_all()
