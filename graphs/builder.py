"""``build_graph``: the one compiled LangGraph StateGraph every entry point uses."""

from __future__ import annotations

import sqlite3
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from vistarag.agent.engine import Engine
from vistarag.agent.settings import Settings
from vistarag.agent.synth.chat import ChatSynthesizer, make_synthesizer
from vistarag.graphs import nodes
from vistarag.graphs.agent import agent
from vistarag.graphs.context import VistaContext
from vistarag.graphs.routing import route_after_detect, route_after_search, route_to_path
from vistarag.graphs.services import Services, register
from vistarag.graphs.state import OutputState, TurnInput, VistaState

NODES = {
    "detect_modality": nodes.detect_modality,
    "ingest_attachments": nodes.ingest_attachments,
    "search": nodes.search,
    "synthesize": nodes.synthesize,
    "not_found": nodes.not_found,
    "agent": agent,
}


def build_graph(
    settings: Settings | None = None,
    checkpointer: BaseCheckpointSaver | bool | None = None,
    *,
    engine: Engine | None = None,
    synthesizer: ChatSynthesizer | None = None,
) -> CompiledStateGraph:
    """Compile the assistant graph.

    ``checkpointer``: None compiles without one (it then inherits a parent graph's, or the
    LangGraph server's); pass ``default_checkpointer(settings)`` for conversation memory.
    """
    engine = engine or Engine(settings)
    services = Services(
        engine=engine,
        synthesizer=synthesizer or make_synthesizer(engine.settings, engine.blobs),
        defaults=VistaContext.from_settings(engine.settings),
    )
    graph = StateGraph(
        VistaState, context_schema=VistaContext, input_schema=TurnInput,
        output_schema=OutputState,
    )
    for name, fn in NODES.items():
        graph.add_node(name, nodes.timed(name, fn, services))
    graph.add_edge(START, "detect_modality")
    graph.add_conditional_edges("detect_modality", route_after_detect,
                                ["ingest_attachments", "search", "agent"])
    graph.add_conditional_edges("ingest_attachments", route_to_path, ["search", "agent"])
    graph.add_conditional_edges("search", route_after_search, ["synthesize", "not_found"])
    for name in ("synthesize", "not_found", "agent"):
        graph.add_edge(name, END)
    compiled = graph.compile(checkpointer=checkpointer, name="vistarag")
    register(compiled, services)
    return compiled


def default_checkpointer(settings: Settings) -> BaseCheckpointSaver | None:
    """The checkpointer the settings ask for: SQLite under the data dir by default."""
    kind = settings.checkpointer
    if kind == "none":
        return None
    if kind == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        return InMemorySaver()
    if kind == "postgres":
        return _postgres_saver(settings)
    from langgraph.checkpoint.sqlite import SqliteSaver

    from vistarag.agent.settings import private_file

    settings.ensure_home()  # 0700; the checkpoints hold chats: 0600 (SQLite's journals follow)
    conn = sqlite3.connect(private_file(settings.checkpoints_path, create=True),
                           check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


def _postgres_saver(settings: Settings) -> Any:
    from vistarag.agent.errors import VistaRAGError

    if not settings.postgres_url:
        raise VistaRAGError("VISTARAG_CHECKPOINTER=postgres needs VISTARAG_POSTGRES_URL")
    try:
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection
    except ImportError as exc:
        raise VistaRAGError("install the postgres extra: pip install 'vistarag[postgres]'") from exc
    conn = Connection.connect(settings.postgres_url, autocommit=True, prepare_threshold=0)
    saver = PostgresSaver(conn)
    saver.setup()
    return saver
