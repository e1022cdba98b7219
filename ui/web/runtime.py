"""The chat's process-wide pieces: one engine, one compiled graph with an async checkpointer.

The graph is the same ``build_graph`` the CLI uses; only the checkpointer differs, because
Chainlit runs turns on an event loop (``astream_turn``) and LangGraph's sync savers have no
async methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from vistarag.agent.blobs import sha256_file
from vistarag.agent.engine import Engine
from vistarag.agent.errors import VistaRAGError
from vistarag.agent.ingest.pipeline import FileResult, Ingestor
from vistarag.agent.ingest.registry import ProgressCallback
from vistarag.agent.settings import Settings
from vistarag.ui.web.settings import uploads_dir

log = logging.getLogger("vistarag.ui")


async def async_checkpointer(settings: Settings) -> BaseCheckpointSaver | None:
    """The checkpointer ``settings.checkpointer`` names, in its async form."""
    kind = settings.checkpointer
    if kind == "none":
        return None
    if kind == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        return InMemorySaver()
    if kind == "postgres":
        if not settings.postgres_url:
            raise VistaRAGError("VISTARAG_CHECKPOINTER=postgres needs VISTARAG_POSTGRES_URL")
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg import AsyncConnection

        conn = await AsyncConnection.connect(
            settings.postgres_url, autocommit=True, prepare_threshold=0
        )
        saver: BaseCheckpointSaver = AsyncPostgresSaver(conn)
    else:
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        settings.home.mkdir(parents=True, exist_ok=True)
        saver = AsyncSqliteSaver(await aiosqlite.connect(str(settings.checkpoints_path)))
    await saver.setup()  # type: ignore[attr-defined]
    return saver


class ChatRuntime:
    """Engine + graph for one knowledge base, built on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = Engine(settings)
        self._graph: CompiledStateGraph | None = None
        self._saver: BaseCheckpointSaver | None = None
        self._saver_made = False
        self._lock = asyncio.Lock()
        self._saver_lock = asyncio.Lock()

    @property
    def kb(self) -> str:
        return self.settings.kb

    async def checkpointer(self) -> BaseCheckpointSaver | None:
        """The graph's memory (one saver per process, made on first use)."""
        async with self._saver_lock:
            if not self._saver_made:
                self._saver = await async_checkpointer(self.settings)
                self._saver_made = True
            return self._saver

    async def has_memory(self, thread_id: str) -> bool:
        """Whether the graph has checkpoints for ``thread_id``."""
        saver = await self.checkpointer()
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        return saver is not None and await saver.aget_tuple(config) is not None

    async def forget(self, thread_id: str) -> None:
        """Delete every checkpoint and pending write of ``thread_id``."""
        saver = await self.checkpointer()
        if saver is not None:
            await saver.adelete_thread(thread_id)

    async def graph(self) -> CompiledStateGraph:
        async with self._lock:
            if self._graph is None:
                from vistarag.graphs import build_graph

                saver = await self.checkpointer()
                self._graph = await asyncio.to_thread(
                    build_graph, self.settings, checkpointer=saver, engine=self.engine
                )
            return self._graph

    def warm_up(self) -> None:
        """Load the models and read the index into the page cache before the first question
        (in a worker thread)."""
        with contextlib.suppress(Exception):  # a missing knowledge base is said elsewhere
            self.engine.kb().warm_up()
        with contextlib.suppress(Exception):
            _ = self.engine.models.text_encoder
            _ = self.engine.models.joint
            _ = self.engine.reranker
            from vistarag.agent.query_ocr import query_ocr

            query_ocr().warm_up()

    @property
    def text_bridge(self) -> bool:
        """No joint image-text model: images are found through their OCR text."""
        try:
            return self.engine.models.joint is None
        except Exception:
            return True

    def ingestor(self, owner: str, kb: str | None = None) -> Ingestor:
        """An ingestor into ``kb`` (the default one) that writes ``owner`` on every point."""
        kb = kb or self.kb
        try:
            return self.engine.ingestor(kb, owner=owner)  # type: ignore[call-arg]
        except TypeError:  # an Engine without per-call owners
            settings = self.settings.model_copy(update={"owner": owner})
            return Ingestor(settings, self.engine.models, self.engine.kb(kb),
                            self.engine.blobs)

    def keep_upload(self, path: Path, name: str, owner: str) -> Path:
        """Copy a chat upload under ``uploads/<owner>/<sha256>/<name>`` (the session's own copy
        is deleted when the chat closes; citations need the file later)."""
        digest = sha256_file(path)
        safe_name = Path(name).name.strip().lstrip(".") or "upload"
        target = uploads_dir(self.settings) / _slug(owner) / digest[:32] / safe_name
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        return target

    def ingest(
        self, path: Path, owner: str, kb: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> FileResult:
        """Ingest one file; ``on_progress(stage, done, total)`` as it goes (pages, seconds).
        A knowledge base grown past the exact-search size gets its HNSW index built in the
        background (the chat keeps answering meanwhile)."""
        ingestor = self.ingestor(owner, kb)
        result = ingestor.ingest_file(path, on_progress=on_progress)
        with contextlib.suppress(Exception):  # indexing is an optimisation, never an error
            ingestor.kb.optimize(wait=False)
        return result

    def describe_mode(self) -> dict[str, Any]:
        s = self.settings
        hosted = (
            s.synthesizer in ("anthropic", "openai")
            or (s.synthesizer == "auto"
                and bool(s.anthropic_api_key or s.openai_api_key or s.openai_base_url))
        )
        return {"hosted": hosted, "text_bridge": self.text_bridge}


def _slug(owner: str) -> str:
    """A file-system-safe folder name for an owner id."""
    import hashlib
    import re

    clean = re.sub(r"[^A-Za-z0-9_.-]", "_", owner)[:40].strip(".") or "user"
    return f"{clean}-{hashlib.sha1(owner.encode()).hexdigest()[:8]}"
