"""A knowledge base as a LangChain ``VectorStore`` (the text space, read-mostly).

Every point stores its citation under ``metadata`` and its text under ``text``. Over a Qdrant
server (``QDRANT_URL``) that is langchain-qdrant's own ``QdrantVectorStore`` on the collection;
over the embedded default (Qdrant Edge, which has no ``QdrantClient``) it is
``KnowledgeBaseVectorStore``, the same reads through the index interface: similarity search
with scores, MMR, qdrant-client filters. Both filter nothing you did not ask for, except that
the Edge store keeps to the configured owner's points.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from vistarag.agent.engine import Engine, get_engine
from vistarag.agent.errors import KnowledgeBaseNotFound, VistaRAGError
from vistarag.agent.index import FusedQuery, KnowledgeBase, StoredPoint, field_filter
from vistarag.agent.index import filters as models
from vistarag.agent.lc_embeddings import SentenceEmbeddings


def as_vectorstore(engine: Engine | None = None, kb: str | None = None) -> VectorStore:
    """The knowledge base's ``text`` vectors as a LangChain ``VectorStore``."""
    engine = engine or get_engine()
    base = engine.kb(kb)
    if not base.exists():
        raise KnowledgeBaseNotFound(
            f"knowledge base {base.name!r} does not exist yet: "
            f"run `vistarag ingest PATH --kb {base.name}`"
        )
    base.check_models(engine.models.record())
    embedding = SentenceEmbeddings(engine.models.text_encoder)
    if base.client is None:
        return KnowledgeBaseVectorStore(base, embedding, owner=engine.settings.owner)
    from langchain_qdrant import QdrantVectorStore, RetrievalMode

    return QdrantVectorStore(
        client=base.client,
        collection_name=base.collection,
        embedding=embedding,
        retrieval_mode=RetrievalMode.DENSE,
        vector_name="text",
        content_payload_key="text",
        metadata_payload_key="metadata",
    )


def _document(point: StoredPoint) -> Document:
    meta = dict(point.payload.get("metadata") or {})
    meta["_id"] = point.id
    return Document(page_content=point.payload.get("text") or "", metadata=meta, id=point.id)


class KnowledgeBaseVectorStore(VectorStore):
    """``VectorStore`` over a knowledge base's ``text`` space through the index interface."""

    def __init__(self, kb: KnowledgeBase, embedding: Embeddings, owner: str | None = None):
        self.kb = kb
        self.embedding = embedding
        self.owner = owner

    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    def _filter(self, flt: models.Filter | None) -> models.Filter | None:
        if self.owner is None:
            return flt
        own = field_filter(owner=self.owner)
        return own if flt is None else models.Filter(must=[own, flt])

    def _query(self, vector: list[float], k: int, flt: Any, vectors: bool) -> list[StoredPoint]:
        request = FusedQuery(
            prefetch=[("text", list(vector))], limit=k, depth=k, filter=self._filter(flt),
            with_vectors=["text"] if vectors else [],
        )
        return self.kb.backend.query(self.kb.physical() or self.kb.collection, request)

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: models.Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        points = self._query(self.embedding.embed_query(query), k, filter, vectors=False)
        return [(_document(p), p.score) for p in points]

    def similarity_search(
        self, query: str, k: int = 4, filter: models.Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter)]

    def _select_relevance_score_fn(self):  # type: ignore[no-untyped-def]
        return self._cosine_relevance_score_fn

    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
        filter: models.Filter | None = None, **kwargs: Any,
    ) -> list[Document]:
        vector = self.embedding.embed_query(query)
        points = self._query(vector, fetch_k, filter, vectors=True)
        if not points:
            return []
        found = [np.asarray(p.vector["text"], dtype=np.float32) for p in points]
        chosen = maximal_marginal_relevance(
            np.asarray(vector, dtype=np.float32), found, lambda_mult=lambda_mult, k=k)
        return [_document(points[i]) for i in chosen]

    def add_texts(
        self, texts: Iterable[str], metadatas: list[dict] | None = None, **kwargs: Any
    ) -> list[str]:
        raise VistaRAGError(
            "this VectorStore reads a VistaRAG knowledge base: add files with "
            "`vistarag ingest PATH` (points carry citations, blobs and lexical vectors)"
        )

    @classmethod
    def from_texts(
        cls, texts: list[str], embedding: Embeddings, metadatas: list[dict] | None = None,
        **kwargs: Any,
    ) -> KnowledgeBaseVectorStore:
        raise VistaRAGError(
            "build a knowledge base with `vistarag ingest PATH --kb NAME`, then "
            "`vistarag.tools.as_vectorstore(kb=NAME)`"
        )
