"""The VistaRAG chat (Chainlit): started by ``vistarag ui``, serving the same graph as the CLI.

One turn = ``astream_turn`` over the compiled graph: each node (and each agent tool call) shows
as a step with its timing and a one-line summary, the answer streams token by token, and the
answer's citations and retrieved images arrive as elements. Chat history, elements and graph
memory live under the data dir and share one thread id, so a restarted server resumes them.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import chainlit as cl
from chainlit.server import app as server_app
from chainlit.types import ThreadDict
from chainlit.utils import utc_now

from vistarag.agent.ingest.discover import kind_of
from vistarag.agent.llm import configured_models, default_model
from vistarag.agent.query_ocr import QueryImageText, query_ocr
from vistarag.agent.settings import Settings
from vistarag.agent.types import plural
from vistarag.graphs.runner import TurnEvent, TurnResult, astream_turn
from vistarag.ui.web import evidence
from vistarag.ui.web.auth import check_login
from vistarag.ui.web.chat_prefs import AllKbAccess, ChatPrefs, knowledge_bases, widgets
from vistarag.ui.web.local_session import install_local_session
from vistarag.ui.web.page_view import install_page_route
from vistarag.ui.web.persistence import make_data_layer
from vistarag.ui.web.routes import install_routes
from vistarag.ui.web.runtime import ChatRuntime
from vistarag.ui.web.settings import UISettings, chat_db_path, elements_dir
from vistarag.ui.web.threads import REFUSED, ThreadOwners, admit

SETTINGS = Settings()
UI = UISettings()
RUNTIME = ChatRuntime(SETTINGS)
DATA_LAYER = make_data_layer(chat_db_path(SETTINGS), elements_dir(SETTINGS))
THREAD_OWNERS = ThreadOwners(chat_db_path(SETTINGS))

STEP_TITLES = {
    "detect_modality": "Reading the question",
    "ingest_attachments": "Adding the attachments",
    "search": "Searching the knowledge base",
    "encode_query": "Encoding the query",
    "retrieve": "Searching the knowledge base",
    "rerank": "Ranking the results",
    "synthesize": "Writing the answer",
    "not_found": "Nothing found",
    "agent": "Researching (several searches)",
}
STEP_ICONS = {
    "detect_modality": "scan-eye",
    "ingest_attachments": "file-plus",
    "search": "search",
    "encode_query": "binary",
    "retrieve": "search",
    "rerank": "list-ordered",
    "synthesize": "sparkles",
    "not_found": "search-x",
    "agent": "route",
}
# Browsers name an image pasted from the clipboard "image.png"; anything else was picked/dropped.
PASTED = re.compile(r"^image(\s*\(\d+\))?\.(png|jpe?g|gif|webp|bmp)$", re.I)
OFFLINE_NOTICE = (
    "Offline mode: answers quote your documents (extractive). For answers written by a "
    "vision-language model, set `ANTHROPIC_API_KEY`, or `OPENAI_API_KEY` / `OPENAI_BASE_URL` "
    "(any OpenAI-compatible server: vLLM, Ollama), then restart `vistarag ui`."
)
TEXT_BRIDGE_NOTICE = (
    "No image-text model is installed, so images are found through the text in them "
    "(text-bridge mode). See the README to enable the joint image space."
)


# ---- persistence and login ---------------------------------------------------------------
@cl.data_layer
def data_layer() -> Any:
    return DATA_LAYER


if UI.login:

    @cl.password_auth_callback
    async def password_login(username: str, password: str) -> cl.User | None:
        # as slow for a name that does not exist as for a wrong password (a dummy hash)
        ok = await asyncio.to_thread(check_login, UI.user_hashes, username, password)
        return cl.User(identifier=username, metadata={"provider": "password"}) if ok else None

else:

    def local_user() -> cl.User:
        return cl.User(identifier=SETTINGS.owner, metadata={"provider": "local"})

    @cl.header_auth_callback
    async def local_login(headers: Any) -> cl.User | None:
        """No users configured: everyone reaching this (loopback by default) server is the
        local user, whose history and uploads persist like a logged-in user's."""
        return local_user()

    # ... and the page arrives signed in, instead of detouring twice through /login
    install_local_session(server_app, local_user)


def owner_of(user: Any) -> str | None:
    """The owner id a signed-in user's points carry: the login name, or the local owner."""
    identifier = getattr(user, "identifier", None)
    if identifier is None:
        return None
    return identifier if UI.login else SETTINGS.owner


ACCESS = AllKbAccess(RUNTIME.engine, RUNTIME.kb, DATA_LAYER.storage_provider, owner_of)
install_routes(server_app, ACCESS)
install_page_route(server_app, ACCESS)  # after: it goes ahead of the /vistarag/ catch-all


async def forget_thread(thread_id: str) -> None:
    """Before Chainlit deletes a thread: its id is never usable again, its graph memory goes."""
    await asyncio.to_thread(THREAD_OWNERS.tombstone, thread_id)
    await RUNTIME.forget(thread_id)


DATA_LAYER.before_delete.append(forget_thread)


@cl.on_app_startup
async def warm_up() -> None:
    asyncio.get_running_loop().run_in_executor(None, RUNTIME.warm_up)


def current_owner() -> str:
    return owner_of(cl.user_session.get("user")) or SETTINGS.owner


# ---- chat start, starters, resume --------------------------------------------------------
SAMPLE_KB = "demo"
"""The knowledge base ``make run`` fills with the sample corpus (``evals/sample_corpus.py``)."""
SAMPLE_STARTERS = [  # each cites a different kind of evidence in the sample
    ("Lorry inspections (PDF page)", "How often is each lorry inspected?"),
    ("An error on a screenshot", "What does error code QX-4471 mean?"),
    ("The safety briefing (video)", "What should you wear in the yard, says the safety briefing?"),
    ("A chart", "What was the revenue in Q3 2024?"),
]
STARTERS = [
    ("What is in my knowledge base?",
     "Give me an overview of the documents in my knowledge base."),
    ("Explain an error screenshot",
     "What does the error in my screenshot mean, and how do I fix it?"),
    ("Find a figure or table", "Which document has a chart or table about revenue?"),
    ("Summarise a document",
     "Summarise the most recent document I added, with page references."),
]


@cl.set_starters
async def starters(user: Any = None) -> list[cl.Starter]:
    """Questions the sample answers (``make run``), else general ones."""
    chosen = SAMPLE_STARTERS if SETTINGS.kb == SAMPLE_KB else STARTERS
    return [cl.Starter(label=label, message=message) for label, message in chosen]


COMMANDS = [{"id": "search", "icon": "search", "description": "Search without an answer",
             "button": False, "persistent": False}]
"""The composer's Tools menu: sent on every start and resume (a resumed chat has none else)."""


@cl.on_chat_start
async def chat_start() -> None:
    cl.user_session.set("notified", False)
    await cl.context.emitter.set_commands(COMMANDS)
    await show_settings(DEFAULT_PREFS)


@cl.on_chat_resume
async def chat_resume(thread: ThreadDict) -> None:
    """The graph's memory is keyed by this thread's id, so follow-ups continue where it was;
    the thread's settings (its metadata) come back with it."""
    cl.user_session.set("notified", True)
    await cl.context.emitter.set_commands(COMMANDS)
    metadata = thread.get("metadata") or {}
    if isinstance(metadata, str):
        metadata = json.loads(metadata or "{}")
    await show_settings(ChatPrefs.from_values(metadata.get("chat_settings"), DEFAULT_PREFS,
                                              MODEL_KEYS))


# ---- chat settings ------------------------------------------------------------------------
MODELS = configured_models(SETTINGS)  # the answer models on offer, extractive last
MODEL_KEYS = [m.key for m in MODELS]
DEFAULT_PREFS = ChatPrefs(kb=SETTINGS.kb, top_k=SETTINGS.top_k or 5, model=default_model(SETTINGS))


async def show_settings(prefs: ChatPrefs) -> None:
    """Send the settings panel showing ``prefs`` and make them this session's."""
    kbs = await asyncio.to_thread(knowledge_bases, RUNTIME.engine, prefs.kb)
    await cl.ChatSettings(widgets(prefs, kbs, MODELS)).send()
    cl.user_session.set("prefs", prefs)


def current_prefs() -> ChatPrefs:
    prefs = cl.user_session.get("prefs")
    return prefs if isinstance(prefs, ChatPrefs) else DEFAULT_PREFS


@cl.on_settings_update
async def settings_update(values: dict[str, Any]) -> None:
    """The user changed the settings: the next turn uses them; the thread keeps them."""
    prefs = ChatPrefs.from_values(values, current_prefs(), MODEL_KEYS)
    cl.user_session.set("prefs", prefs)
    await save_prefs(prefs)
    await cl.Message(content=f"_Settings: {prefs.describe(MODELS)}._", author="VistaRAG").send()


async def save_prefs(prefs: ChatPrefs) -> None:
    """Into the thread's metadata, where a resumed thread finds them (once the thread exists:
    a chat's first message creates it)."""
    thread_id = cl.context.session.thread_id
    if await DATA_LAYER.get_thread(thread_id) is not None:
        await DATA_LAYER.update_thread(thread_id, metadata={"chat_settings": prefs.values()})


# ---- one turn -----------------------------------------------------------------------------
@cl.on_message
async def on_message(message: cl.Message) -> None:
    owner = current_owner()
    thread_id = cl.context.session.thread_id
    if await admit(THREAD_OWNERS, thread_id, owner, has_memory=RUNTIME.has_memory) != "ok":
        await cl.Message(content=REFUSED, author="VistaRAG").send()
        return
    prefs = current_prefs()
    text = (message.content or "").strip()
    images, uploads, problems = classify(message.elements or [], bool(text),
                                         prefs.add_attachments)
    for problem in problems:
        await cl.Message(content=problem, author="VistaRAG").send()
    attachments, ingest_s = await add_files(uploads, owner, prefs.kb) if uploads else ([], 0.0)
    if message.command == "search" or text.startswith("/search "):
        await search(text.removeprefix("/search ").strip(), owner, prefs)
        return
    if not text and not images:
        if attachments:
            names = ", ".join(p.name for p in attachments)
            await DATA_LAYER.title_untitled(thread_id, f"Added {names}")
            await cl.Message(content=f"Added {names}. Ask me anything about it.").send()
        return
    if images:
        await read_images(images)
    await answer(text, images, attachments, owner, prefs, ingest_s)
    await save_prefs(prefs)


def classify(
    elements: list[Any], has_question: bool = False, add_images: bool = False
) -> tuple[list[str], list[tuple[Path, str]], list[str]]:
    """Query images, files for the knowledge base, and problems.

    An image is the question's image (never added to the knowledge base) when it was pasted,
    or attached with a question; an image attached without a question, or with the setting
    "add attachments" on, is added like other files. Unsupported and oversized files get a
    message naming them; the rest of the turn goes on.
    """
    images: list[str] = []
    uploads: list[tuple[Path, str]] = []
    problems: list[str] = []
    limit = UI.max_upload_mb * 1024 * 1024
    for element in elements:
        path = Path(element.path) if getattr(element, "path", None) else None
        name = element.name or (path.name if path else "file")
        if path is None or not path.is_file():
            problems.append(f"**{name}**: the upload did not arrive; please attach it again.")
            continue
        size = path.stat().st_size
        kind = kind_of(Path(name)) or kind_of(path)
        if size > limit:
            problems.append(
                f"**{name}** is {size / 1e6:.1f} MB, over the {UI.max_upload_mb:g} MB limit "
                "(raise VISTARAG_UI_MAX_UPLOAD_MB); it was not added."
            )
        elif kind is None:
            problems.append(
                f"**{name}**: I cannot read this kind of file "
                f"({Path(name).suffix or 'no extension'}). I can add PDFs, images (PNG, "
                "JPEG, WebP, ...), videos and text or Markdown files; it was not added."
            )
        elif kind == "image" and (PASTED.match(name) or (has_question and not add_images)):
            images.append(str(path))
        else:
            uploads.append((path, name))
    return images, uploads, problems


async def add_files(
    uploads: list[tuple[Path, str]], owner: str, kb: str
) -> tuple[list[Path], float]:
    """Ingest dropped files in a worker thread (the chat stays usable), showing each file's
    progress (pages, seconds of video) as it goes, its result or error, and the real time."""
    kept: list[Path] = []
    lines: list[str] = []
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    async with cl.Step(name="Adding to your knowledge base", type="tool", icon="upload",
                       show_input=False) as step:
        step.input = ", ".join(name for _, name in uploads)
        for i, (path, name) in enumerate(uploads, 1):
            head = f"File {i} of {len(uploads)}"
            progress = UploadProgress(step, lines, name, head, loop)
            await progress.show("reading...")
            t0 = time.perf_counter()
            try:
                stored = await asyncio.to_thread(RUNTIME.keep_upload, path, name, owner)
                result = await asyncio.to_thread(RUNTIME.ingest, stored, owner, kb,
                                                 progress.report)
            except OSError as exc:
                lines.append(f"- {name}: could not be stored ({exc.strerror or exc})")
                continue
            took = seconds(time.perf_counter() - t0)
            if result.status in ("added", "replaced", "unchanged"):
                kept.append(stored)
                detail = f"{result.points} passages and images" if result.points else "known"
                pages = f", {progress.pages_line()}" if progress.total else ""
                lines.append(f"- {name}: {result.status} ({detail}{pages}) · {took}")
            else:
                lines.append(f"- {name}: {result.status}: {result.message} · {took}")
        total = time.perf_counter() - started
        step.output = "\n".join(lines)
        step.name = (f"Added {len(kept)} of {len(uploads)} files to {kb!r} · "
                     f"{seconds(total)}")
    return kept, total


def seconds(s: float) -> str:
    return f"{s:.2f} s" if s >= 1 else f"{s * 1000:.0f} ms"


class UploadProgress:
    """A file's progress (``(stage, done, total)`` from the ingestor's worker thread) shown on
    the upload step, at most a few times a second."""

    def __init__(self, step: cl.Step, lines: list[str], name: str, head: str,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.step, self.lines, self.name, self.head, self.loop = step, lines, name, head, loop
        self.stage, self.done, self.total = "", 0.0, None
        self._last = 0.0

    def pages_line(self) -> str:
        total = f"/{self.total:g}" if self.total else ""
        if self.stage == "ocr":  # a scanned page or an image, seconds each
            return f"OCR of page {self.done:g}{total}" if (self.total or 0) > 1 else "OCR"
        unit = "pages" if self.stage == "pages" else f"{self.stage} done"
        return f"{self.done:g}{total} {unit}"

    async def show(self, status: str) -> None:
        self.step.name = f"Adding to your knowledge base · {self.head}: {self.name} · {status}"
        self.step.output = "\n".join([*self.lines, f"- {self.name}: {status}"])
        await self.step.update()

    def report(self, stage: str, done: float, total: float | None) -> None:
        if stage == "stored":
            return  # the step follows reading (pages, seconds of video); the result says stored
        self.stage, self.done, self.total = stage, done, total
        now = time.monotonic()
        if now - self._last < 0.25 and not (total and done >= total):
            return
        self._last = now
        asyncio.run_coroutine_threadsafe(self.show(self.pages_line()), self.loop)


async def read_images(images: list[str]) -> None:
    """Read the question's images now, as a step of their own (what they say, how long it
    took); the search reuses the reading (cached by content)."""
    from vistarag.agent.imaging import flatten
    from vistarag.agent.search import BLOB_SCHEME

    engine = RUNTIME.engine

    def pixels(path: str) -> Any:
        """The pixels the search reads: the stored query image (a JPEG re-encode for RGB)."""
        ref = engine.image_ref(path).removeprefix(BLOB_SCHEME)
        return flatten(engine.blobs.open_image(ref))

    async with cl.Step(name="Reading the screenshot", type="tool", icon="scan-text",
                       show_input=False) as step:
        started = time.perf_counter()
        readings: list[QueryImageText] = []
        for path in images:
            try:
                image = await asyncio.to_thread(pixels, path)
                readings.append(await asyncio.to_thread(query_ocr().read, image))
            except Exception as exc:  # the search reports an unreadable image itself
                step.output = f"could not read {Path(path).name}: {exc}"
        lines = sum(len(r.lines) for r in readings)
        labels = sum(len(r.labels) for r in readings)
        step.output = "\n\n".join(r.text for r in readings) or step.output or "(no text)"
        step.name = step_line("Reading the screenshot", (time.perf_counter() - started) * 1000,
                              f"{plural(lines, 'line')}, {plural(labels, 'UI label')}")


def step_line(title: str, ms: float | None, summary: str) -> str:
    parts = [title]
    if summary:
        parts.append(summary)
    if ms is not None:
        parts.append(f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms")
    return " · ".join(parts)


def derived_summary(node: str, result: TurnResult) -> str:
    """A node's one-line summary from the turn's result, where the node sent none."""
    if node == "detect_modality":
        return f"{result.modality or 'text'} question"
    if node == "ingest_attachments":
        return f"{len(result.ingested)} files"
    if node in ("search", "rerank"):
        return f"kept {len(result.sources)} hits"
    if node == "agent":
        return f"{len(result.trajectory)} tool calls"
    if node == "synthesize":
        return f"{result.synthesizer or 'model'}, {len(result.citations)} citations"
    return ""


async def answer(
    text: str, images: list[str], attachments: list[Path], owner: str,
    prefs: ChatPrefs | None = None, ingest_s: float = 0.0,
) -> None:
    graph = await RUNTIME.graph()
    thread_id = cl.context.session.thread_id
    steps: dict[str, tuple[cl.Step, float | None, str]] = {}
    reply: cl.Message | None = None
    result: TurnResult | None = None
    context = (prefs or DEFAULT_PREFS).context(owner)
    async for item in astream_turn(graph, text, images=images, attachments=attachments,
                                   thread_id=thread_id, context=context):
        if isinstance(item, TurnResult):
            result = item
            break
        reply = await show_event(item, steps, reply)
    if result is None:  # the stream ended without a result: nothing more to show
        return
    for node, (step, ms, summary) in steps.items():
        if node == "ingest_attachments" and ingest_s:  # the files were added above: their time
            ms, summary = ingest_s * 1000, f"{len(attachments)} files added before the search"
        step.name = step_line(STEP_TITLES.get(node, node), ms,
                              summary or derived_summary(node, result))
        await step.update()
    await finish(reply, result, owner)


def run_step_id() -> str | None:
    """The ``on_message`` run step, so node steps nest under the turn like the answer does."""
    step = cl.context.current_step
    return step.id if step else None


async def show_event(
    event: TurnEvent, steps: dict[str, tuple[cl.Step, float | None, str]],
    reply: cl.Message | None,
) -> cl.Message | None:
    if event.kind == "token":
        if reply is None:
            reply = cl.Message(content="")
        await reply.stream_token(event.text)
    elif event.kind == "step" and event.status == "start":
        step = cl.Step(name=STEP_TITLES.get(event.name, event.name), type="tool",
                       show_input=False, parent_id=run_step_id(),
                       icon=STEP_ICONS.get(event.name, "circle-dot"))
        step.start = utc_now()
        await step.send()
        steps[event.name] = (step, None, "")
    elif event.kind == "step":
        if event.name in steps:
            step, _, _ = steps[event.name]
            step.end = utc_now()
            step.name = step_line(STEP_TITLES.get(event.name, event.name), event.ms,
                                  event.summary)
            await step.update()
            steps[event.name] = (step, event.ms, event.summary)
    elif event.kind == "tool":
        data = event.data or {}
        step = cl.Step(name=step_line(f"Tool: {event.name}", event.ms, event.summary
                                      or f"{data.get('hits', 0)} hits"),
                       type="tool", language="json", parent_id=run_step_id(), icon="wrench")
        step.input = json.dumps(data.get("args", {}), ensure_ascii=False)
        step.output = json.dumps({k: v for k, v in data.items() if k != "args"},
                                 ensure_ascii=False, default=str)[:4000]
        step.start = step.end = utc_now()
        await step.send()
    elif event.kind == "ingest":
        data = event.data or {}
        if "ingest_attachments" in steps:
            step = steps["ingest_attachments"][0]
            step.output = (step.output + "\n" if step.output else "") + (
                f"- {event.name}: {event.status}"
                + (f" ({data.get('message')})" if data.get("message") else ""))
            await step.update()
    elif event.kind == "notice" and event.text:
        await cl.Message(content=event.text, author="VistaRAG").send()
    return reply


async def finish(reply: cl.Message | None, result: TurnResult, owner: str) -> None:
    """Close the streamed answer with its sources list and evidence elements."""
    citations = evidence.visible(result.citations, result.sources, owner)
    # The final answer, not the streamed text: the same words, but a marker renumbered after a
    # stream broke off and resumed, or one citing no source, reads as the sources list does.
    content = evidence.linkable_markers(result.answer or (reply.content if reply else ""))
    reply = reply or cl.Message(content="")
    reply.content = content.rstrip() + evidence.sources_markdown(citations)
    reply.elements = evidence.elements_for(citations)
    if reply.persisted:
        await reply.update()
    else:
        # send() also ends a stream; unlike update() it stamps created_at and creates the
        # step in the data layer, without which a resumed thread drops the answer
        await reply.send()
    notices = [n for n in result.notices if n]
    if not cl.user_session.get("notified"):
        cl.user_session.set("notified", True)
        if result.synthesizer == "extractive" and len(MODELS) == 1:  # none configured
            notices.append(OFFLINE_NOTICE)
        if RUNTIME.text_bridge:
            notices.append(TEXT_BRIDGE_NOTICE)
    if notices:
        await cl.Message(content="\n\n".join(f"_{n}_" for n in dict.fromkeys(notices)),
                         author="VistaRAG").send()


# ---- search without an answer ---------------------------------------------------------------
async def search(text: str, owner: str, prefs: ChatPrefs | None = None) -> None:
    if not text:
        await cl.Message(content="Type what to look for after /search.").send()
        return
    async with cl.Step(name="Searching the knowledge base", type="tool", icon="search") as step:
        hits = await asyncio.to_thread(find, text, owner, prefs or DEFAULT_PREFS)
        step.name = f"Searching the knowledge base · {len(hits)} hits"
    if not hits:
        await cl.Message(content=f"Nothing found for **{text}**.").send()
        return
    from vistarag.agent.citations import cite_hits

    citations = cite_hits(hits, text)  # one line and one chip per source
    names = evidence.chip_names(citations)
    lines = [f"- {evidence.marker(c)} {names[c.n]}: {' '.join(c.snippet.split())[:140]}"
             for c in citations]
    await cl.Message(content=f"**Results for {text}**\n" + "\n".join(lines),
                     elements=evidence.elements_for(citations)).send()


def find(text: str, owner: str, prefs: ChatPrefs) -> list[Any]:
    """The engine's one search function, for this owner only, with the chat's settings."""
    engine = RUNTIME.engine
    from vistarag.agent.search import SearchRequest

    ctx = prefs.context(owner)
    return engine.search(SearchRequest(text=text, kb=ctx.kb, owner=owner, top_k=ctx.top_k,
                                       modality=ctx.modality)).hits
