"""The knowledge base: one collection with named vectors ``text``, ``joint`` and ``lexical``.

A point is one retrievable unit (text chunk, image, page render, video keyframe). Its payload
carries everything a citation needs. The collection's metadata records which models built it.
It runs on any ``IndexBackend`` (Qdrant Edge by default, a Qdrant server by ``QDRANT_URL``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from vistarag.agent.errors import KnowledgeBaseNotFound, ModelMismatchError, VistaRAGError
from vistarag.agent.index import filters as models
from vistarag.agent.index.backend import CollectionSpec, IndexBackend, get_backend
from vistarag.agent.index.lexical import LEXICAL_SCHEME, LEXICAL_VECTOR
from vistarag.agent.index.records import (
    BUILD_PREFIX,
    COLLECTION_PREFIX,
    FusedQuery,
    PointRecord,
    QueryVectors,
    SearchFilters,
    StoredPoint,
    collection_name,
    field_filter,
    hit_from_point,
)
from vistarag.agent.locks import PathLock, path_lock
from vistarag.agent.settings import Settings
from vistarag.agent.types import Hit

READY, BUILDING = "ready", "building"
SCHEMA_VERSION = 1
HNSW_MIN_POINTS = 50_000  # below it searches stay exact and no HNSW is built (milliseconds)
REINDEX_NEW_POINTS = 20_000  # new points since the last HNSW build before another one
REINDEX_FRACTION = 0.2  # ... and this share of the collection


def as_backend(target: Any) -> IndexBackend:
    """A backend as it is; a bare ``QdrantClient`` wrapped in ``ServerBackend``."""
    if type(target).__name__ == "QdrantClient":
        from vistarag.agent.index.server import ServerBackend

        return ServerBackend(target)
    return target


class KnowledgeBase:
    """One named knowledge base built with a fixed pair of models.

    Users reach it by its name, an alias (``vistarag__NAME``) that points at one physical
    collection (``vistarag_v__NAME__STAMP``). A re-index builds a new physical collection
    (a *staging* base, see ``staging()``) and swaps the alias when it is complete (``swap_to``),
    so an interrupted re-index leaves the old one serving. A knowledge base created before aliases
    (a plain collection named ``vistarag__NAME``) keeps working and moves to an alias on re-index.
    """

    def __init__(
        self,
        settings: Settings,
        name: str | None = None,
        backend: Any = None,  # an IndexBackend, or a QdrantClient
        *,
        physical: str | None = None,
    ):
        self.settings = settings
        self.name = name or settings.kb
        self.alias = collection_name(self.name)
        # the name every read and write goes through: the alias, or a staging base's collection
        self.collection = physical or self.alias
        self.pinned = physical is not None
        self.backend = as_backend(backend) if backend is not None else get_backend(settings)

    @property
    def client(self) -> Any:
        """The ``QdrantClient`` of a server backend (LangChain's QdrantVectorStore); else None."""
        return getattr(self.backend, "client", None)

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
        b = self.backend
        if self.pinned:
            return self.collection if b.collection_exists(self.collection) else None
        target = b.aliases().get(self.alias)
        if target is not None and b.collection_exists(target):
            return target
        if b.collection_exists(self.alias):
            return self.alias  # a plain collection from before aliases
        return self._recover()

    def _target(self) -> str:
        """Where reads and writes go (resolved once per call: Edge has no server-side alias)."""
        target = self.physical()
        if target is None:
            raise KnowledgeBaseNotFound(
                f"knowledge base {self.name!r} does not exist yet: "
                f"run `vistarag ingest PATH --kb {self.name}`"
            )
        return target

    def _recover(self) -> str | None:
        """Re-point a lost alias at the newest complete build (a swap cut short)."""
        with self.lock:
            target = self.backend.aliases().get(self.alias)
            if target is not None and self.backend.collection_exists(target):
                return target  # another thread or process re-pointed it meanwhile
            ready = [n for n in self.builds() if self.backend.metadata(n).get("state") == READY]
            if not ready:
                return None
            self.backend.set_alias(self.alias, ready[-1])
            return ready[-1]

    def builds(self) -> list[str]:
        """Physical collections built for this knowledge base, oldest first."""
        prefix = f"{BUILD_PREFIX}{self.name}__"
        names = self.backend.list_collections()
        return sorted(n for n in names if n.startswith(prefix) and "__" not in n[len(prefix):])

    def metadata(self) -> dict[str, Any]:
        return self.backend.metadata(self._target())

    def vector_names(self) -> set[str]:
        """Named dense and sparse vectors of the collection."""
        return self.backend.vector_names(self._target())

    def ensure(self, record: dict[str, Any], owner: str | None = None) -> None:
        """Create the collection for these models, or check it was built with them.

        Check and create happen under ``lock``, so concurrent first ingests create one
        collection. The metadata lists the owners whose points it holds (informational: every
        search filters by owner whatever it says).
        """
        with self.lock:
            target = self.physical()
            if target is not None:
                meta = self.backend.metadata(target)
                self.check_models(record, meta)
                owners = meta.get("owners")
                if owner and isinstance(owners, list) and owner not in owners:
                    self.backend.update_metadata(target, {"owners": [*owners, owner]})
                return
            if self.pinned:
                self._create(self.collection, record, owner, BUILDING)
                return
            physical = self._create(_build_name(self.name), record, owner, READY)
            self.backend.set_alias(self.alias, physical)

    def _create(
        self, physical: str, record: dict[str, Any], owner: str | None, state: str
    ) -> str:
        dense = {"text": int(record["text_dim"])}
        if record.get("joint_dim"):
            dense["joint"] = int(record["joint_dim"])
        self.backend.create_collection(physical, CollectionSpec(
            dense=dense,
            sparse=(LEXICAL_VECTOR,),
            metadata={
                **record,
                "lexical": LEXICAL_SCHEME,
                "owners": [owner] if owner else [],
                "schema_version": SCHEMA_VERSION,
                "kb": self.name,
                "state": state,
            },
        ))
        return physical

    # ---- re-index: build beside, then swap ----------------------------------------------------
    def staging(self, record: dict[str, Any]) -> KnowledgeBase:
        """A new, empty physical collection for this knowledge base, not yet serving."""
        with self.lock:
            physical = _build_name(self.name)
            self._create(physical, record, None, BUILDING)
        return KnowledgeBase(self.settings, self.name, self.backend, physical=physical)

    def swap_to(self, staging: KnowledgeBase) -> None:
        """Serve ``staging`` from now on (one alias change), then drop the old build."""
        if self.pinned or not staging.pinned or staging.name != self.name:
            raise VistaRAGError(f"cannot swap {staging.collection!r} into {self.alias!r}")
        with self.lock:
            old = self.physical()
            self.backend.update_metadata(staging.collection, {"state": READY})
            if old == self.alias:  # a plain collection holds the name: it must go first
                self.backend.delete_collection(old)
            self.backend.set_alias(self.alias, staging.collection)
            if old is not None and old != self.alias:
                self.backend.delete_collection(old)

    def drop_stale_builds(self) -> list[str]:
        """Delete builds that do not serve (left by an interrupted re-index); returns them."""
        with self.lock:
            serving = self.physical()
            stale = [name for name in self.builds() if name != serving]
            for name in stale:
                self.backend.delete_collection(name)
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
            target = self.physical()
            if self.pinned:
                if target is not None:
                    self.backend.delete_collection(target)
                return target is not None
            if target is not None and target != self.alias:
                self.backend.delete_alias(self.alias)
            if target is not None:
                self.backend.delete_collection(target)
            self.drop_stale_builds()
            return target is not None

    # ---- writes ----------------------------------------------------------------------------
    def upsert(self, points: Sequence[PointRecord], batch: int = 256) -> None:
        target = self._target()
        for i in range(0, len(points), batch):
            self.backend.upsert(target, points[i : i + batch])

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        self.backend.set_payload(self._target(), ids, payload)

    def delete_points(self, flt: models.Filter) -> None:
        self.backend.delete(self._target(), flt)

    def needs_index(self, min_points: int = HNSW_MIN_POINTS) -> bool:
        """True when HNSW should be (re)built: ``min_points`` or more points, and more new
        points since the last build than ``REINDEX_NEW_POINTS`` and ``REINDEX_FRACTION`` of all
        (searches scan new points exactly until then: milliseconds)."""
        state = self.index_state()
        points, indexed = state["points"], state["indexed_points"]
        if state["building"] or points < min_points:
            return False
        if not indexed:
            return True
        return points - indexed >= max(REINDEX_NEW_POINTS, REINDEX_FRACTION * points)

    def optimize(self, min_points: int = HNSW_MIN_POINTS, wait: bool = True) -> bool:
        """Build HNSW when ``needs_index``, beside the serving index: searches and writes go
        on meanwhile (Qdrant Edge builds in a child process and swaps the result in).
        ``wait``: return when it serves. True when a build ran (or, not waiting, runs)."""
        if not self.needs_index(min_points):
            return False
        return self.backend.optimize(self._target(), wait=wait)

    def index_state(self) -> dict[str, Any]:
        return self.backend.index_state(self._target())

    def warm_up(self, wait: bool = False) -> bool:
        """Start reading the index's files into the page cache (a long-running process, before
        its first search; ``wait``: until read); True when started."""
        return self.backend.warm_up(self._target(), wait=wait)

    # ---- reads -----------------------------------------------------------------------------
    def scroll(
        self,
        flt: models.Filter | None = None,
        fields: Sequence[str] | bool = True,
        limit: int | None = None,
        with_vectors: bool = False,
    ) -> Iterable[StoredPoint]:
        """Iterate points (payload; vectors when asked) matching ``flt``."""
        target = self._target()
        offset = None
        seen = 0
        while True:
            points, offset = self.backend.scroll(
                target, flt, fields, 512, offset=offset, with_vectors=with_vectors
            )
            for point in points:
                yield point
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if offset is None:
                return

    def retrieve(self, ids: Sequence[str], with_vectors: bool = False) -> list[StoredPoint]:
        return self.backend.retrieve(self._target(), ids, with_vectors)

    def count(self, flt: models.Filter | None = None) -> int:
        return self.backend.count(self._target(), flt)

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
        exact: bool = False,
    ) -> list[Hit]:
        """Prefetch on each named vector present (dense and lexical), fuse with RRF.

        Each hit's ``extra["dense"]`` holds its best cosine similarity per space, for rerankers.
        With ``record`` (the configured models), a knowledge base built with others is refused.
        Every search filters by owner when ``filters.owner`` is given.
        """
        if query.empty():
            return []
        target = self._target()
        if record is not None:
            self.check_models(record, self.backend.metadata(target))
        present = self.backend.vector_names(target)
        per_space = {k: v for k, v in query.by_space().items() if v and k in present}
        prefetch: list[tuple[str, Any]] = [
            (space, vec.tolist()) for space, vecs in per_space.items() for vec in vecs
        ]
        if LEXICAL_VECTOR in present:
            prefetch += [(LEXICAL_VECTOR, vec) for vec in query.lexical]
        if not prefetch:
            return []
        request = FusedQuery(
            prefetch=prefetch,
            limit=limit,
            depth=prefetch_limit or max(limit, 50),
            filter=filters.to_qdrant() if filters else None,
            with_vectors=list(per_space),
            exact=exact,
        )
        hits = []
        for point in self.backend.query(target, request):
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


def list_knowledge_bases(backend: Any) -> list[str]:
    """Names of the knowledge bases: aliases, plain collections from before aliases, and any
    complete build whose alias was lost (it is re-pointed on first use)."""
    backend = as_backend(backend)
    collections = backend.list_collections()
    names = set(collections) | set(backend.aliases())
    found = {n[len(COLLECTION_PREFIX) :] for n in names if n.startswith(COLLECTION_PREFIX)}
    for n in collections:
        if n.startswith(BUILD_PREFIX) and backend.metadata(n).get("state") == READY:
            found.add(n[len(BUILD_PREFIX) :].rsplit("__", 1)[0])
    return sorted(found)


def physical_collections(backend: Any) -> list[str]:
    """Every collection of every knowledge base: serving, plain, and builds still in progress."""
    names = as_backend(backend).list_collections()
    return sorted(n for n in names if n.startswith((COLLECTION_PREFIX, BUILD_PREFIX)))


def blobs_in_use(backend: Any, refs: Iterable[str]) -> set[str]:
    """Which of ``refs`` a point of ANY knowledge base (any build) references.

    The blob store is content-addressed and shared by all knowledge bases: the same screenshot
    ingested into two is one blob, so a delete in one must not remove it.
    """
    backend = as_backend(backend)
    wanted = sorted(set(refs))
    used: set[str] = set()
    for name in physical_collections(backend) if wanted else ():
        left = [r for r in wanted if r not in used]
        if not left:
            break
        flt = models.Filter(must=[models.FieldCondition(key="blob", match=models.MatchAny(
            any=left))])
        offset = None
        try:
            while True:
                points, offset = backend.scroll(name, flt, ["blob"], 512, offset=offset)
                used |= {p.payload.get("blob") for p in points if p.payload}
                if offset is None:
                    break
        except (ValueError, KeyError, VistaRAGError):  # dropped since listed: holds nothing
            continue
    return used & set(wanted)


def _build_name(kb: str) -> str:
    """A fresh physical collection name for ``kb``; names sort in creation order."""
    return f"{BUILD_PREFIX}{kb}__{time.time_ns():020d}"
