"""Evidence you can see and VistaRAG's own face (issue 22 items 2 and 5), in real headless
Chromium (Debian's /usr/bin/chromium).

One server whose model is the loopback Anthropic server (each test sets the answer it writes,
markers included), over a knowledge base made with ``vistarag ingest`` before it starts (named
"demo", as ``make run``'s): a one-page PDF whose passages are several chunks, a spreadsheet
screenshot and a short video.
Chips name what they point to and identical sources merge; an inline [n] opens the side view; a
cited video plays from its second; the page is VistaRAG's (title, logo, favicon, welcome);
two threads with one question get distinct titles; a resumed thread's steps look as they did.
Each test saves its screenshot into ``ui/screenshots/`` (the README shows some).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.llm_servers import FakeLLMServer
from tests.test_chat_screenshots import RED_PIXELS
from tests.test_ui_browser import (
    CHROMIUM,
    ChatServer,
    ask,
    make_talk,
    new_page,
    wait_connected,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium package"),
]
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

SHOTS = Path(__file__).resolve().parents[1] / "ui" / "screenshots"
PARAGRAPHS = [  # one page, each paragraph a chunk of its own (chunks of at most 120 characters)
    "Fleet maintenance. Every lorry is inspected after 40,000 kilometres.",
    "The lorry inspection checklist covers brakes, tyres and the tachograph.",
    "A lorry that fails its inspection is repaired before its next route.",
    "Inspection records of each lorry are kept for five years.",
]
SHEET_LINES = ["Quarterly budget sheet", "Error QX-4471: the certificate expired",
               "Renew it with certtool renew"]
LORRY_ANSWER = ("Every lorry is inspected after 40,000 kilometres [1] [2], and the checklist "
                "covers brakes and tyres [3].")
QUESTION = "How often are the lorries inspected?"
SAMPLE_KB = "demo"  # the knowledge base `make run` opens: the welcome offers the sample's questions


def make_inspections_pdf(path: Path) -> Path:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    for i, text in enumerate(PARAGRAPHS):
        page.insert_textbox(pymupdf.Rect(72, 72 + 160 * i, 540, 140 + 160 * i), text, fontsize=12)
    doc.save(path)
    doc.close()
    return path


def ingest(home: Path, folder: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISTARAG_")}
    env.update({"VISTARAG_HOME": str(home), "VISTARAG_JOINT_MODEL": "none",
                "HF_HUB_OFFLINE": "1", "VISTARAG_CHUNK_CHARS": "120"})
    done = subprocess.run([sys.executable, "-m", "vistarag.ui.cli", "ingest", str(folder),
                           "--kb", SAMPLE_KB], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def model() -> Iterator[FakeLLMServer]:
    with FakeLLMServer("anthropic", answer=LORRY_ANSWER) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model: FakeLLMServer) -> Iterator[ChatServer]:
    from tests.fixtures_media import text_image

    root = tmp_path_factory.mktemp("evidence")
    docs = root / "docs"
    docs.mkdir()
    (root / "cwd").mkdir()
    make_inspections_pdf(docs / "inspections.pdf")
    text_image(SHEET_LINES, size=(900, 260)).save(docs / "excel.png")
    make_talk(docs / "harbour_update.mp4")
    ingest(root / "home", docs)
    chat = ChatServer(root / "home", root / "cwd", {
        "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": model.base_url,
        "VISTARAG_SYNTHESIZER": "anthropic", "VISTARAG_KB": SAMPLE_KB,
    })
    yield chat.start()
    chat.stop()


def answered(page: Any, model: FakeLLMServer, question: str, answer: str) -> Any:
    """Ask ``question``; the model writes ``answer``; the answer's message once its sources
    are listed."""
    model.answer = answer
    page.wait_for_selector("#chat-input", timeout=60_000)
    wait_connected(page)  # a question typed before the session is up can be lost
    ask(page, question)
    reply = page.locator(".ai-message", has_text="Sources").last
    reply.wait_for(timeout=60_000)
    return reply


def chips(reply: Any) -> list[str]:
    """The chip of each Sources line ("[n] name": the second link)."""
    return [item.locator("a.element-link").nth(1).inner_text()
            for item in reply.locator("li").all() if item.locator("a.element-link").count() > 1]


"""The side view's image: its URL and how many of its pixels are the outline's red."""


def side_image_loaded(page: Any) -> None:
    page.wait_for_function(
        "(() => { const i = document.querySelector('#side-view-content img');"
        " return i && i.complete && i.naturalWidth > 0; })()", timeout=30_000)


# ---------------------------------------------------------------------------------------------
def test_chips_name_what_they_cite_and_identical_sources_merge(
    server: ChatServer, browser: object, model: FakeLLMServer
) -> None:
    """Three passages of one PDF page are one chip, "inspections.pdf p. 1", and the answer
    reads [1] wherever it cited any of them (never "[1] [1]"); a screenshot's passage is
    "excel.png region n", which opens the screenshot with that region outlined."""
    page = new_page(browser, server.url)
    reply = answered(page, model, QUESTION, LORRY_ANSWER)
    text = reply.inner_text()
    assert chips(reply) == ["inspections.pdf p. 1"], text
    assert "kilometres [1], and the checklist covers brakes and tyres [1]." in text, text
    assert not re.search(r"\[1\]\s*\[1\]", text), text
    assert "Whole documents: inspections.pdf (all pages)" in text, text

    reply = answered(page, model, "What does error QX-4471 mean?",
                     "Error QX-4471 means the certificate expired [1]; renew it [2].")
    names = chips(reply)
    assert names and all(re.fullmatch(r"excel\.png( region \d+)?", n) for n in names), names
    assert any(re.fullmatch(r"excel\.png region \d+", n) for n in names), names
    assert len(set(names)) == len(names), names
    region = next(n for n in names if "region" in n)
    reply.locator("a.element-link", has_text=region).first.click()  # the image, region drawn
    side_image_loaded(page)
    seen = page.evaluate(RED_PIXELS)
    assert seen["src"].startswith("/vistarag/region/") and seen["red"] > 300, seen
    page.wait_for_timeout(600)  # the panel has finished sliding in
    page.screenshot(path=str(SHOTS / "chat_evidence_chips.png"))
    page.context.close()


def test_an_inline_marker_opens_the_side_view(
    server: ChatServer, browser: object, model: FakeLLMServer
) -> None:
    """The [1] in the answer's sentence is a link; clicking it opens the side view of its chip:
    the cited page, fitted, with the cited passages outlined."""
    page = new_page(browser, server.url)
    reply = answered(page, model, QUESTION, LORRY_ANSWER)
    sentence = reply.locator("[role=article]").first  # the answer's text, not its Sources
    inline = sentence.locator("a.element-link", has_text=re.compile(r"^\[1\]$")).first
    inline.wait_for(timeout=30_000)
    inline.click()
    expect(page.locator("#side-view-title")).to_contain_text("inspections.pdf p. 1",
                                                              timeout=30_000)
    side_image_loaded(page)
    seen = page.evaluate(RED_PIXELS)
    assert seen["src"].startswith("/vistarag/page/") and seen["src"].count(";") >= 1, seen
    assert seen["red"] > 1000, seen  # several passages outlined
    page.wait_for_timeout(600)  # the panel has finished sliding in
    page.screenshot(path=str(SHOTS / "chat_inline_marker.png"))
    page.context.close()


def test_a_cited_video_plays_from_its_second(
    server: ChatServer, browser: object, model: FakeLLMServer
) -> None:
    """The chip names the cited second ("harbour_update.mp4 @ 00:04"); the side view's video
    starts there and plays (its time advances, it is not paused)."""
    page = new_page(browser, server.url)
    reply = answered(page, model, "When does the harbour expansion open?",
                     "The harbour expansion opens in May [1].")
    link = reply.locator("a.element-link", has_text=re.compile(r"^harbour_update\.mp4 @ ")).first
    link.wait_for(timeout=30_000)
    start = re.search(r"@ (\d\d):(\d\d)$", link.inner_text())
    assert start, link.inner_text()
    second = int(start.group(1)) * 60 + int(start.group(2))
    assert 3 <= second <= 5, link.inner_text()  # the slide's scene starts at 4 s
    link.click()
    video = "document.querySelector('#side-view-content video')"
    state = f"(() => {{ const v = {video}; return [v.currentTime, v.paused]; }})()"
    page.wait_for_function(f"(() => {{ const v = {video}; return v && v.readyState >= 2; }})()",
                           timeout=30_000)
    start_at, _ = page.evaluate(state)
    page.wait_for_function(f"{video}.currentTime > {start_at} + 0.5", timeout=10_000)
    now, paused = page.evaluate(state)
    assert second - 0.5 <= start_at < second + 2, (second, start_at)  # from the cited second
    assert not paused and now > start_at, (start_at, now, paused)  # and playing
    page.screenshot(path=str(SHOTS / "chat_video_playing.png"))
    page.context.close()


def test_the_page_is_vistarag_s_own(server: ChatServer, browser: object) -> None:
    """Title, favicon, logo and welcome line are VistaRAG's; Chainlit's name shows nowhere."""
    page = new_page(browser, server.url)
    page.wait_for_selector("#welcome-screen img.logo", timeout=60_000)
    assert page.title() == "VistaRAG"
    icon = page.locator("link[rel=icon]").get_attribute("href")
    favicon = page.request.get(server.url + icon)
    assert favicon.ok and "svg" in favicon.headers["content-type"], favicon.headers
    assert b"<title>VistaRAG</title>" in favicon.body()
    page.wait_for_function("(() => { const i = document.querySelector('#welcome-screen img.logo');"
                           " return i.complete && i.naturalWidth > 0; })()", timeout=30_000)
    logo = page.locator("#welcome-screen img.logo").get_attribute("src")
    assert b"VistaRAG" in page.request.get(httpx.URL(server.url).join(logo).__str__()).body()
    expect(page.locator("#vistarag-welcome")).to_contain_text("every answer cites its sources")
    page.wait_for_selector("[id^=starter-]", timeout=30_000)
    assert "Lorry inspections (PDF page)" in page.inner_text("#welcome-screen")
    assert "chainlit" not in page.inner_text("body").lower()
    page.screenshot(path=str(SHOTS / "chat_welcome.png"))
    page.context.close()


def test_two_threads_with_one_question_have_distinct_titles(
    server: ChatServer, browser: object, model: FakeLLMServer
) -> None:
    """The second thread started with the same question is titled "... (2)", and the sidebar
    shows the whole title, suffix included."""
    question = "Where is the lorry inspection checklist?"
    for _ in range(2):
        page = new_page(browser, server.url)
        answered(page, model, question, "It covers brakes and tyres [1].")
        page.context.close()
    with sqlite3.connect(server.home / "ui" / "chat.sqlite") as conn:
        titles = [r[0] for r in conn.execute(
            'SELECT name FROM threads WHERE name LIKE ? ORDER BY "createdAt"', (question + "%",))]
    assert titles == [question, question + " (2)"], titles
    page = new_page(browser, server.url)
    listed = page.locator('li[id^="thread-"]')
    expect(listed.filter(has_text=question + " (2)")).to_have_count(1, timeout=60_000)
    expect(listed.filter(has_text=question)).to_have_count(2)
    page.wait_for_selector("#welcome-screen img.logo", timeout=30_000)
    page.wait_for_timeout(600)  # the welcome screen has faded in
    page.screenshot(path=str(SHOTS / "chat_thread_titles.png"))
    page.context.close()


def step_headers(page: Any) -> dict[str, str]:
    """Each step header's text -> the name of the icon beside it ("" for an avatar image)."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll(
              'p[id^="step-"], button[id^="step-"]')].map(h => {
            const svg = h.closest('.ai-message')?.querySelector(':scope > span svg.lucide');
            const icon = svg ? [...svg.classList].find(c => c.startsWith('lucide-')) : '';
            return [h.textContent.trim(), icon];
        }))"""
    )


def test_a_resumed_thread_shows_its_steps_as_they_were(
    server: ChatServer, browser: object, model: FakeLLMServer
) -> None:
    """After a reload the thread's steps keep their icons and summaries ("Reading the question
    · text question · 3 ms"), and the Tools menu (/search) is still there."""
    page = new_page(browser, server.url)
    answered(page, model, "How long are inspection records kept?",
             "Inspection records are kept for five years [1].")
    page.wait_for_selector("#command-button", timeout=30_000)
    before = step_headers(page)
    reading = [h for h in before if h.startswith("Reading the question · text question")]
    assert reading and before[reading[0]] == "lucide-scan-eye", before
    assert all(before.values()), before
    page.reload()
    page.wait_for_selector("text=Sources", timeout=60_000)
    page.wait_for_selector("#command-button", timeout=30_000)
    after = step_headers(page)
    assert after == before, (before, after)
    page.screenshot(path=str(SHOTS / "chat_resumed_steps.png"))
    page.context.close()
