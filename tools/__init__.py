"""LangChain interfaces over the VistaRAG core."""

from vistarag.tools.retriever import VistaRetriever, hit_to_document

__all__ = ["VistaRetriever", "hit_to_document"]
