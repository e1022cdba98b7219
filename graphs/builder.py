"""``build_graph``: the one compiled LangGraph StateGraph every entry point uses."""

from __future__ import annotations

import sqlite3
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from vistarag.agent.engine import Engine
from vistarag.agent.settings import Settings
from vistarag.agent.synth.base import Synthesizer
from vistarag.agent.synth.factory import make_synthesizer
from vistarag.graphs.nodes import Nodes, route_after_detect, route_after_rerank, timed
from vistarag.graphs.state import OutputState, TurnInput, VistaContext, state_schema

NODE_NAMES = ("detect_modality", "ingest_attachments", "encode_query", "retrieve", "rerank",
              "synthesize", "not_found")


def build_graph(
    settings: Settings | None = None,
    checkpointer: BaseCheckpointSaver | bool | None = None,
    *,
    engine: Engine | None = None,
    synthesizer: Synthesizer | None = None,
) -> CompiledStateGraph:
    """Compile the assistant graph.

    ``checkpointer``: None compiles without one (it then inherits a parent graph's, or the
    LangGraph server's); pass ``default_checkpointer(settings)`` for conversation memory.
    """
    engine = engine or Engine(settings)
    synthesizer = synthesizer or make_synthesizer(engine.settings, engine.blobs)
    nodes = Nodes(engine, synthesizer)
    schema = state_schema(engine.blobs)
    graph = StateGraph(
        schema, context_schema=VistaContext, input_schema=TurnInput, output_schema=OutputState
    )
    for name in NODE_NAMES:
        graph.add_node(name, timed(name)(getattr(nodes, name)), input_schema=schema)
    graph.add_edge(START, "detect_modality")
    graph.add_conditional_edges("detect_modality", route_after_detect,
                                ["ingest_attachments", "encode_query"])
    graph.add_edge("ingest_attachments", "encode_query")
    graph.add_edge("encode_query", "retrieve")
    graph.add_edge("retrieve", "rerank")
    graph.add_conditional_edges("rerank", route_after_rerank, ["synthesize", "not_found"])
    graph.add_edge("synthesize", END)
    graph.add_edge("not_found", END)
    return graph.compile(checkpointer=checkpointer, name="vistarag")


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

    settings.home.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(settings.checkpoints_path, check_same_thread=False)
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
