"""The embedded index: Qdrant Edge shards under the data dir (``<home>/qdrant/edge``).

Edge has no collections or aliases: each physical collection is one shard folder
(``collections/NAME``) with our ``vistarag.json`` beside its segments (vector sizes and the
knowledge base's metadata), and ``aliases.json`` maps aliases to folders. Both files are
replaced atomically. Search is exact (brute force over plain segments) until ``optimize``
builds HNSW, which ingest does for large collections only (see ``KnowledgeBase.optimize``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from vistarag.agent.errors import VistaRAGError
from vistarag.agent.index import edge_convert as cv
from vistarag.agent.index import filters as models
from vistarag.agent.index.backend import CollectionSpec
from vistarag.agent.index.holder import hold, release
from vistarag.agent.index.payload_indexes import (
    BOOL_FIELDS,
    FLOAT_FIELDS,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    TENANT_FIELD,
)
from vistarag.agent.index.records import RRF_K, FusedQuery, PointRecord, StoredPoint

META_FILE = "vistarag.json"


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename), owner-only (0600)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w",
              encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def private_tree(root: Path) -> None:
    """Owner-only modes under ``root`` (folders 0700, files 0600): Edge writes its segments
    with the process umask, and the data dir holds other users' documents."""
    for path in [root, *root.rglob("*")]:
        with contextlib.suppress(OSError):
            path.chmod(0o700 if path.is_dir() else 0o600)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as exc:
        raise VistaRAGError(
            f"{path}: cannot read the index's bookkeeping file ({exc}); restore it from a "
            "backup, or delete the knowledge base and ingest again"
        ) from exc


def _stored(record: Any) -> StoredPoint:
    vec = record.vector
    vector = {k: cv.from_edge_vector(v) for k, v in vec.items()} if isinstance(vec, dict) else None
    return StoredPoint(
        str(record.id), dict(record.payload or {}), vector, float(getattr(record, "score", 0.0))
    )


class EdgeBackend:
    """``IndexBackend`` over Qdrant Edge shards in ``root`` (one process holds them)."""

    kind = "edge"

    def __init__(self, root: Path, *, hold_lock: bool = True) -> None:
        self.root = Path(root)
        self.location = f"Qdrant Edge in {self.root}"
        self.folder = self.root / "collections"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._fd = hold(self.root) if hold_lock else None
        private_tree(self.root)
        self._shards: dict[str, qe.EdgeShard] = {}
        self._lock = threading.RLock()

    # ---- shards -------------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise VistaRAGError(f"invalid collection name {name!r}")
        return self.folder / name

    def _shard(self, name: str) -> qe.EdgeShard:
        shard = self._shards.get(name)
        if shard is None:
            if not self.collection_exists(name):
                raise VistaRAGError(
                    f"no collection {name!r} in {self.folder}: run `vistarag kb list` to see "
                    "the knowledge bases, `vistarag ingest PATH --kb NAME` to make one"
                )
            shard = self._shards[name] = qe.EdgeShard.load(str(self._dir(name)))
        return shard

    def _spec(self, name: str) -> dict[str, Any]:
        return _read_json(self._dir(name) / META_FILE, {})

    # ---- collections, metadata, aliases -------------------------------------------------------
    def list_collections(self) -> list[str]:
        with self._lock:
            return sorted(p.name for p in self.folder.iterdir() if (p / META_FILE).is_file())

    def collection_exists(self, name: str) -> bool:
        return (self._dir(name) / META_FILE).is_file()

    def create_collection(self, name: str, spec: CollectionSpec) -> bool:
        with self._lock:
            path = self._dir(name)
            if (path / META_FILE).is_file():
                return False
            shutil.rmtree(path, ignore_errors=True)  # a folder left by a killed create
            config = qe.EdgeConfig(
                vectors={
                    n: qe.EdgeVectorParams(size=size, distance=qe.Distance.Cosine)
                    for n, size in spec.dense.items()
                },
                sparse_vectors={
                    n: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf) for n in spec.sparse
                },
            )
            shard = qe.EdgeShard.create(str(path), config)
            for field in KEYWORD_FIELDS:
                params = qe.KeywordIndexParams(is_tenant=field == TENANT_FIELD or None)
                shard.update(qe.UpdateOperation.create_field_index(field, params))
            for fields, schema in ((INTEGER_FIELDS, qe.PayloadSchemaType.Integer),
                                   (FLOAT_FIELDS, qe.PayloadSchemaType.Float),
                                   (BOOL_FIELDS, qe.PayloadSchemaType.Bool)):
                for field in fields:
                    shard.update(qe.UpdateOperation.create_field_index(field, schema))
            shard.flush()
            self._shards[name] = shard
            write_json(path / META_FILE, {
                "dense": spec.dense, "sparse": list(spec.sparse), "metadata": spec.metadata,
            })  # written last: a folder without it is an unfinished create
            private_tree(path)
            return True

    def delete_collection(self, name: str) -> None:
        with self._lock:
            shard = self._shards.pop(name, None)
            if shard is not None:
                shard.close()
            path = self._dir(name)
            (path / META_FILE).unlink(missing_ok=True)  # gone for readers first
            shutil.rmtree(path, ignore_errors=True)

    def metadata(self, name: str) -> dict[str, Any]:
        return dict(self._spec(name).get("metadata") or {})

    def update_metadata(self, name: str, patch: dict[str, Any]) -> None:
        with self._lock:
            spec = self._spec(name)
            spec["metadata"] = {**(spec.get("metadata") or {}), **patch}
            write_json(self._dir(name) / META_FILE, spec)

    def vector_names(self, name: str) -> set[str]:
        spec = self._spec(name)
        return set(spec.get("dense") or {}) | set(spec.get("sparse") or [])

    def aliases(self) -> dict[str, str]:
        return dict(_read_json(self.root / "aliases.json", {}))

    def set_alias(self, alias: str, collection: str) -> None:
        with self._lock:
            write_json(self.root / "aliases.json", {**self.aliases(), alias: collection})

    def delete_alias(self, alias: str) -> None:
        with self._lock:
            current = self.aliases()
            current.pop(alias, None)
            write_json(self.root / "aliases.json", current)

    # ---- points -------------------------------------------------------------------------------
    def upsert(self, name: str, points: Sequence[PointRecord]) -> None:
        batch = [qe.Point(p.id, cv.vectors(p.vectors), p.payload) for p in points]
        with self._lock:
            self._shard(name).update(qe.UpdateOperation.upsert_points(batch))
            private_tree(self._dir(name))  # segments it may have started

    def set_payload(self, name: str, ids: Sequence[str], payload: dict[str, Any]) -> None:
        with self._lock:
            self._shard(name).update(qe.UpdateOperation.set_payload(list(ids), payload))

    def delete(self, name: str, flt: models.Filter) -> None:
        with self._lock:
            self._shard(name).update(
                qe.UpdateOperation.delete_points_by_filter(cv.edge_filter(flt)))

    def scroll(
        self, name: str, flt: models.Filter | None, fields: Sequence[str] | bool, limit: int,
        offset: Any = None, with_vectors: bool = False,
    ) -> tuple[list[StoredPoint], Any]:
        request = qe.ScrollRequest(
            offset=offset, limit=limit, filter=cv.edge_filter(flt),
            with_payload=list(fields) if not isinstance(fields, bool) else fields,
            with_vector=with_vectors,
        )
        with self._lock:
            records, nxt = self._shard(name).scroll(request)
        return [_stored(r) for r in records], nxt

    def count(self, name: str, flt: models.Filter | None = None) -> int:
        with self._lock:
            return self._shard(name).count(qe.CountRequest(exact=True, filter=cv.edge_filter(flt)))

    def retrieve(
        self, name: str, ids: Sequence[str], with_vectors: bool = False
    ) -> list[StoredPoint]:
        with self._lock:
            found = self._shard(name).retrieve(list(ids), True, with_vectors)
        return [_stored(r) for r in found]

    def query(self, name: str, request: FusedQuery) -> list[StoredPoint]:
        flt = cv.edge_filter(request.filter)
        params = qe.SearchParams(exact=True) if request.exact else None
        common: dict[str, Any] = {
            "limit": request.limit, "with_payload": True,
            "with_vector": request.with_vectors or False, "filter": flt, "params": params,
        }
        if len(request.prefetch) == 1:
            using, vec = request.prefetch[0]
            query = qe.QueryRequest(query=qe.Query.Nearest(cv.vector(vec), using=using), **common)
        else:
            prefetch = [
                qe.Prefetch(limit=request.depth, filter=flt, params=params,
                            query=qe.Query.Nearest(cv.vector(vec), using=using))
                for using, vec in request.prefetch
            ]
            common.pop("params")
            query = qe.QueryRequest(prefetches=prefetch, query=qe.Fusion.Rrf(k=RRF_K), **common)
        with self._lock:
            return [_stored(p) for p in self._shard(name).query(query)]

    def optimize(self, name: str) -> bool:
        with self._lock:
            return bool(self._shard(name).optimize())

    def points(self, name: str) -> int:
        with self._lock:
            return int(self._shard(name).info().points_count)

    def flush(self) -> None:
        with self._lock:
            for shard in self._shards.values():
                shard.flush()
            private_tree(self.root)

    def close(self) -> None:
        with self._lock:
            for shard in self._shards.values():
                shard.close()
            self._shards.clear()
            private_tree(self.root)
            release(self._fd)
            self._fd = None
