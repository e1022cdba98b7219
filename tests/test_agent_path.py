"""Tools, the tool-calling agent path, owner isolation and checkpointer settings.

The model is the loopback Anthropic/OpenAI server answering with streamed tool calls, driven
through the LangChain integrations; retrieval, ingestion and OCR are real.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pymupdf
import pytest
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests
from typer.testing import CliRunner

from tests.llm_servers import FakeLLMServer, Reply
from vistarag.agent.engine import Engine
from vistarag.agent.qdrant import close_all
from vistarag.agent.search import SearchRequest
from vistarag.agent.settings import Settings
from vistarag.graphs import TurnEvent, VistaContext, build_graph, run_turn
from vistarag.graphs.routing import choose_path
from vistarag.tools import KeyframeSearchTool, RetrieveTool, VistaRetriever, make_tools

REPORTS = {
    "acme_2022.pdf": "Acme annual report 2022. Acme revenue in 2022 was 410 million euros.",
    "acme_2023.pdf": "Acme annual report 2023. Acme revenue in 2023 was 520 million euros.",
}


def _pdf(path: Path, text: str) -> Path:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), text, fontsize=11)
    doc.save(path)
    return path


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("agent")
    settings = Settings(home=root / "home", joint_model="none", synthesizer="extractive",
                        checkpointer="memory", llm_max_retries=0, _env_file=None)
    engine = Engine(settings)
    alice = engine.ingestor(owner="alice")
    report = alice.ingest_paths([_pdf(root / name, text) for name, text in REPORTS.items()])
    assert not report.errors
    secret = _pdf(root / "bob_salary.pdf", "Bob's private salary letter: salary 99,000 euros.")
    assert not engine.ingestor(owner="bob").ingest_paths([secret]).errors
    yield engine
    close_all()


def _agent_graph(engine: Engine, server: FakeLLMServer):
    key = "anthropic" if server.provider == "anthropic" else "openai"
    settings = engine.settings.model_copy(update={
        "synthesizer": key, f"{key}_api_key": "test-key", f"{key}_base_url": server.base_url,
    })
    vlm = Engine(settings)
    vlm.models = engine.models
    return build_graph(engine=vlm)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_agent_compares_two_years_with_two_retrieve_calls(engine, provider) -> None:
    answer = "Revenue grew from 410 million euros in 2022 [1] to 520 million euros in 2023 [2]."
    with FakeLLMServer(provider, answer=answer) as server:
        server.queue(
            Reply(tool_calls=[("retrieve", {"query": "Acme revenue 2022",
                                            "doc": "acme_2022.pdf", "k": 1})]),
            Reply(tool_calls=[("retrieve", {"query": "Acme revenue 2023", "k": 3})]),
        )
        events: list[TurnEvent] = []
        result = run_turn(_agent_graph(engine, server), "Compare Acme's revenue in 2022 and 2023",
                          context=VistaContext(owner="alice"), on_event=events.append)
        bodies = server.bodies
    assert result.path == "agent" and result.answer == answer
    assert [(t.name, t.args.get("query")) for t in result.trajectory] == [
        ("retrieve", "Acme revenue 2022"), ("retrieve", "Acme revenue 2023")]
    assert result.trajectory[0].args["doc"] == "acme_2022.pdf"
    assert all(t.hits >= 1 and t.ms > 0 for t in result.trajectory)
    cited = [(c.n, Path(c.source).name) for c in result.citations]
    assert cited[0] == (1, "acme_2022.pdf")
    assert {name for _, name in cited} == {"acme_2022.pdf", "acme_2023.pdf"}
    assert [e.name for e in events if e.kind == "tool"] == ["retrieve", "retrieve"]
    assert "".join(e.text for e in events if e.kind == "token").endswith(answer)
    # The model saw both tools, and tool results numbered into one list (the second call's
    # 2023 hit is [2] although it was that call's first result).
    tools = bodies[0]["tools"]
    names = {t.get("name") or t["function"]["name"] for t in tools}
    assert names == {"retrieve", "search_video_keyframes"}
    last = json.dumps(bodies[-1]["messages"])
    assert 'n=\\"1\\" doc=\\"acme_2022.pdf\\"' in last
    assert 'doc=\\"acme_2023.pdf\\"' in last
    assert "salary" not in last  # bob's document never reaches alice's agent


def test_agent_step_limit_gives_a_clear_answer(engine) -> None:
    with FakeLLMServer("anthropic") as server:
        server.queue(*[Reply(tool_calls=[("retrieve", {"query": "Acme revenue"})])] * 10)
        graph = _agent_graph(engine, server)
        graph_settings = 6
        result = run_turn(graph, "Acme revenue", context=VistaContext(owner="alice", mode="agent"))
    assert len(result.trajectory) == graph_settings
    assert any("stopped after 6 model calls" in n for n in result.notices)
    assert result.synthesizer == "extractive" and result.citations


def test_routing() -> None:
    assert choose_path("Compare revenue in 2022 and 2023", "text", "auto", True)[0] == "agent"
    assert choose_path("What was revenue in 2023?", "text", "auto", True)[0] == "direct"
    assert choose_path("When does the presenter show the diagram?", "text", "auto", False)[0] \
        == "video"
    assert choose_path("When does the Oslo branch close?", "text", "auto", False)[0] == "direct"
    assert choose_path("Compare A and B", "text", "direct", True)[0] == "direct"
    path, notice = choose_path("anything", "text", "agent", False)
    assert path == "direct" and "tool-calling" in notice


def test_offline_video_question_routes_to_keyframe_search(engine) -> None:
    result = run_turn(build_graph(engine=engine), "When does the presenter show the revenue?",
                      context=VistaContext(owner="alice"))
    assert result.path == "video"
    assert [t.name for t in result.trajectory] == ["search_video_keyframes"]
    assert result.not_found  # no videos in this knowledge base: an honest answer


# ---- owner isolation everywhere -----------------------------------------------------------------
def test_owner_isolation_search_graph_tools_retriever(engine) -> None:
    def sources(owner: str, text: str) -> set[str]:
        hits = engine.search(SearchRequest(text=text, owner=owner, top_k=10)).hits
        return {Path(h.source).name for h in hits}

    assert "bob_salary.pdf" not in sources("alice", "salary letter")
    assert sources("bob", "salary letter") == {"bob_salary.pdf"}
    graph = build_graph(engine=engine)
    out = run_turn(graph, "What is the salary?", context=VistaContext(owner="alice"))
    assert all("bob" not in Path(h.source).name for h in out.sources)
    assert "99,000" not in out.answer
    out = run_turn(graph, "What is the salary?", context=VistaContext(owner="bob"))
    assert "99,000" in out.answer
    retrieve = make_tools(engine, owner="alice")[0]
    _, artifact = retrieve._run("salary letter", k=10)
    assert all("bob" not in Path(h["source"]).name for h in artifact)
    docs = VistaRetriever(engine=engine, owner="alice", k=10).invoke("salary letter")
    assert all("bob" not in Path(d.metadata["source"]).name for d in docs)
    docs = VistaRetriever(engine=engine, owner="bob").invoke("salary letter")
    assert docs and Path(docs[0].metadata["source"]).name == "bob_salary.pdf"


def test_context_kb_top_k_and_modality_take_effect(engine) -> None:
    graph = build_graph(engine=engine)
    out = run_turn(graph, "Acme revenue", context=VistaContext(owner="alice", top_k=1))
    assert len(out.sources) == 1
    out = run_turn(graph, "Acme revenue", context=VistaContext(owner="alice", modality=["page"]))
    assert out.sources and {h.modality for h in out.sources} == {"page"}
    out = run_turn(graph, "Acme revenue", context=VistaContext(owner="alice", kb="other"))
    assert out.not_found and not out.sources


def test_tool_content_is_readable_and_artifact_has_refs(engine) -> None:
    tool = RetrieveTool(engine=engine, owner="alice")
    message = tool.invoke({"type": "tool_call", "id": "1", "name": "retrieve",
                           "args": {"query": "Acme revenue 2023", "k": 2}})
    # the year named puts the 2023 report first (a year alone boosts, it does not hide the
    # other years: issue 19); its text and page render are one piece of evidence
    assert re.match(r"[12] results? for 'Acme revenue 2023'", message.content), message.content
    assert '<source n="1" doc="acme_2023.pdf" page="1"' in message.content
    assert {"doc_id", "source", "page", "blob"} <= set(message.artifact[0])
    assert "base64" not in json.dumps(message.artifact)
    bad = tool.invoke({"type": "tool_call", "id": "2", "name": "retrieve",
                       "args": {"query": "x", "doc": "missing.pdf"}})
    assert bad.status == "error" and "no document named 'missing.pdf'" in bad.content
    keyframes = KeyframeSearchTool(engine=engine, owner="alice")
    assert keyframes.invoke({"query": "revenue chart"}) == "No results for 'revenue chart'."


# ---- ask with each checkpointer --------------------------------------------------------------
@pytest.mark.parametrize("checkpointer", ["none", "memory", "sqlite"])
def test_ask_with_each_checkpointer(engine, checkpointer, monkeypatch) -> None:
    from vistarag.ui.cli import app

    monkeypatch.setenv("VISTARAG_HOME", str(engine.settings.home))
    monkeypatch.setenv("VISTARAG_CHECKPOINTER", checkpointer)
    monkeypatch.setenv("VISTARAG_JOINT_MODEL", "none")
    monkeypatch.setenv("VISTARAG_SYNTHESIZER", "extractive")
    monkeypatch.setenv("VISTARAG_OWNER", "alice")
    # The CLI shares this process's embedded store (one client per data dir).
    result = CliRunner().invoke(app, ["ask", "What was Acme revenue in 2023?", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert "520 million" in payload["answer"] and payload["citations"]


# ---- LangChain standard tool tests -------------------------------------------------------------
@pytest.fixture(scope="module")
def tool_engine(engine) -> Engine:
    return engine


class TestRetrieveToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self):
        return RetrieveTool

    @property
    def tool_constructor_params(self) -> dict:
        return {"owner": "alice"}

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"query": "Acme revenue 2023", "k": 2}


class TestKeyframeToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self):
        return KeyframeSearchTool

    @property
    def tool_constructor_params(self) -> dict:
        return {}

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"query": "the architecture diagram", "k": 3}


class TestRetrieveToolIntegration(ToolsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _engine(self, engine) -> None:
        self._bound = engine

    @property
    def tool_constructor(self):
        return RetrieveTool(engine=self._bound, owner="alice")

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"query": "Acme revenue 2023", "k": 2}


class TestKeyframeToolIntegration(ToolsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _engine(self, engine) -> None:
        self._bound = engine

    @property
    def tool_constructor(self):
        return KeyframeSearchTool(engine=self._bound, owner="alice")

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"query": "the architecture diagram", "k": 3}
