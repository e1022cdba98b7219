"""LangChain interfaces over the VistaRAG core."""

from vistarag.tools.retriever import VistaRetriever, hit_to_document
from vistarag.tools.vectorstore import as_vectorstore

__all__ = ["VistaRetriever", "as_vectorstore", "hit_to_document"]
