"""The graph served by the LangGraph dev server (langgraph-cli[inmem]), driven by RemoteGraph."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk import get_sync_client

from tests.fixtures_media import make_pdf

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("lg-server")
    port = _free_port()
    env = {**os.environ, "VISTARAG_HOME": str(work / "home"), "VISTARAG_JOINT_MODEL": "none",
           "VISTARAG_SYNTHESIZER": "extractive", "HF_HUB_OFFLINE": "1",
           "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false"}
    cli = Path(sys.executable).with_name("langgraph")
    log = open(work / "server.log", "w")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(
        [str(cli), "dev", "--no-browser", "--no-reload", "--allow-blocking", "--port", str(port),
         "--config", str(ROOT / "langgraph.json")],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError((work / "server.log").read_text()[-3000:])
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError("langgraph dev did not start in 120 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_remote_graph_answers_with_citations_and_keeps_the_thread(server, tmp_path) -> None:
    pdf = make_pdf(tmp_path / "report.pdf")
    remote = RemoteGraph("vistarag", url=server)
    thread = get_sync_client(url=server).threads.create()
    config = {"configurable": {"thread_id": thread["thread_id"]}}
    out = remote.invoke(
        {"question": "How often is each lorry inspected?", "attachments": [str(pdf)]}, config
    )
    assert out["ingested"][0]["status"] == "added"
    assert "40,000 kilometres" in out["answer"]
    assert out["citations"][0]["page"] == 2
    tokens = []
    for chunk in remote.stream({"question": "and the next page?"}, config,
                               stream_mode="messages"):
        message = chunk[0] if isinstance(chunk, tuple) else chunk
        content = message.get("content") if isinstance(message, dict) else message.content
        tokens.append(content if isinstance(content, str) else "")
    assert "INV-20931" in "".join(tokens)
    state = remote.get_state(config)
    assert len(state.values["messages"]) == 4
