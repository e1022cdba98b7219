"""The index: one interface (``backend.IndexBackend``), two backends (``edge``: Qdrant Edge
under the data dir, the embedded default; ``server``: a ``QdrantClient`` for ``QDRANT_URL``),
lexical sparse vectors (``lexical``), payload indexes (``payload_indexes``), and the knowledge
base on top (``kb``). Everything the rest of VistaRAG uses is importable from here.
"""

from vistarag.agent.index.backend import (
    CollectionSpec,
    IndexBackend,
    close_all,
    get_backend,
)
from vistarag.agent.index.kb import (
    BUILDING,
    HNSW_MIN_POINTS,
    READY,
    SCHEMA_VERSION,
    KnowledgeBase,
    as_backend,
    blobs_in_use,
    list_knowledge_bases,
    physical_collections,
)
from vistarag.agent.index.payload_indexes import KEYWORD_FIELDS
from vistarag.agent.index.records import (
    BUILD_PREFIX,
    COLLECTION_PREFIX,
    POINT_NAMESPACE,
    FusedQuery,
    PointRecord,
    QueryVectors,
    SearchFilters,
    StoredPoint,
    collection_name,
    field_filter,
    hit_from_point,
    point_id,
)

__all__ = [
    "BUILDING", "BUILD_PREFIX", "COLLECTION_PREFIX", "HNSW_MIN_POINTS", "KEYWORD_FIELDS",
    "POINT_NAMESPACE", "READY", "SCHEMA_VERSION", "CollectionSpec", "FusedQuery", "IndexBackend",
    "KnowledgeBase", "PointRecord",
    "blobs_in_use", "physical_collections", "QueryVectors", "SearchFilters", "StoredPoint",
    "as_backend",
    "close_all", "collection_name", "field_filter", "get_backend", "hit_from_point",
    "list_knowledge_bases", "point_id",
]
