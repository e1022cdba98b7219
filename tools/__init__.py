"""LangChain interfaces over the VistaRAG core: tools, retriever, vector store."""

from vistarag.tools.retriever import VistaRetriever, hit_to_document
from vistarag.tools.search_tools import (
    KeyframeSearchTool,
    RetrieveTool,
    format_hits,
    make_tools,
)
from vistarag.tools.vectorstore import as_vectorstore

__all__ = [
    "KeyframeSearchTool",
    "RetrieveTool",
    "VistaRetriever",
    "as_vectorstore",
    "format_hits",
    "hit_to_document",
    "make_tools",
]
