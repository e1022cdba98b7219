"""The graph as served by ``langgraph dev`` / LangGraph server (see langgraph.json).

The server brings its own checkpointer, so this graph is compiled without one.
"""

from vistarag.graphs.builder import build_graph

graph = build_graph()
