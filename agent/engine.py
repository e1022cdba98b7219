"""The core as one object: settings, models, blob store, knowledge bases, search.

The graph, the tools, the CLI and the UI all go through an ``Engine``; one per process is enough
(``get_engine``), and it loads nothing until first used.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from vistarag.agent import docmeta
from vistarag.agent.blobs import BlobStore
from vistarag.agent.errors import IngestError, VistaRAGError
from vistarag.agent.evidence import collapse
from vistarag.agent.index import KnowledgeBase, SearchFilters
from vistarag.agent.models import Models
from vistarag.agent.query import EncodedQuery, encode_query
from vistarag.agent.rerank import STRONG_EVIDENCE, Reranker, RerankQuery, relevance
from vistarag.agent.search import BLOB_SCHEME, SearchRequest, SearchResult, put_first, timer
from vistarag.agent.settings import Settings
from vistarag.agent.types import MODALITIES, Hit

if TYPE_CHECKING:  # the ingestion stack (PyMuPDF, ...) loads on first ingest, not for a search
    from vistarag.agent.ingest.pipeline import Ingestor


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

    def ingestor(self, kb: str | None = None, owner: str | None = None) -> Ingestor:
        """An ingestor into ``kb`` that writes ``owner`` (default: the settings') on each point."""
        from vistarag.agent.ingest.pipeline import Ingestor

        settings = self.settings
        if owner and owner != settings.owner:
            settings = settings.model_copy(update={"owner": owner})
        return Ingestor(settings, self.models, self.kb(kb), self.blobs)

    @cached_property
    def reranker(self) -> Reranker:
        from vistarag.agent.rerank import make_reranker

        return make_reranker(
            self.settings.reranker, device=self.settings.device, blob_path=self.blobs.path
        )

    def load_query_image(self, path: str | Path) -> Image.Image:
        """Open a query image with the same checks as ingestion."""
        from vistarag.agent.imaging import open_image

        path = Path(path)
        if not path.is_file():
            raise IngestError(str(path), "image file not found")
        return open_image(path, self.settings.max_image_pixels)

    def image_ref(self, image: str | Path | Image.Image) -> str:
        """A ``blob:`` reference for a query image given as a path, a blob ref or a PIL image."""
        if isinstance(image, Image.Image):
            return BLOB_SCHEME + self.blobs.put_image(image, max_side=2048)
        ref = str(image)
        if ref.startswith(BLOB_SCHEME):
            if not self.blobs.exists(ref.removeprefix(BLOB_SCHEME)):
                raise VistaRAGError(f"unknown image reference {ref}")
            return ref
        return BLOB_SCHEME + self.blobs.put_image(self.load_query_image(ref), max_side=2048)

    def encode(self, text: str = "", images: Sequence[Image.Image] = ()) -> EncodedQuery:
        return encode_query(self.models, text, list(images))

    def search(self, request: SearchRequest) -> SearchResult:
        """Encode the query, retrieve top-N from Qdrant (RRF over every named vector, filtered
        by owner, documents and modality), rerank to top-k (the query images go to multimodal
        rerankers), and put a hinted page first."""
        for m in request.modality or ():
            if m not in MODALITIES:
                raise VistaRAGError(f"unknown modality {m!r}: choose from {', '.join(MODALITIES)}")
        timings: dict[str, float] = {}
        with timer(timings, "encode_query"):
            refs = [self.image_ref(image) for image in request.images]
            images = [self.blobs.open_image(ref.removeprefix(BLOB_SCHEME)) for ref in refs]
            query = self.encode(request.text, images)
        base = self.kb(request.kb)
        if not base.exists():
            return SearchResult(image_refs=refs, image_text=query.image_text, timings=timings)
        n = request.top_n or self.settings.top_n
        k = request.top_k or self.settings.top_k
        rerank_query = RerankQuery(
            text=query.rerank_text, image_refs=[r.removeprefix(BLOB_SCHEME) for r in refs],
            statements=query.statements, plain_text=query.text,
        )
        owner = request.owner or self.settings.owner
        doc_ids, guessed = request.doc_ids, False
        if doc_ids is None and request.text:  # a question naming a company distinctively
            with timer(timings, "retrieve"):
                doc_ids = docmeta.scope(request.text, docmeta.catalog(base, owner)).doc_ids
            guessed = doc_ids is not None
        filters = SearchFilters(modality=request.modality, doc_ids=doc_ids, owner=owner)
        candidates, hits = self._ranked(base, query, filters, n, k, rerank_query, timings)
        if guessed and (strength := relevance(hits, request.text)) < STRONG_EVIDENCE:
            # the guessed scope found only weak evidence: search everything too, keep the better
            filters = SearchFilters(modality=request.modality, owner=owner)
            every = self._ranked(base, query, filters, n, k, rerank_query, timings)
            if relevance(every[1], request.text) > strength:
                candidates, hits = every
        return SearchResult(
            hits=put_first(hits, request.page_hint), image_refs=refs,
            image_text=query.image_text, candidates=len(candidates), timings=timings,
        )

    def _ranked(
        self, base: KnowledgeBase, query: EncodedQuery, filters: SearchFilters, n: int, k: int,
        rerank_query: RerankQuery, timings: dict[str, float],
    ) -> tuple[list[Hit], list[Hit]]:
        """Top-``n`` candidates from Qdrant and the ``k`` distinct hits the reranker keeps."""
        with timer(timings, "retrieve"):
            candidates = base.search(
                query.vectors, limit=n, filters=filters, prefetch_limit=max(n, 50),
                record=self.models.record(),
            )
        with timer(timings, "rerank"):
            ranked = self.reranker.rerank(rerank_query, candidates, top_k=len(candidates))
        return candidates, collapse(ranked)[:k]  # k distinct pieces of evidence

    def find(
        self, text: str = "", images: Sequence[str | Path | Image.Image] = (),
        k: int | None = None, **request: Any,
    ) -> list[Hit]:
        """``search(SearchRequest(text, images, top_k=k, **request)).hits``: a shorthand."""
        return self.search(SearchRequest(text=text, images=list(images), top_k=k, **request)).hits


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
