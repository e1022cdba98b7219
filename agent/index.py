"""The knowledge base: one Qdrant collection with named vectors ``text`` and ``joint``.

A point is one retrievable unit (text chunk, image, page render, video keyframe). Its payload
carries everything a citation needs. The collection's metadata records which models built it.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from vistarag.agent.errors import KnowledgeBaseNotFound, ModelMismatchError, VistaRAGError
from vistarag.agent.qdrant import get_client, is_local
from vistarag.agent.settings import Settings
from vistarag.agent.sparse import LEXICAL_SCHEME, LEXICAL_VECTOR
from vistarag.agent.types import Hit

COLLECTION_PREFIX = "vistarag__"
POINT_NAMESPACE = uuid.UUID("5f0c1d2e-7a4b-4c3d-9e8f-0a1b2c3d4e5f")
KEYWORD_FIELDS = ("doc_id", "modality", "owner", "content_hash", "source", "blob")
NUMERIC_FIELDS = {
    "page": models.PayloadSchemaType.INTEGER,
    "t_start": models.PayloadSchemaType.FLOAT,
}
SCHEMA_VERSION = 1
_KB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def collection_name(kb: str) -> str:
    if not _KB_NAME.match(kb):
        raise VistaRAGError(
            f"invalid knowledge base name {kb!r}: use letters, digits, '_', '-', '.' (max 64)"
        )
    return COLLECTION_PREFIX + kb


def point_id(doc_id: str, content_hash: str, unit: str) -> str:
    """Deterministic id, so re-ingesting the same content overwrites instead of duplicating."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{doc_id}:{content_hash}:{unit}"))


@dataclass
class PointRecord:
    """A point ready to upsert."""

    id: str
    vectors: dict[str, Any]  # dense lists per named vector, models.SparseVector for "lexical"
    payload: dict[str, Any]


@dataclass
class QueryVectors:
    """Query vectors per named space; several vectors per space are allowed (composed queries)."""

    text: list[np.ndarray] = field(default_factory=list)
    joint: list[np.ndarray] = field(default_factory=list)
    lexical: list[models.SparseVector] = field(default_factory=list)

    def by_space(self) -> dict[str, list[np.ndarray]]:
        """Dense query vectors per named space."""
        return {"text": self.text, "joint": self.joint}

    def empty(self) -> bool:
        return not self.text and not self.joint and not self.lexical

    def to_json(self) -> dict[str, list[Any]]:
        """Plain lists, for graph state and checkpoints."""
        return {
            "text": [v.tolist() for v in self.text],
            "joint": [v.tolist() for v in self.joint],
            "lexical": [{"indices": v.indices, "values": v.values} for v in self.lexical],
        }

    @classmethod
    def from_json(cls, data: dict[str, list[Any]] | None) -> QueryVectors:
        data = data or {}
        return cls(
            text=[np.asarray(v, dtype=np.float32) for v in data.get("text", [])],
            joint=[np.asarray(v, dtype=np.float32) for v in data.get("joint", [])],
            lexical=[models.SparseVector(**v) for v in data.get("lexical", [])],
        )


@dataclass
class SearchFilters:
    """Payload filters: modality, document, owner."""

    modality: Sequence[str] | None = None
    doc_ids: Sequence[str] | None = None
    owner: str | None = None

    def to_qdrant(self) -> models.Filter | None:
        must: list[models.Condition] = []
        if self.modality:
            must.append(
                models.FieldCondition(
                    key="modality", match=models.MatchAny(any=list(self.modality))
                )
            )
        if self.doc_ids:
            must.append(
                models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(self.doc_ids)))
            )
        if self.owner:
            must.append(
                models.FieldCondition(key="owner", match=models.MatchValue(value=self.owner))
            )
        return models.Filter(must=must) if must else None


def hit_from_point(point: Any, score: float | None = None) -> Hit:
    p = point.payload or {}
    return Hit(
        id=str(point.id),
        score=float(score if score is not None else getattr(point, "score", 0.0) or 0.0),
        modality=p.get("modality", "text"),
        doc_id=p.get("doc_id", ""),
        source=p.get("source", ""),
        page=p.get("page"),
        bbox=p.get("bbox"),
        t_start=p.get("t_start"),
        t_end=p.get("t_end"),
        text=p.get("text", "") or "",
        blob=p.get("blob"),
        content_hash=p.get("content_hash"),
        owner=p.get("owner"),
        extra={"doc": p["doc"]} if isinstance(p.get("doc"), dict) else {},
    )


class KnowledgeBase:
    """One named knowledge base (a Qdrant collection) built with a fixed pair of models."""

    def __init__(
        self, settings: Settings, name: str | None = None, client: QdrantClient | None = None
    ):
        self.settings = settings
        self.name = name or settings.kb
        self.collection = collection_name(self.name)
        self.client = client or get_client(settings)

    # ---- lifecycle -------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.client.collection_exists(self.collection)

    def _info(self) -> models.CollectionInfo:
        if not self.exists():
            raise KnowledgeBaseNotFound(
                f"knowledge base {self.name!r} does not exist yet: "
                f"run `vistarag ingest PATH --kb {self.name}`"
            )
        return self.client.get_collection(self.collection)

    def metadata(self) -> dict[str, Any]:
        return dict(self._info().config.metadata or {})

    def vector_names(self) -> set[str]:
        """Named dense and sparse vectors of the collection."""
        return _vector_names(self._info())

    def ensure(self, record: dict[str, Any], owner: str | None = None) -> None:
        """Create the collection for these models, or check it was built with them.

        The metadata also lists the owners whose points it holds, so searches can skip an owner
        filter that every point satisfies (embedded mode evaluates filters point by point).
        """
        if self.exists():
            self.check_models(record)
            owners = self.metadata().get("owners")
            if owner and isinstance(owners, list) and owner not in owners:
                self.client.update_collection(
                    self.collection, metadata={"owners": [*owners, owner]}
                )
            return
        vectors = {
            "text": models.VectorParams(
                size=int(record["text_dim"]), distance=models.Distance.COSINE
            )
        }
        if record.get("joint_dim"):
            vectors["joint"] = models.VectorParams(
                size=int(record["joint_dim"]), distance=models.Distance.COSINE
            )
        self.client.create_collection(
            self.collection,
            vectors_config=vectors,
            sparse_vectors_config={
                LEXICAL_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
            },
            metadata={
                **record,
                "lexical": LEXICAL_SCHEME,
                "owners": [owner] if owner else [],
                "schema_version": SCHEMA_VERSION,
                "kb": self.name,
            },
        )
        if not is_local(self.client):
            for name in KEYWORD_FIELDS:
                self.client.create_payload_index(
                    self.collection, name, models.PayloadSchemaType.KEYWORD
                )
            for name, schema in NUMERIC_FIELDS.items():
                self.client.create_payload_index(self.collection, name, schema)

    def check_models(self, record: dict[str, Any], built: dict[str, Any] | None = None) -> None:
        """Raise ModelMismatchError naming the re-index command when models differ.

        ``built`` is the collection's metadata when the caller has already read it.
        """
        built = self.metadata() if built is None else built
        diffs = [
            f"{key}: built with {built.get(key)!r}, configured now {record[key]!r}"
            for key in ("text_model", "joint_model")
            if key in built and built.get(key) != record[key]
        ]
        if diffs:
            raise ModelMismatchError(
                f"knowledge base {self.name!r} was built with other models ("
                + "; ".join(diffs)
                + "). Either configure the models it was built with (VISTARAG_TEXT_MODEL / "
                f"VISTARAG_JOINT_MODEL), or re-index it: `vistarag kb reindex {self.name}`."
            )

    def drop(self) -> bool:
        if not self.exists():
            return False
        self.client.delete_collection(self.collection)
        return True

    # ---- writes ----------------------------------------------------------------------------
    def upsert(self, points: Sequence[PointRecord], batch: int = 256) -> None:
        for i in range(0, len(points), batch):
            chunk = points[i : i + batch]
            self.client.upsert(
                self.collection,
                points=[
                    models.PointStruct(id=p.id, vector=p.vectors, payload=p.payload) for p in chunk
                ],
                wait=True,
            )

    def delete_points(self, flt: models.Filter) -> None:
        self.client.delete(
            self.collection, points_selector=models.FilterSelector(filter=flt), wait=True
        )

    # ---- reads -----------------------------------------------------------------------------
    def scroll(
        self,
        flt: models.Filter | None = None,
        fields: Sequence[str] | bool = True,
        limit: int | None = None,
    ) -> Iterable[Any]:
        """Iterate points (payload only) matching ``flt``."""
        offset = None
        seen = 0
        while True:
            points, offset = self.client.scroll(
                self.collection,
                scroll_filter=flt,
                limit=512,
                offset=offset,
                with_payload=list(fields) if not isinstance(fields, bool) else fields,
                with_vectors=False,
            )
            for point in points:
                yield point
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if offset is None:
                return

    def count(self, flt: models.Filter | None = None) -> int:
        return self.client.count(self.collection, count_filter=flt, exact=True).count

    def doc_versions(self, doc_id: str) -> set[str]:
        """Content hashes stored for a document (normally one)."""
        flt = field_filter(doc_id=doc_id)
        return {p.payload.get("content_hash") for p in self.scroll(flt, fields=["content_hash"])}

    def search(
        self,
        query: QueryVectors,
        limit: int,
        filters: SearchFilters | None = None,
        prefetch_limit: int | None = None,
        record: dict[str, Any] | None = None,
    ) -> list[Hit]:
        """Prefetch on each named vector present (dense and lexical), fuse with RRF.

        Each hit's ``extra["dense"]`` holds its best cosine similarity per space, for rerankers.
        With ``record`` (the configured models), a knowledge base built with others is refused.
        """
        if query.empty():
            return []
        info = self._info()  # read once: vectors, models and owners
        meta = dict(info.config.metadata or {})
        if record is not None:
            self.check_models(record, meta)
        present = _vector_names(info)
        if filters and filters.owner and meta.get("owners") == [filters.owner]:
            filters = dataclasses.replace(filters, owner=None)  # every point is this owner's
        flt = filters.to_qdrant() if filters else None
        per_space = {k: v for k, v in query.by_space().items() if v and k in present}
        depth = prefetch_limit or max(limit, 50)
        prefetch = [
            models.Prefetch(query=vec.tolist(), using=space, limit=depth, filter=flt)
            for space, vecs in per_space.items()
            for vec in vecs
        ]
        if LEXICAL_VECTOR in present:
            prefetch += [
                models.Prefetch(query=vec, using=LEXICAL_VECTOR, limit=depth, filter=flt)
                for vec in query.lexical
            ]
        if not prefetch:
            return []
        common = {"limit": limit, "with_payload": True, "with_vectors": list(per_space) or False}
        if len(prefetch) == 1:
            only = prefetch[0]
            res = self.client.query_points(
                self.collection, query=only.query, using=only.using, query_filter=flt, **common
            )
        else:
            res = self.client.query_points(
                self.collection,
                prefetch=prefetch,
                query=models.FusionQuery(fusion=models.Fusion.RRF),
                **common,
            )
        hits = []
        for point in res.points:
            hit = hit_from_point(point)
            hit.extra["dense"] = _dense_scores(point.vector, per_space)
            hits.append(hit)
        return hits

    def stats(self) -> dict[str, Any]:
        meta = self.metadata()
        by_modality: dict[str, int] = {}
        docs: set[str] = set()
        for p in self.scroll(fields=["modality", "doc_id"]):
            by_modality[p.payload.get("modality", "?")] = (
                by_modality.get(p.payload.get("modality", "?"), 0) + 1
            )
            docs.add(p.payload.get("doc_id"))
        return {
            "kb": self.name,
            "points": sum(by_modality.values()),
            "documents": len(docs),
            "by_modality": by_modality,
            "text_model": meta.get("text_model"),
            "joint_model": meta.get("joint_model"),
        }


def _vector_names(info: models.CollectionInfo) -> set[str]:
    params = info.config.params
    dense = set(params.vectors.keys()) if isinstance(params.vectors, dict) else set()
    return dense | set(params.sparse_vectors or {})


def _dense_scores(stored: Any, per_space: dict[str, list[np.ndarray]]) -> dict[str, float]:
    out: dict[str, float] = {}
    if not isinstance(stored, dict):
        return out
    for space, vecs in per_space.items():
        vec = stored.get(space)
        if vec is None:
            continue
        v = np.asarray(vec, dtype=np.float32)
        norm = float(np.linalg.norm(v)) or 1.0
        out[space] = max(float(np.dot(q, v) / norm) for q in vecs)
    return out


def field_filter(**conditions: Any) -> models.Filter:
    """A must-filter of exact matches, e.g. ``field_filter(doc_id="d1", modality="page")``."""
    return models.Filter(
        must=[
            models.FieldCondition(key=k, match=models.MatchValue(value=v))
            for k, v in conditions.items()
        ]
    )


def list_knowledge_bases(client: QdrantClient) -> list[str]:
    names = [c.name for c in client.get_collections().collections]
    return sorted(n[len(COLLECTION_PREFIX) :] for n in names if n.startswith(COLLECTION_PREFIX))
