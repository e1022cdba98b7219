"""The knowledge base as a LangChain ``BaseRetriever``: multimodal hits as ``Document`` objects.

Each Document's ``page_content`` is the hit's text (chunk, OCR text or caption) and its metadata
carries the citation: doc_id, source, modality, page, bbox, t_start, t_end, blob, score.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from vistarag.agent.engine import Engine, get_engine
from vistarag.agent.search import SearchRequest
from vistarag.agent.settings import Settings
from vistarag.agent.types import Hit


def hit_to_document(hit: Hit) -> Document:
    """A hit as a LangChain Document with its citation metadata."""
    meta = hit.to_public()
    text = meta.pop("text")
    meta["locator"] = hit.locator()
    return Document(page_content=text or hit.locator(), metadata=meta, id=hit.id)


class VistaRetriever(BaseRetriever):
    """Search a VistaRAG knowledge base (text query; reranked top-k)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    k: int = Field(default=8, description="Number of documents to return.")
    kb: str | None = Field(default=None, description="Knowledge base; default from settings.")
    modality: list[str] | None = Field(default=None, description="Filter: text, image, page...")
    owner: str | None = Field(default=None, description="Only this owner's documents.")
    settings: Settings | None = None
    engine: Engine | None = Field(default=None, exclude=True)

    def _engine(self) -> Engine:
        if self.engine is None:
            self.engine = Engine(self.settings) if self.settings else get_engine()
        return self.engine

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k = int(kwargs.get("k", self.k))
        request = SearchRequest(text=query, top_k=k, kb=self.kb, owner=self.owner,
                                modality=self.modality)
        hits = self._engine().search(request).hits
        return [hit_to_document(h) for h in hits]
