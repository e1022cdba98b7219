"""What goes in and out of the index, whatever the backend: points, query vectors, filters, hits.

Filters and sparse vectors are ``filters``' small classes (qdrant-client's names, without
importing it); each backend translates them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vistarag.agent.errors import VistaRAGError
from vistarag.agent.index import filters as models
from vistarag.agent.index.filters import field_filter
from vistarag.agent.types import Hit

COLLECTION_PREFIX = "vistarag__"  # + NAME: the alias a knowledge base is reached by
BUILD_PREFIX = "vistarag_v__"  # + NAME__STAMP: one physical build of it
POINT_NAMESPACE = uuid.UUID("5f0c1d2e-7a4b-4c3d-9e8f-0a1b2c3d4e5f")
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
class StoredPoint:
    """A point read back from either backend: id, payload, vectors (when asked), score."""

    id: str
    payload: dict[str, Any]
    vector: dict[str, Any] | None = None
    score: float = 0.0


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
        must: list[models.FieldCondition] = []
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


@dataclass
class FusedQuery:
    """One search: a prefetch per (space, vector), fused with RRF (k=2) when there are several.

    ``exact`` asks for brute force (small collections, and the exact reference in benchmarks).
    """

    prefetch: list[tuple[str, Any]]  # (vector name, dense list or models.SparseVector)
    limit: int
    depth: int
    filter: models.Filter | None = None
    with_vectors: list[str] = field(default_factory=list)
    exact: bool = False


RRF_K = 2  # qdrant's default for models.Fusion.RRF; the Edge backend passes it explicitly


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


__all__ = ["field_filter"]  # re-exported from filters
