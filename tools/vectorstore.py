"""A knowledge base as langchain-qdrant's ``QdrantVectorStore`` (the text space, read-mostly).

Every point stores its citation under ``metadata`` and its text under ``text``, so LangChain's
own Qdrant integration reads the collection directly: similarity search, MMR, filters, scores.
"""

from __future__ import annotations

from langchain_qdrant import QdrantVectorStore, RetrievalMode

from vistarag.agent.engine import Engine, get_engine
from vistarag.agent.errors import KnowledgeBaseNotFound
from vistarag.agent.lc_embeddings import SentenceEmbeddings


def as_vectorstore(engine: Engine | None = None, kb: str | None = None) -> QdrantVectorStore:
    """The knowledge base's ``text`` vectors as a LangChain ``VectorStore``."""
    engine = engine or get_engine()
    base = engine.kb(kb)
    if not base.exists():
        raise KnowledgeBaseNotFound(
            f"knowledge base {base.name!r} does not exist yet: "
            f"run `vistarag ingest PATH --kb {base.name}`"
        )
    base.check_models(engine.models.record())
    return QdrantVectorStore(
        client=base.client,
        collection_name=base.collection,
        embedding=SentenceEmbeddings(engine.models.text_encoder),
        retrieval_mode=RetrievalMode.DENSE,
        vector_name="text",
        content_payload_key="text",
        metadata_payload_key="metadata",
    )
