"""The answer-model picker (issue 22 item 3): the chat settings offer each configured chat model
by a readable name, plus the extractive answer; the choice is kept with the thread and the next
turn is answered by it. Hosted models are the loopback servers of ``tests/llm_servers.py``."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.llm_servers import FakeLLMServer, make_settings
from vistarag.agent.llm import EXTRACTIVE_NAME, configured_models, default_model
from vistarag.graphs import VistaContext

NOTES = "Fleet notes. Every lorry is inspected after 40,000 kilometres by the depot crew."
QUESTION = "How often are the lorries inspected?"
CLAUDE_SAYS = "Claude here: every 40,000 kilometres [1]."
GPT_SAYS = "GPT here: after 40,000 kilometres [1]."


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeLLMServer, FakeLLMServer]]:
    with FakeLLMServer("anthropic", answer=CLAUDE_SAYS) as claude, \
            FakeLLMServer("openai", answer=GPT_SAYS) as gpt:
        yield claude, gpt


def both_env(claude: FakeLLMServer, gpt: FakeLLMServer) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": claude.base_url,
            "OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": gpt.base_url}


# ---- configuration and prefs ----------------------------------------------------------------
def test_configured_models_are_named_for_a_reader(servers) -> None:
    """Each configured model by name and where it runs, the extractive answer last; hosted
    endpoints by vendor; nothing configured: only the extractive answer."""
    claude, gpt = servers
    settings = make_settings(anthropic_api_key="k", anthropic_base_url=claude.base_url,
                             openai_base_url=gpt.base_url)
    models = configured_models(settings)
    assert [m.key for m in models] == ["anthropic", "openai", "extractive"]
    assert models[0].name == f"claude-sonnet-4-6 (Anthropic-compatible, 127.0.0.1:{claude.port})"
    assert models[1].name == f"gpt-4o-mini (OpenAI-compatible, 127.0.0.1:{gpt.port})"
    assert models[2].name == EXTRACTIVE_NAME == "Extractive (offline)"
    assert default_model(settings) == "anthropic"
    hosted = configured_models(make_settings(openai_api_key="k"))
    assert [m.name for m in hosted] == ["gpt-4o-mini (OpenAI)", EXTRACTIVE_NAME]
    assert [m.key for m in configured_models(make_settings())] == ["extractive"]


def test_chat_prefs_keep_the_model_through_the_threads_metadata() -> None:
    """The picked model round-trips through the saved values, reaches the turn's context and
    the settings line; one no longer configured falls back to the default."""
    pytest.importorskip("chainlit")
    from vistarag.agent.llm import ModelOption
    from vistarag.ui.web.chat_prefs import ChatPrefs, widgets

    models = [ModelOption("anthropic", "claude (Anthropic)"),
              ModelOption("openai", "gpt (OpenAI)"), ModelOption("extractive", EXTRACTIVE_NAME)]
    keys = [m.key for m in models]
    defaults = ChatPrefs(kb="default", top_k=5, model="anthropic")
    prefs = ChatPrefs.from_values({"kb": "default", "top_k": 5, "model": "openai"}, defaults, keys)
    assert prefs.model == "openai" and prefs.context("alice").model == "openai"
    assert ChatPrefs.from_values(prefs.values(), defaults, keys) == prefs
    assert prefs.describe(models).endswith("answered by gpt (OpenAI)")
    gone = ChatPrefs.from_values({**prefs.values(), "model": "openai"}, defaults,
                                 ["anthropic", "extractive"])
    assert gone.model == "anthropic"
    panel = {w.id: w for w in widgets(prefs, ["default"], models)}
    picker = panel["model"].to_dict()
    assert picker["initial"] == "openai"
    assert [i["label"] for i in picker["items"]] == [m.name for m in models]


# ---- the graph answers with the picked model -------------------------------------------------
@pytest.fixture(scope="module")
def graph(servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from vistarag.agent.engine import Engine
    from vistarag.agent.qdrant import close_all
    from vistarag.graphs import build_graph

    claude, gpt = servers
    root = tmp_path_factory.mktemp("picker-graph")
    notes = root / "fleet_notes.md"
    notes.write_text(NOTES, encoding="utf-8")
    settings = make_settings(home=root / "home", joint_model="none", checkpointer="memory",
                             anthropic_api_key="test-key", anthropic_base_url=claude.base_url,
                             openai_api_key="test-key", openai_base_url=gpt.base_url)
    engine = Engine(settings)
    assert engine.ingestor().ingest_paths([notes]).count("added") == 1
    yield build_graph(engine=engine)
    close_all()


def test_the_context_model_picks_which_server_answers(graph, servers) -> None:
    """No pick: the default (Anthropic); "openai": the OpenAI server; "extractive": neither."""
    from vistarag.graphs import run_turn

    claude, gpt = servers
    before = len(claude.requests), len(gpt.requests)
    first = run_turn(graph, QUESTION)
    assert first.answer == CLAUDE_SAYS and first.synthesizer.startswith("anthropic:")
    second = run_turn(graph, QUESTION, context=VistaContext(model="openai"))
    assert second.answer == GPT_SAYS and second.synthesizer == "openai:gpt-4o-mini"
    third = run_turn(graph, QUESTION, context=VistaContext(model="extractive"))
    assert third.synthesizer == "extractive" and "40,000 kilometres" in third.answer
    assert (len(claude.requests), len(gpt.requests)) == (before[0] + 1, before[1] + 1)
    unknown = run_turn(graph, QUESTION, context=VistaContext(model="mistral"))
    assert unknown.answer == CLAUDE_SAYS  # not configured: the default answers


# ---- in the chat (real Chainlit server, real Chromium) ----------------------------------------
@pytest.fixture(scope="module")
def chat(servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    pytest.importorskip("chainlit")
    from tests.test_ui_browser import CHROMIUM, ChatServer

    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium package")
    root = tmp_path_factory.mktemp("picker-chat")
    (root / "cwd").mkdir()
    notes = root / "fleet_notes.md"
    notes.write_text(NOTES, encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VISTARAG_", "ANTHROPIC_", "OPENAI_"))}
    env.update({"VISTARAG_HOME": str(root / "home"), "VISTARAG_JOINT_MODEL": "none",
                "HF_HUB_OFFLINE": "1"})
    done = subprocess.run([sys.executable, "-m", "vistarag.ui.cli", "ingest", str(notes)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    server = ChatServer(root / "home", root / "cwd", both_env(*servers))
    yield server.start()
    server.stop()


def answers(page: object, text: str) -> int:
    """How many answers in the chat hold ``text`` (notices follow an answer, so the last
    message is not always it)."""
    return page.locator(".ai-message", has_text=text).count()


def send(page: object, text: str) -> None:
    """``ask`` once the page's socket session is up (text typed before it can be lost)."""
    from tests.test_ui_browser import ask, wait_connected

    wait_connected(page)
    ask(page, text)


def pick_model(page: object, name: str) -> None:
    """Choose ``name`` as the answer model in the settings panel and confirm."""
    page.click("#chat-settings-open-modal")
    page.click("#model")
    page.get_by_role("option", name=name).click()
    page.click("#confirm")


@pytest.mark.slow
def test_switching_the_model_in_settings_changes_who_answers_and_stays_with_the_thread(
    chat, browser, servers
) -> None:
    """Claude answers by default; picking the OpenAI-compatible model in the settings panel
    makes the next answer come from that server; the thread, reopened, still uses it; picking
    "Extractive (offline)" answers without either server."""
    from tests.test_ui_browser import ARTIFACTS, CONNECTED, new_page

    claude, gpt = servers
    calls = lambda: (len(claude.requests), len(gpt.requests))  # noqa: E731
    page = new_page(browser, chat.url)
    before = calls()
    send(page, QUESTION)
    assert answers(page, "Claude here") == 1 and answers(page, "GPT here") == 0
    assert calls() == (before[0] + 1, before[1])

    gpt_name = f"gpt-4o-mini (OpenAI-compatible, 127.0.0.1:{gpt.port})"
    pick_model(page, gpt_name)
    page.wait_for_selector(f"text=/answered by {gpt_name.replace('(', '.').replace(')', '.')}/",
                           timeout=30_000)
    send(page, QUESTION)
    assert answers(page, "GPT here") == 1 and answers(page, "Claude here") == 1
    assert calls() == (before[0] + 1, before[1] + 1)
    page.click("#chat-settings-open-modal")
    page.wait_for_selector("#model", timeout=10_000)
    page.wait_for_timeout(600)  # the panel has finished fading in
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat_model_picker.png"))
    page.keyboard.press("Escape")

    with sqlite3.connect(chat.home / "ui" / "chat.sqlite") as conn:
        (thread_id,) = conn.execute("SELECT id FROM threads").fetchone()
    CONNECTED[id(page)].clear()  # a new socket session for the reopened thread
    page.goto(f"{chat.url}/thread/{thread_id}")
    page.wait_for_selector("text=GPT here", timeout=60_000)
    send(page, "And how often again?")
    assert answers(page, "GPT here") == 2  # the resumed thread kept the pick
    assert calls() == (before[0] + 1, before[1] + 2)

    pick_model(page, "Extractive (offline)")
    page.wait_for_selector("text=/answered by Extractive/", timeout=30_000)
    send(page, QUESTION)
    assert answers(page, "Extractive answer") == 1
    assert calls() == (before[0] + 1, before[1] + 2)
    page.context.close()
