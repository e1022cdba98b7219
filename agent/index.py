"""The knowledge base: one Qdrant collection with named vectors ``text`` and ``joint``.

A point is one retrievable unit (text chunk, image, page render, video keyframe). Its payload
carries everything a citation needs. The collection's metadata records which models built it.
"""

from __future__ import annotations

import glob
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from vistarag.agent.errors import KnowledgeBaseNotFound, ModelMismatchError, VistaRAGError
from vistarag.agent.locks import PathLock, path_lock
from vistarag.agent.qdrant import get_client, is_local, tune_local_storage
from vistarag.agent.settings import Settings
from vistarag.agent.sparse import LEXICAL_SCHEME, LEXICAL_VECTOR
from vistarag.agent.types import Hit

COLLECTION_PREFIX = "vistarag__"  # + NAME: the alias a knowledge base is reached by
BUILD_PREFIX = "vistarag_v__"  # + NAME__STAMP: one physical build of it
READY, BUILDING = "ready", "building"
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
    """One named knowledge base built with a fixed pair of models.

    Users reach it by its name, a Qdrant collection alias (``vistarag__NAME``) that points at one
    physical collection (``vistarag_v__NAME__STAMP``). A re-index builds a new physical collection
    (a *staging* base, see ``staging()``) and swaps the alias when it is complete (``swap_to``),
    so an interrupted re-index leaves the old one serving. A knowledge base created before aliases
    (a plain collection named ``vistarag__NAME``) keeps working and moves to an alias on re-index.
    """

    def __init__(
        self,
        settings: Settings,
        name: str | None = None,
        client: QdrantClient | None = None,
        *,
        physical: str | None = None,
    ):
        self.settings = settings
        self.name = name or settings.kb
        self.alias = collection_name(self.name)
        # the name every read and write goes through: the alias, or a staging base's collection
        self.collection = physical or self.alias
        self.pinned = physical is not None
        self.client = client or get_client(settings)

    @property
    def lock(self) -> PathLock:
        """Held while this knowledge base's collections, alias or metadata change: threads
        and processes on this data dir take turns, so a first ingest from two users at once
        creates one collection, not two (see ``vistarag.agent.locks``)."""
        return path_lock(self.settings.home / "locks" / f"kb-{self.name}.lock")

    # ---- lifecycle -------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.physical() is not None

    def physical(self) -> str | None:
        """The physical collection this knowledge base reads now, or None when there is none."""
        if self.pinned:
            return self.collection if self.client.collection_exists(self.collection) else None
        target = _alias_target(self.client, self.alias)
        if target is not None:
            return target
        if self.client.collection_exists(self.alias):
            return self.alias  # a plain collection from before aliases
        return self._recover()

    def _recover(self) -> str | None:
        """Re-point a lost alias at the newest complete build (a swap cut short)."""
        with self.lock:
            target = _alias_target(self.client, self.alias)
            if target is not None:  # another thread or process re-pointed it meanwhile
                return target
            ready = [
                name for name in self.builds()
                if _metadata(self.client, name).get("state") == READY
            ]
            if not ready:
                return None
            self.client.update_collection_aliases(change_aliases_operations=[_create_alias(
                ready[-1], self.alias)])
            return ready[-1]

    def builds(self) -> list[str]:
        """Physical collections built for this knowledge base, oldest first."""
        prefix = f"{BUILD_PREFIX}{self.name}__"
        names = [c.name for c in self.client.get_collections().collections]
        return sorted(n for n in names if n.startswith(prefix) and "__" not in n[len(prefix):])

    def _info(self) -> models.CollectionInfo:
        target = self.physical()
        if target is None:
            raise KnowledgeBaseNotFound(
                f"knowledge base {self.name!r} does not exist yet: "
                f"run `vistarag ingest PATH --kb {self.name}`"
            )
        return self.client.get_collection(target)

    def metadata(self) -> dict[str, Any]:
        return dict(self._info().config.metadata or {})

    def vector_names(self) -> set[str]:
        """Named dense and sparse vectors of the collection."""
        return _vector_names(self._info())

    def ensure(self, record: dict[str, Any], owner: str | None = None) -> None:
        """Create the collection for these models, or check it was built with them.

        Check and create happen under ``lock``, so concurrent first ingests create one
        collection. The metadata lists the owners whose points it holds (informational: every
        search filters by owner whatever it says).
        """
        with self.lock:
            target = self.physical()
            if target is not None:
                meta = dict(self.client.get_collection(target).config.metadata or {})
                self.check_models(record, meta)
                owners = meta.get("owners")
                if owner and isinstance(owners, list) and owner not in owners:
                    self.client.update_collection(target, metadata={"owners": [*owners, owner]})
                return
            if self.pinned:
                self._create(self.collection, record, owner, BUILDING)
                return
            physical = self._create(_build_name(self.name), record, owner, READY)
            self.client.update_collection_aliases(
                change_aliases_operations=[_create_alias(physical, self.alias)]
            )

    def _create(
        self, physical: str, record: dict[str, Any], owner: str | None, state: str
    ) -> str:
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
            physical,
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
                "state": state,
            },
        )
        tune_local_storage(self.client)
        if not is_local(self.client):
            for name in KEYWORD_FIELDS:
                self.client.create_payload_index(physical, name, models.PayloadSchemaType.KEYWORD)
            for name, schema in NUMERIC_FIELDS.items():
                self.client.create_payload_index(physical, name, schema)
        return physical

    # ---- re-index: build beside, then swap ----------------------------------------------------
    def staging(self, record: dict[str, Any]) -> KnowledgeBase:
        """A new, empty physical collection for this knowledge base, not yet serving."""
        with self.lock:
            physical = _build_name(self.name)
            self._create(physical, record, None, BUILDING)
        return KnowledgeBase(self.settings, self.name, self.client, physical=physical)

    def swap_to(self, staging: KnowledgeBase) -> None:
        """Serve ``staging`` from now on (one atomic alias change), then drop the old build."""
        if self.pinned or not staging.pinned or staging.name != self.name:
            raise VistaRAGError(f"cannot swap {staging.collection!r} into {self.alias!r}")
        with self.lock:
            self._swap_to(staging)

    def _swap_to(self, staging: KnowledgeBase) -> None:
        old = self.physical()
        self.client.update_collection(staging.collection, metadata={"state": READY})
        ops: list[models.AliasOperations] = []
        if old == self.alias:  # a plain collection holds the name: it must go first
            self.client.delete_collection(old)
        elif old is not None:
            ops.append(models.DeleteAliasOperation(
                delete_alias=models.DeleteAlias(alias_name=self.alias)))
        ops.append(_create_alias(staging.collection, self.alias))
        self.client.update_collection_aliases(change_aliases_operations=ops)
        if old is not None and old != self.alias:
            self.client.delete_collection(old)

    def drop_stale_builds(self) -> list[str]:
        """Delete builds that do not serve (left by an interrupted re-index); returns them."""
        with self.lock:
            return self._drop_stale_builds()

    def _drop_stale_builds(self) -> list[str]:
        serving = self.physical()
        stale = [name for name in self.builds() if name != serving]
        for name in stale:
            self.client.delete_collection(name)
        if is_local(self.client) and not self.settings.qdrant_url:
            # a process killed inside create_collection leaves a folder the store never listed
            known = set(self.builds())
            prefix = f"{BUILD_PREFIX}{self.name}__"
            folder = self.settings.qdrant_dir / "collection"
            for path in folder.glob(f"{glob.escape(prefix)}*") if folder.is_dir() else ():
                if path.name not in known and "__" not in path.name[len(prefix):]:
                    shutil.rmtree(path, ignore_errors=True)
                    stale.append(path.name)
        return stale

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
        """Delete the knowledge base: its alias, the collection it serves and stale builds."""
        with self.lock:
            return self._drop()

    def _drop(self) -> bool:
        target = self.physical()
        if self.pinned:
            if target is not None:
                self.client.delete_collection(target)
            return target is not None
        if target is not None and target != self.alias:
            self.client.update_collection_aliases(change_aliases_operations=[
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias))
            ])
        if target is not None:
            self.client.delete_collection(target)
        self.drop_stale_builds()
        return target is not None

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

    def doc_versions(self, doc_id: str, owner: str | None = None) -> set[str]:
        """Content hashes stored for a document (normally one); only ``owner``'s if given."""
        flt = field_filter(doc_id=doc_id, **({"owner": owner} if owner is not None else {}))
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
        info = self._info()  # read once: vectors and models
        if record is not None:
            self.check_models(record, dict(info.config.metadata or {}))
        present = _vector_names(info)
        # Every query filters by owner when one is given, whatever the metadata says: a list of
        # owners written by racing first ingests once let one user's search skip the filter.
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
    """Names of the knowledge bases: aliases, plain collections from before aliases, and any
    complete build whose alias was lost (it is re-pointed on first use)."""
    names = {c.name for c in client.get_collections().collections}
    names |= {a.alias_name for a in client.get_aliases().aliases}
    found = {n[len(COLLECTION_PREFIX) :] for n in names if n.startswith(COLLECTION_PREFIX)}
    for n in names:
        if n.startswith(BUILD_PREFIX) and _metadata(client, n).get("state") == READY:
            found.add(n[len(BUILD_PREFIX) :].rsplit("__", 1)[0])
    return sorted(found)


def physical_collections(client: QdrantClient) -> list[str]:
    """Every collection of every knowledge base: serving, plain, and builds still in progress."""
    names = [c.name for c in client.get_collections().collections]
    return sorted(n for n in names if n.startswith((COLLECTION_PREFIX, BUILD_PREFIX)))


def blobs_in_use(client: QdrantClient, refs: Iterable[str]) -> set[str]:
    """Which of ``refs`` a point of ANY knowledge base (any build) references.

    The blob store is content-addressed and shared by all knowledge bases: the same screenshot
    ingested into two is one blob, so a delete in one must not remove it.
    """
    wanted = sorted(set(refs))
    used: set[str] = set()
    for name in physical_collections(client) if wanted else ():
        left = [r for r in wanted if r not in used]
        if not left:
            break
        flt = models.Filter(must=[models.FieldCondition(key="blob", match=models.MatchAny(
            any=left))])
        offset = None
        try:
            while True:
                points, offset = client.scroll(
                    name, scroll_filter=flt, limit=512, offset=offset, with_payload=["blob"],
                    with_vectors=False,
                )
                used |= {p.payload.get("blob") for p in points if p.payload}
                if offset is None:
                    break
        except (ValueError, UnexpectedResponse):  # dropped since listed: holds nothing
            continue
    return used & set(wanted)


def _build_name(kb: str) -> str:
    """A fresh physical collection name for ``kb``; names sort in creation order."""
    return f"{BUILD_PREFIX}{kb}__{time.time_ns():020d}"


def _alias_target(client: QdrantClient, alias: str) -> str | None:
    for item in client.get_aliases().aliases:
        if item.alias_name == alias:
            return item.collection_name
    return None


def _metadata(client: QdrantClient, collection: str) -> dict[str, Any]:
    return dict(client.get_collection(collection).config.metadata or {})


def _create_alias(collection: str, alias: str) -> models.CreateAliasOperation:
    return models.CreateAliasOperation(
        create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
    )
