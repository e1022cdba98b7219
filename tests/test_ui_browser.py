"""The Chainlit chat end to end, in real headless Chromium (Debian's /usr/bin/chromium).

Two servers, each started with ``vistarag ui`` in a subprocess on a free loopback port with its
own data dir: one without login whose model is the loopback Anthropic server (streamed answer,
citations that open the PDF at its page, inline evidence, resume after a restart, agent tool
steps), and one with two password users (video and image citations, privacy between them,
offline notice). Screenshots land in ``tests/artifacts/`` (ignored by git).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures_media import (
    PDF_PAGE1,
    PDF_PAGE2,
    SCREENSHOT_LINES,
    make_pdf,
    make_screenshot,
    text_image,
)
from tests.llm_servers import FakeLLMServer

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium package"),
]
playwright_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("chainlit")

QUESTION = "How often are the lorries inspected, and what error does the proxy screenshot show?"
ANSWER = "Every lorry is inspected after 40,000 kilometres [1]. The screenshot shows [2]."
ALICE, BOB = "alice", "bob"
PASSWORDS = {ALICE: "alice-pass-1", BOB: "bob-pass-2"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChatServer:
    """``vistarag ui`` in a subprocess of its own process group."""

    def __init__(self, home: Path, cwd: Path, env: dict[str, str]) -> None:
        self.home, self.cwd, self.extra = home, cwd, env
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ChatServer:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("VISTARAG_", "ANTHROPIC_", "OPENAI_", "CHAINLIT_"))}
        env.update({"VISTARAG_HOME": str(self.home), "VISTARAG_JOINT_MODEL": "none",
                    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **self.extra})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vistarag.ui.cli", "ui", "--host", "127.0.0.1",
             "--port", str(self.port)],
            cwd=self.cwd, env=env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError("chat server did not start:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    return {
        "pdf": make_pdf(root / "fleet_report.pdf"),
        "png": make_screenshot(root / "proxy_error.png", SCREENSHOT_LINES),
    }


def make_talk(path: Path) -> Path:
    """A 9 s H.264 video: a blank opening, then a slide with known words from 4 s to 9 s."""
    pytest.importorskip("av")
    from vistarag.evals.video_samples import Scene, slide, solid, write_video

    size = (480, 270)
    return write_video(path, [Scene(0, 4, solid("navy", size)),
                              Scene(4, 9, slide(["HARBOUR EXPANSION", "OPENS IN MAY"], size))],
                       size, fps=10, faststart=True)


@pytest.fixture(scope="module")
def model() -> Iterator[FakeLLMServer]:
    with FakeLLMServer("anthropic", answer=ANSWER) as server:
        yield server


@pytest.fixture(scope="module")
def open_server(
    tmp_path_factory: pytest.TempPathFactory, model: FakeLLMServer
) -> Iterator[ChatServer]:
    root = tmp_path_factory.mktemp("open")
    (root / "cwd").mkdir()
    server = ChatServer(root / "home", root / "cwd", {
        "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": model.base_url,
        "VISTARAG_SYNTHESIZER": "anthropic",
    })
    yield server.start()
    server.stop()


@pytest.fixture(scope="module")
def login_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    from vistarag.ui.web.auth import hash_password

    root = tmp_path_factory.mktemp("login")
    (root / "cwd").mkdir()
    users = ",".join(f"{u}:{hash_password(p, iterations=1000)}" for u, p in PASSWORDS.items())
    server = ChatServer(root / "home", root / "cwd",
                        {"VISTARAG_UI_USERS": users, "VISTARAG_SYNTHESIZER": "extractive"})
    yield server.start()
    server.stop()


CONNECTED: dict[int, list[bool]] = {}  # id(page) -> the client announced its socket session
NAVIGATED: dict[int, list[str]] = {}  # id(page) -> the URLs its main frame went to


def new_page(browser: object, url: str) -> object:
    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    connected = CONNECTED.setdefault(id(page), [])
    went = NAVIGATED.setdefault(id(page), [])
    page.on("framenavigated", lambda f: went.append(f.url) if f == page.main_frame else None)
    announced = lambda f: connected.append(True) if "connection_successful" in str(f) else None  # noqa: E731
    page.on("websocket", lambda ws: ws.on("framesent", announced))
    # socket.io may still be on HTTP long-polling when the client announces itself
    page.on("request", lambda r: announced(r.post_data or "") if (
        "socket.io" in r.url and r.method == "POST") else None)
    page.goto(url)
    return page


def wait_connected(page: object) -> None:
    """Wait until the chat's socket session exists on the server: Chainlit answers an upload
    sent before that (e.g. right after login) with 404 "Session not found"."""
    deadline = time.monotonic() + 30  # an announcement we did not see only costs the wait
    while not CONNECTED[id(page)] and time.monotonic() < deadline:
        page.wait_for_timeout(100)


def login(page: object, user: str) -> None:
    page.wait_for_selector("#email", timeout=60_000)
    page.fill("#email", user)
    page.fill("#password", PASSWORDS[user])
    CONNECTED[id(page)].clear()  # the session that counts is the logged-in one
    page.click("button[type=submit]")
    page.wait_for_selector("#chat-input", timeout=60_000)


def ask(page: object, text: str, files: list[Path] = ()) -> object:
    """Send a message (with files) and wait for the answer's sources or its final text."""
    page.wait_for_selector("#chat-input", timeout=60_000)
    if files:
        wait_connected(page)
        uploaded: list[object] = []
        listener = lambda r: uploaded.append(r) if (  # noqa: E731
            "/project/file" in r.url and r.request.method == "POST" and r.ok) else None
        page.on("response", listener)
        shown = f"document.querySelectorAll('#attachments > *').length >= {len(files)}"
        for attempt in range(3):  # a composer still connecting its session drops the pick
            page.set_input_files("#upload-button-input", [str(f) for f in files])
            try:
                page.wait_for_function(shown, timeout=20_000)
                break
            except playwright_api.TimeoutError:
                if attempt == 2:
                    raise
        # sending before every upload has landed would send the message without them (the
        # answer's checks below then fail); an upload the listener missed only costs the wait
        deadline = time.monotonic() + 60
        while len(uploaded) < len(files) and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        page.remove_listener("response", listener)
    page.fill("#chat-input", text)
    page.wait_for_selector("#chat-submit:not([disabled])", timeout=60_000)
    page.click("#chat-submit")
    wait_turn(page)
    return page.locator(".ai-message").last


def wait_turn(page: object) -> None:
    """Wait for the running turn (the composer's stop button) to finish."""
    with contextlib.suppress(playwright_api.TimeoutError):  # or it is already over
        page.wait_for_selector("#stop-button", timeout=15_000)
    page.wait_for_selector("#stop-button", state="detached", timeout=300_000)


# ---------------------------------------------------------------------------------------------
def test_open_chat_streams_cites_and_opens_the_pdf_page(
    open_server: ChatServer, browser: object, media: dict[str, Path], model: FakeLLMServer
) -> None:
    """Upload a screenshot and a PDF, ask; the answer streams token by token from the hosted
    model, cites its sources, shows retrieved images inline, and a PDF citation opens the PDF
    at the cited page."""
    page = new_page(browser, open_server.url)
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(str(f))))
    page.wait_for_selector("#chat-input", timeout=60_000)
    page.wait_for_selector("[id^=starter-]", timeout=30_000)  # they follow the settings fetch
    assert page.locator("[id^=starter-]").count() >= 3  # starter prompts for a first visit
    ask(page, QUESTION, [media["pdf"], media["png"]])
    page.wait_for_selector("text=Sources", timeout=60_000)

    # Streamed: the answer arrived as several stream_token events, and it is the model's text.
    tokens = [f for f in frames if '"stream_token"' in f]
    assert len(tokens) >= 5, f"expected a streamed answer, got {len(tokens)} token frames"
    assert "Every lorry is inspected after 40,000 kilometres" in page.content()
    assert model.requests, "the hosted model was never called"
    # Steps with timings, one per node.
    for title in ("Reading the question", "Searching the knowledge base", "Writing the answer"):
        assert page.locator(f"text=/{title} .*(ms|s)$/").count() >= 1, title
    # Evidence inline: a retrieved image served by the owner-checked blob route, loaded.
    page.wait_for_function(
        "[...document.querySelectorAll('img.inline-image')]"
        ".some(i => i.src.includes('/vistarag/blob/') && i.complete && i.naturalWidth > 0)",
        timeout=30_000,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui_answer.png"))

    # A PDF citation's chip names its page; the whole PDF opens in the side view at that page.
    link = page.locator("a.element-link", has_text=re.compile(r"^fleet_report\.pdf p\. \d+$"))
    assert link.count() >= 1, page.locator(".ai-message").last.inner_text()
    cited_page = int(re.search(r"p\. (\d+)", link.first.inner_text()).group(1))
    page.locator("a.element-link", has_text="fleet_report.pdf (all pages)").first.click()
    page.wait_for_selector(f"#side-view-content >> text=/{cited_page} \\/ 3/", timeout=30_000)
    expected = {1: PDF_PAGE1, 2: PDF_PAGE2}.get(cited_page)
    if expected:
        words = " ".join(expected.split()[:3])
        page.wait_for_selector(f"#side-view-content .textLayer >> text=/{words}/",
                               timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "ui_pdf_citation.png"))
    # Chainlit wrote nothing into the working directory.
    assert not (open_server.cwd / ".chainlit").exists()
    assert not (open_server.cwd / ".files").exists()
    page.context.close()


def test_open_chat_arrives_signed_in_without_a_login_detour(
    open_server: ChatServer, browser: object
) -> None:
    """Without users there is no login: the page itself comes signed in as the local user, so
    a first visit stays on the chat. (Chainlit's header-auth flow alone reloads /login twice
    first, and a message typed on the chat meanwhile is lost.)"""
    page = new_page(browser, open_server.url)
    page.wait_for_selector("#chat-input", timeout=60_000)
    wait_connected(page)  # the socket connects only once the client has its user
    page.wait_for_timeout(1000)
    assert CONNECTED[id(page)], "the chat never connected"
    assert not [u for u in NAVIGATED[id(page)] if "/login" in u], NAVIGATED[id(page)]
    page.context.close()

    # the page load carries the cookie; the client's API calls without one are refused
    first = httpx.get(open_server.url + "/", headers={"Accept": "text/html"})
    assert first.status_code == 200 and first.cookies.get("access_token"), first.headers
    me = httpx.get(open_server.url + "/user", cookies=first.cookies)
    assert me.status_code == 200 and me.json()["identifier"] == "local", me.text
    assert httpx.get(open_server.url + "/user").status_code == 401


def test_thread_resumes_after_restart_with_elements_and_memory(
    open_server: ChatServer, browser: object
) -> None:
    """After a restart the thread is listed, opens with its answer and evidence, and the
    LangGraph checkpoints are keyed by the same thread id."""
    db = open_server.home / "ui" / "chat.sqlite"
    with sqlite3.connect(db) as conn:
        threads = [r[0] for r in conn.execute("SELECT id FROM threads")]
        evidence = conn.execute(
            "SELECT COUNT(*) FROM elements WHERE url LIKE '/vistarag/%'").fetchone()[0]
    assert threads and evidence >= 2
    with sqlite3.connect(open_server.home / "checkpoints.sqlite") as conn:
        graph_threads = {r[0] for r in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    assert set(threads) & graph_threads, (threads, graph_threads)

    open_server.stop()
    open_server.start()
    page = new_page(browser, open_server.url)
    page.wait_for_selector("#chat-input", timeout=60_000)
    thread = page.locator(f'#thread-{threads[0]}')
    thread.wait_for(timeout=60_000)
    thread.click()
    page.wait_for_selector("text=Sources", timeout=60_000)
    assert "Every lorry is inspected" in page.content()
    page.wait_for_function(
        "[...document.querySelectorAll('img.inline-image')]"
        ".some(i => i.src.includes('/vistarag/blob/') && i.complete && i.naturalWidth > 0)",
        timeout=30_000,
    )
    link = page.locator("a.element-link", has_text=re.compile(r"^fleet_report\.pdf p\. \d+$"))
    cited_page = int(re.search(r"p\. (\d+)", link.first.inner_text()).group(1))
    page.locator("a.element-link", has_text="fleet_report.pdf (all pages)").first.click()
    page.wait_for_selector(f"#side-view-content >> text=/{cited_page} \\/ 3/", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "ui_resumed.png"))
    page.context.close()


def test_agent_tool_calls_show_as_steps_with_their_arguments(
    open_server: ChatServer, browser: object, model: FakeLLMServer
) -> None:
    """A comparison takes the agent path on the hosted model: each tool call is a step with
    its timing and hits, whose input is the call's arguments; the answer still cites."""
    from tests.llm_servers import Reply

    model.queue(Reply(tool_calls=[("retrieve", {"query": "lorry inspection interval", "k": 3})]))
    page = new_page(browser, open_server.url)
    ask(page, "Compare how often lorries are inspected with the proxy error code.")
    page.wait_for_selector("text=Sources", timeout=60_000)
    # A step's header is a button whose id is "step-" + its name (its text starts with a
    # space, so a ^-anchored text= regex never matches it).
    step = page.locator('[id^="step-Tool: retrieve · "]').first
    step.wait_for(timeout=30_000)
    assert re.search(r"hits for 'lorry inspection interval' · [\d.]+ m?s$",
                     step.inner_text().strip()), step.inner_text()
    step.click()  # the step opens on its input: the tool call's arguments, as JSON
    body = page.locator(f'[id="{step.get_attribute("aria-controls")}"]')
    expect = playwright_api.expect
    expect(body).to_contain_text(re.compile(r'"query":\s*"lorry inspection interval"'),
                                 timeout=30_000)
    expect(body).to_contain_text(re.compile(r'"k":\s*3\b'))
    assert "Every lorry is inspected after 40,000 kilometres" in page.content()
    page.context.close()


def cited_upload(
    server: ChatServer, browser: object, question: str, upload: Path, label: re.Pattern[str]
) -> tuple[Any, Any]:
    """As Alice: add ``upload``, then ask ``question``; the page, and the answer's first
    citation link whose text matches ``label``."""
    page = new_page(browser, server.url)
    login(page, ALICE)
    ask(page, "", [upload])  # sent alone, a file is added (with a question, an image is the query)
    ask(page, question)
    page.wait_for_selector("text=Sources", timeout=120_000)
    link = page.locator("a.element-link", has_text=label).first
    link.wait_for(timeout=30_000)
    return page, link


def test_video_citation_plays_from_the_cited_moment(
    login_server: ChatServer, browser: object, tmp_path: Path
) -> None:
    """A dropped video is ingested; the answer cites it, its chip naming the cited second; the
    citation opens the video in the side view playing from that second (a ``#t=`` media
    fragment, autoplay)."""
    video = make_talk(tmp_path / "harbour_update.mp4")
    page, link = cited_upload(login_server, browser, "When is the harbour expansion opening?",
                              video, re.compile(r"^harbour_update\.mp4 @ "))
    shown = link.inner_text()
    start = re.search(r"@ (\d\d):(\d\d)$", shown)
    assert start, shown
    seconds = int(start.group(1)) * 60 + int(start.group(2))
    assert 3 <= seconds <= 5, shown  # the slide's scene starts at 4 s
    link.click()
    page.wait_for_selector("#side-view-content video", timeout=30_000)
    page.wait_for_function(  # from the cited second on, and playing
        "(() => { const v = document.querySelector('#side-view-content video');"
        f" return v && v.readyState >= 2 && !v.paused && v.currentTime > {seconds} - 0.6; }})()",
        timeout=30_000,
    )
    page.screenshot(path=str(ARTIFACTS / "ui_video_citation.png"))
    page.context.close()


def test_a_login_server_signs_no_one_in_by_itself(login_server: ChatServer) -> None:
    """With users configured, loading the page hands out no session: /user stays 401."""
    first = httpx.get(login_server.url + "/", headers={"Accept": "text/html"})
    assert first.status_code == 200 and not first.cookies.get("access_token"), first.headers
    assert httpx.get(login_server.url + "/user", cookies=first.cookies).status_code == 401


BACKUP_LINES = ["Backup Assistant", "Backup failed: disk quota exceeded",
                "Error code BKP-7731 on volume ARCHIVE-02"]
BAR = (200, 30, 30)  # the screenshot's title bar: a colour none of the other test media has


def test_image_citation_shows_the_image(
    login_server: ChatServer, browser: object, tmp_path: Path
) -> None:
    """A dropped screenshot is ingested (its words read by OCR); the answer cites it (the
    image, or a region of it), and the citation opens that very image in the side view, served
    by an owner-checked route (a region's with the region outlined)."""
    from PIL import ImageDraw

    shot = tmp_path / "backup_failure.png"
    image = text_image(BACKUP_LINES, size=(720, 260))
    ImageDraw.Draw(image).rectangle([0, 0, 719, 11], fill=BAR)
    image.save(shot)
    page, link = cited_upload(login_server, browser, "Why did the backup fail with error BKP-7731?",
                              shot, re.compile(r"^backup_failure\.png( region \d+)?$"))
    link.click()
    shown = page.locator("#side-view-content img").first
    shown.wait_for(timeout=30_000)
    # loaded, and on screen once the side view has slid in
    page.wait_for_function(
        "(() => { const i = document.querySelector('#side-view-content img');"
        " if (!i || !i.complete || i.naturalWidth === 0) return false;"
        " const b = i.getBoundingClientRect();"
        " return b.width > 100 && b.left >= 0 && b.right <= window.innerWidth; })()",
        timeout=30_000)
    # What is on screen is the cited screenshot itself: its size and its colours.
    seen = page.evaluate(
        """() => {
            const i = document.querySelector('#side-view-content img');
            const c = document.createElement('canvas');
            c.width = i.naturalWidth; c.height = i.naturalHeight;
            const g = c.getContext('2d');
            g.drawImage(i, 0, 0);
            const at = (x, y) => [...g.getImageData(x, y, 1, 1).data].slice(0, 3);
            return {src: i.getAttribute('src'), w: i.naturalWidth, h: i.naturalHeight,
                    bar: at(360, 5), ground: at(700, 240)};
        }"""
    )
    assert seen["src"].startswith(("/vistarag/blob/", "/vistarag/region/")), seen
    assert (seen["w"], seen["h"]) == image.size, seen
    assert all(abs(a - b) <= 24 for a, b in zip(seen["bar"], BAR, strict=True)), seen
    assert min(seen["ground"]) >= 230, seen
    page.screenshot(path=str(ARTIFACTS / "ui_image_citation.png"))
    page.context.close()


def test_users_do_not_see_each_others_uploads(
    login_server: ChatServer, browser: object, media: dict[str, Path], tmp_path: Path
) -> None:
    """Alice's upload answers Alice; Bob gets nothing of it by chat, by search, or by fetching
    Alice's element and blob URLs with his own session."""
    alice = new_page(browser, login_server.url)
    login(alice, ALICE)
    ask(alice, "How often are the lorries inspected?", [media["pdf"]])
    alice.wait_for_selector("text=Sources", timeout=60_000)
    assert "40,000" in alice.content()
    # Offline: a plain notice says how to enable a VLM (sent just after the answer).
    alice.locator("text=/ANTHROPIC_API_KEY/").first.wait_for(timeout=30_000)
    with sqlite3.connect(login_server.home / "ui" / "chat.sqlite") as conn:
        stored = [r[0] for r in conn.execute("SELECT url FROM elements WHERE url IS NOT NULL")]
    assert any("/vistarag/source/" in u for u in stored)

    bob = new_page(browser, login_server.url)
    login(bob, BOB)
    odd = tmp_path / "minutes.xyz"
    odd.write_text("not a format VistaRAG reads", encoding="utf-8")
    ask(bob, "How often are the lorries inspected?", [odd])
    # An unsupported file is named in a clear message; the question is still answered.
    bob.wait_for_selector("text=/minutes.xyz.*cannot read this kind of file/", timeout=30_000)
    answer = "\n".join(bob.locator(".ai-message").all_inner_texts())
    assert "40,000" not in answer and "fleet_report" not in answer
    bob.fill("#chat-input", "/search")
    bob.keyboard.press("Enter")
    bob.fill("#chat-input", "lorries inspected")
    bob.click("#chat-submit")
    wait_turn(bob)
    assert "fleet_report" not in bob.locator(".ai-message").last.inner_text()
    # Bob's session cannot fetch what Alice's answer stored; Alice's can.
    for url in stored:
        if not url.startswith("/vistarag/"):
            continue
        bob_status = bob.request.get(login_server.url + url).status
        alice_status = alice.request.get(login_server.url + url).status
        assert bob_status == 404, (url, bob_status)
        assert alice_status == 200, (url, alice_status)
    # Path tricks get nowhere either.
    for probe in ("/vistarag/files/..%2F..%2Fchat.sqlite", "/vistarag/blob/..%2Fchat.sqlite",
                  "/vistarag/source/x/..%2F..%2Fchat.sqlite"):
        assert bob.request.get(login_server.url + probe).status in (404, 422), probe
    alice.screenshot(path=str(ARTIFACTS / "ui_alice.png"))
    bob.screenshot(path=str(ARTIFACTS / "ui_bob.png"))
    alice.context.close()
    bob.context.close()
