"""The index over a ``QdrantClient``: a Qdrant server or cluster (``QDRANT_URL``).

The same calls run on qdrant-client's local mode (``QdrantClient(path=...)``), which the tests
use to check that this backend and the Edge backend rank the same corpus the same way; over
HTTP they are tested against a loopback server speaking the Qdrant REST API
(``tests/qdrant_rest.py``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from vistarag.agent.index.backend import CollectionSpec
from vistarag.agent.index.filters import SparseVector, name_of
from vistarag.agent.index.payload_indexes import (
    BOOL_FIELDS,
    FLOAT_FIELDS,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    TENANT_FIELD,
)
from vistarag.agent.index.records import FusedQuery, PointRecord, StoredPoint
from vistarag.agent.settings import Settings


def tune_local_storage(client: QdrantClient) -> None:
    """Local mode only: each collection's SQLite file in WAL mode with ``synchronous=NORMAL``
    (its default syncs every point to disk: 54 points/s instead of thousands). As the previous
    release did; kept for migration, the tests' reference and the benchmark."""
    local = getattr(client, "_client", None)
    for collection in list(getattr(local, "collections", {}).values()):
        connection = getattr(getattr(collection, "storage", None), "storage", None)
        if isinstance(connection, sqlite3.Connection):
            with contextlib.suppress(sqlite3.Error):  # a read-only store stays as it is
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")


def server_client(settings: Settings) -> QdrantClient:
    return QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key)


def to_qdrant(obj: Any) -> Any:
    """``filters``' classes (and sparse vectors, lists of them) as qdrant-client models."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, list):
        return [to_qdrant(o) for o in obj]
    if type(obj).__module__.startswith("qdrant_client"):
        return obj
    kind = name_of(obj)
    if kind == "SparseVector":
        return models.SparseVector(indices=list(obj.indices), values=list(obj.values))
    if kind == "Filter":
        return models.Filter(must=to_qdrant(obj.must), should=to_qdrant(obj.should),
                             must_not=to_qdrant(obj.must_not))
    if kind == "FieldCondition":
        return models.FieldCondition(key=obj.key, match=to_qdrant(obj.match),
                                     range=to_qdrant(obj.range))
    if kind == "MatchValue":
        return models.MatchValue(value=obj.value)
    if kind == "MatchAny":
        return models.MatchAny(any=list(obj.any))
    if kind == "MatchExcept":
        return models.MatchExcept(**{"except": list(obj.except_)})
    if kind == "Range":
        return models.Range(gte=obj.gte, gt=obj.gt, lte=obj.lte, lt=obj.lt)
    return obj


def _vectors(named: dict[str, Any]) -> dict[str, Any]:
    return {k: to_qdrant(v) for k, v in named.items() if v is not None}


def _stored(point: Any) -> StoredPoint:
    vector = None
    if isinstance(point.vector, dict):  # sparse vectors as ours, whichever backend read them
        vector = {k: SparseVector(list(v.indices), list(v.values)) if hasattr(v, "indices")
                  else v for k, v in point.vector.items()}
    return StoredPoint(
        str(point.id), dict(point.payload or {}), vector, float(getattr(point, "score", 0) or 0)
    )


class ServerBackend:
    """``IndexBackend`` over a ``QdrantClient`` (server, cluster, or local mode)."""

    kind = "qdrant"

    def __init__(self, client: QdrantClient) -> None:
        self.client = client
        self.local = type(getattr(client, "_client", None)).__name__ == "QdrantLocal"
        self.location = "qdrant-client local mode" if self.local else str(
            getattr(getattr(client, "_client", client), "rest_uri", None) or "Qdrant server")
        tune_local_storage(client)

    # ---- collections, metadata, aliases -------------------------------------------------------
    def list_collections(self) -> list[str]:
        return [c.name for c in self.client.get_collections().collections]

    def collection_exists(self, name: str) -> bool:
        return self.client.collection_exists(name)

    def create_collection(self, name: str, spec: CollectionSpec) -> bool:
        vectors = {
            n: models.VectorParams(size=size, distance=models.Distance.COSINE)
            for n, size in spec.dense.items()
        }
        sparse = {n: models.SparseVectorParams(modifier=models.Modifier.IDF) for n in spec.sparse}
        try:
            if self.local and self.client.collection_exists(name):
                return False
            self.client.create_collection(
                name, vectors_config=vectors, sparse_vectors_config=sparse,
                metadata=spec.metadata,
            )
        except (UnexpectedResponse, ValueError) as exc:  # 409 / exists: another process won
            if self.client.collection_exists(name):
                return False
            raise exc
        if self.local:  # local mode has no payload indexes (it scans)
            tune_local_storage(self.client)
        else:
            self._index_fields(name)
        return True

    def _index_fields(self, name: str) -> None:
        for field in KEYWORD_FIELDS:
            schema: Any = models.KeywordIndexParams(
                type=models.KeywordIndexType.KEYWORD, is_tenant=field == TENANT_FIELD
            )
            self.client.create_payload_index(name, field, schema)
        for field in INTEGER_FIELDS:
            self.client.create_payload_index(name, field, models.PayloadSchemaType.INTEGER)
        for field in FLOAT_FIELDS:
            self.client.create_payload_index(name, field, models.PayloadSchemaType.FLOAT)
        for field in BOOL_FIELDS:
            self.client.create_payload_index(name, field, models.PayloadSchemaType.BOOL)

    def delete_collection(self, name: str) -> None:
        self.client.delete_collection(name)

    def metadata(self, name: str) -> dict[str, Any]:
        return dict(self.client.get_collection(name).config.metadata or {})

    def update_metadata(self, name: str, patch: dict[str, Any]) -> None:
        self.client.update_collection(name, metadata=patch)

    def vector_names(self, name: str) -> set[str]:
        params = self.client.get_collection(name).config.params
        dense = set(params.vectors.keys()) if isinstance(params.vectors, dict) else set()
        return dense | set(params.sparse_vectors or {})

    def aliases(self) -> dict[str, str]:
        return {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}

    def set_alias(self, alias: str, collection: str) -> None:
        ops: list[Any] = []
        if alias in self.aliases():
            ops.append(models.DeleteAliasOperation(
                delete_alias=models.DeleteAlias(alias_name=alias)))
        ops.append(models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)))
        self.client.update_collection_aliases(change_aliases_operations=ops)

    def delete_alias(self, alias: str) -> None:
        with contextlib.suppress(UnexpectedResponse):
            self.client.update_collection_aliases(change_aliases_operations=[
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))])

    # ---- points -------------------------------------------------------------------------------
    def upsert(self, name: str, points: Sequence[PointRecord]) -> None:
        self.client.upsert(
            name,
            points=[models.PointStruct(id=p.id, vector=_vectors(p.vectors), payload=p.payload)
                    for p in points],
            wait=True,
        )

    def set_payload(self, name: str, ids: Sequence[str], payload: dict[str, Any]) -> None:
        self.client.set_payload(name, payload=payload, points=list(ids), wait=True)

    def delete(self, name: str, flt: models.Filter) -> None:
        self.client.delete(
            name, points_selector=models.FilterSelector(filter=to_qdrant(flt)), wait=True)

    def scroll(
        self, name: str, flt: models.Filter | None, fields: Sequence[str] | bool, limit: int,
        offset: Any = None, with_vectors: bool = False,
    ) -> tuple[list[StoredPoint], Any]:
        points, nxt = self.client.scroll(
            name, scroll_filter=to_qdrant(flt), limit=limit, offset=offset,
            with_payload=list(fields) if not isinstance(fields, bool) else fields,
            with_vectors=with_vectors,
        )
        return [_stored(p) for p in points], nxt

    def count(self, name: str, flt: models.Filter | None = None) -> int:
        return self.client.count(name, count_filter=to_qdrant(flt), exact=True).count

    def retrieve(
        self, name: str, ids: Sequence[str], with_vectors: bool = False
    ) -> list[StoredPoint]:
        found = self.client.retrieve(name, list(ids), with_payload=True, with_vectors=with_vectors)
        return [_stored(p) for p in found]

    def query(self, name: str, request: FusedQuery) -> list[StoredPoint]:
        exact = request.exact and not self.local  # local mode is always exact
        params = models.SearchParams(exact=True) if exact else None
        flt = to_qdrant(request.filter)
        common: dict[str, Any] = {
            "limit": request.limit, "with_payload": True,
            "with_vectors": request.with_vectors or False,
        }
        if len(request.prefetch) == 1:
            using, vec = request.prefetch[0]
            res = self.client.query_points(
                name, query=to_qdrant(vec), using=using, query_filter=flt, search_params=params,
                **common,
            )
        else:
            prefetch = [
                models.Prefetch(query=to_qdrant(vec), using=using, limit=request.depth,
                                filter=flt, params=params)
                for using, vec in request.prefetch
            ]
            res = self.client.query_points(
                name, prefetch=prefetch, query=models.FusionQuery(fusion=models.Fusion.RRF),
                **common,
            )
        return [_stored(p) for p in res.points]

    def optimize(self, name: str, wait: bool = True) -> bool:
        return False  # a server indexes in the background

    def index_state(self, name: str) -> dict[str, Any]:
        info = self.client.get_collection(name)
        return {"points": int(info.points_count or 0),
                "indexed_points": int(info.indexed_vectors_count or 0), "building": None}

    def warm_up(self, name: str, wait: bool = False) -> bool:
        return False  # the server keeps its own caches

    def close(self) -> None:
        self.client.close()
