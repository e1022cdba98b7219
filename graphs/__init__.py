"""The VistaRAG LangGraph: ``build_graph()`` returns the compiled assistant graph, and
``run_turn`` drives one turn of it for every front end."""

from vistarag.graphs.builder import build_graph, default_checkpointer
from vistarag.graphs.context import VistaContext
from vistarag.graphs.runner import TurnEvent, TurnResult, run_turn, stream_turn
from vistarag.graphs.state import VistaState

__all__ = [
    "TurnEvent",
    "TurnResult",
    "VistaContext",
    "VistaState",
    "build_graph",
    "default_checkpointer",
    "run_turn",
    "stream_turn",
]
