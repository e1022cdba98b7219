"""The core as one object: settings, models, blob store, knowledge bases, search.

The graph, the tools, the CLI and the UI all go through an ``Engine``; one per process is enough
(``get_engine``), and it loads nothing until first used.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from PIL import Image

from vistarag.agent import docmeta
from vistarag.agent.blobs import BlobStore
from vistarag.agent.errors import IngestError, VistaRAGError
from vistarag.agent.evidence import collapse
from vistarag.agent.index import KnowledgeBase, SearchFilters
from vistarag.agent.ingest.images import open_image
from vistarag.agent.ingest.pipeline import Ingestor
from vistarag.agent.models import Models
from vistarag.agent.query import EncodedQuery, encode_query
from vistarag.agent.rerank import Reranker, RerankQuery
from vistarag.agent.settings import Settings
from vistarag.agent.types import MODALITIES, Hit


class Engine:
    """Entry point to the knowledge bases for one set of settings."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.models = Models(self.settings)
        self.blobs = BlobStore(self.settings.blobs_dir)
        self._kbs: dict[str, KnowledgeBase] = {}

    def kb(self, name: str | None = None) -> KnowledgeBase:
        name = name or self.settings.kb
        if name not in self._kbs:
            self._kbs[name] = KnowledgeBase(self.settings, name)
        return self._kbs[name]

    def ingestor(self, kb: str | None = None) -> Ingestor:
        return Ingestor(self.settings, self.models, self.kb(kb), self.blobs)

    @cached_property
    def reranker(self) -> Reranker:
        from vistarag.agent.rerank import make_reranker

        return make_reranker(
            self.settings.reranker, device=self.settings.device, blob_path=self.blobs.path
        )

    def load_query_image(self, path: str | Path) -> Image.Image:
        """Open a query image with the same checks as ingestion."""
        path = Path(path)
        if not path.is_file():
            raise IngestError(str(path), "image file not found")
        return open_image(path, self.settings.max_image_pixels)

    def encode(self, text: str = "", images: Sequence[Image.Image] = ()) -> EncodedQuery:
        return encode_query(self.models, text, list(images))

    def retrieve(
        self,
        query: EncodedQuery,
        kb: str | None = None,
        limit: int | None = None,
        modality: Sequence[str] | None = None,
        doc_ids: Sequence[str] | None = None,
    ) -> list[Hit]:
        """Candidates from Qdrant (RRF over every named vector), before reranking."""
        for m in modality or ():
            if m not in MODALITIES:
                raise VistaRAGError(f"unknown modality {m!r}: choose from {', '.join(MODALITIES)}")
        base = self.kb(kb)
        if not base.exists():
            return []
        if doc_ids is None and query.text:  # a question naming a company / year searches its docs
            doc_ids = docmeta.scope(query.text, docmeta.catalog(base)).doc_ids
        filters = SearchFilters(modality=modality, doc_ids=doc_ids, owner=self.settings.owner)
        n = limit or self.settings.top_n
        return base.search(
            query.vectors, limit=n, filters=filters, prefetch_limit=max(n, 50),
            record=self.models.record(),
        )

    def rerank(self, query: EncodedQuery, hits: list[Hit], k: int | None = None) -> list[Hit]:
        k = k or self.settings.top_k
        rq = RerankQuery(text=query.rerank_text, image_refs=[])
        return collapse(self.reranker.rerank(rq, hits, top_k=len(hits)))[:k]

    def search(
        self,
        text: str = "",
        images: Sequence[Image.Image] = (),
        k: int | None = None,
        kb: str | None = None,
        modality: Sequence[str] | None = None,
        doc_ids: Sequence[str] | None = None,
    ) -> list[Hit]:
        """Encode, retrieve top-N, rerank to top-k."""
        query = self.encode(text, images)
        hits = self.retrieve(query, kb=kb, modality=modality, doc_ids=doc_ids)
        return self.rerank(query, hits, k)


_engines: dict[int, Engine] = {}
_lock = threading.Lock()


def get_engine(settings: Settings | None = None) -> Engine:
    """A shared engine per Settings object (models and clients are process-wide anyway)."""
    from vistarag.agent.settings import get_settings

    settings = settings or get_settings()
    with _lock:
        engine = _engines.get(id(settings))
        if engine is None or engine.settings is not settings:
            engine = _engines[id(settings)] = Engine(settings)
        return engine
