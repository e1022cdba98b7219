"""The VistaRAG LangGraph: ``build_graph()`` returns the compiled assistant graph."""

from vistarag.graphs.builder import build_graph, default_checkpointer
from vistarag.graphs.state import VistaContext, VistaState

__all__ = ["VistaContext", "VistaState", "build_graph", "default_checkpointer"]
