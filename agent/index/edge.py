"""The embedded index: Qdrant Edge shards under the data dir (``<home>/qdrant/edge``).

Edge has no collections or aliases: each physical collection is one shard folder
(``collections/NAME``) with our ``vistarag.json`` beside its segments (vector sizes and the
knowledge base's metadata), and ``aliases.json`` maps aliases to folders. Both files are
replaced atomically. Search is exact (brute force over plain segments) until ``optimize``
builds HNSW, which ingest does for large collections only (see ``KnowledgeBase.optimize``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from vistarag.agent.errors import VistaRAGError
from vistarag.agent.index import edge_convert as cv
from vistarag.agent.index import filters as models
from vistarag.agent.index import prefetch
from vistarag.agent.index.backend import CollectionSpec, process_exiting
from vistarag.agent.index.edge_build import (
    CATCH_UP_UNDER_LOCK,
    EXPORT_PAGE,
    IndexBuild,
    log_tail,
    send_pages,
    start_child,
)
from vistarag.agent.index.holder import hold, release
from vistarag.agent.index.payload_indexes import (
    BOOL_FIELDS,
    FLOAT_FIELDS,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    ON_DISK_FIELDS,
    TENANT_FIELD,
)
from vistarag.agent.index.records import RRF_K, FusedQuery, PointRecord, StoredPoint

META_FILE = "vistarag.json"
BUILD_LOG = "build.log"
GENERATION = "gen-"
log = logging.getLogger(__name__)


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
    """Owner-only modes under ``root`` (folders 0700, files 0600), for what was created before
    ``private_umask`` (the data dir holds other users' documents)."""
    for path in [root, *root.rglob("*")]:
        with contextlib.suppress(OSError):
            path.chmod(0o700 if path.is_dir() else 0o600)


@contextlib.contextmanager
def private_umask() -> Any:
    """Edge creates segment files with the process umask, inside its calls: make them
    owner-only (0600/0700) while a call runs (callers hold the backend's lock)."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


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


def _record(record: Any) -> PointRecord:
    """An Edge record read with vectors, as a point to upsert elsewhere (dense as float32)."""
    vectors = {
        k: np.asarray(v, dtype=np.float32) if isinstance(v, list) else cv.from_edge_vector(v)
        for k, v in (record.vector or {}).items()
    }
    return PointRecord(str(record.id), vectors, dict(record.payload or {}))


def _stored(record: Any) -> StoredPoint:
    vec = record.vector
    vector = {k: cv.from_edge_vector(v) for k, v in vec.items()} if isinstance(vec, dict) else None
    return StoredPoint(
        str(record.id), dict(record.payload or {}), vector, float(getattr(record, "score", 0.0))
    )


def new_shard(path: Path, spec: dict[str, Any], indexed: bool = False) -> qe.EdgeShard:
    """An empty shard in ``path`` with our vectors (``spec``: dense sizes, sparse names) and
    payload indexes. An ``indexed`` shard (one an HNSW build makes: 50,000 points and more)
    keeps its dense vectors on disk, mapped, not read into memory when it opens: at 500k points
    it opened in 1.6 s instead of 2.6 with 0.5-0.8 GB resident instead of 2.5 (query p95 13 ms
    once its files are in the page cache: see ``warm_up`` and ``_leave_open``); a small shard,
    searched exactly, keeps them in memory."""
    on_disk = True if indexed else None
    config = qe.EdgeConfig(
        vectors={
            n: qe.EdgeVectorParams(size=int(size), distance=qe.Distance.Cosine, on_disk=on_disk)
            for n, size in spec["dense"].items()
        },
        sparse_vectors={
            n: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf) for n in spec["sparse"]
        },
    )
    shard = qe.EdgeShard.create(str(path), config)
    for field in KEYWORD_FIELDS:
        params = qe.KeywordIndexParams(is_tenant=field == TENANT_FIELD or None,
                                       on_disk=field in ON_DISK_FIELDS or None)
        shard.update(qe.UpdateOperation.create_field_index(field, params))
    for field in INTEGER_FIELDS:
        shard.update(qe.UpdateOperation.create_field_index(field, qe.IntegerIndexParams(
            lookup=True, range=True, on_disk=field in ON_DISK_FIELDS or None)))
    for fields, schema in ((FLOAT_FIELDS, qe.PayloadSchemaType.Float),
                           (BOOL_FIELDS, qe.PayloadSchemaType.Bool)):
        for field in fields:
            shard.update(qe.UpdateOperation.create_field_index(field, schema))
    shard.flush()
    return shard


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
        self._builds: dict[str, IndexBuild] = {}
        self._lock = threading.RLock()
        if hold_lock:
            for name in self.list_collections():
                self._sweep(name)

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
            with private_umask():
                shard = self._shards[name] = qe.EdgeShard.load(str(self._shard_dir(name)))
        return shard

    def _shard_dir(self, name: str) -> Path:
        """Where the serving shard's files are: a ``gen-N`` folder once a build swapped in."""
        generation = self._spec(name).get("shard")
        return self._dir(name) / generation if generation else self._dir(name)

    def _sweep(self, name: str) -> None:
        """Remove what an interrupted build or swap left: folders and files not serving."""
        path, generation = self._dir(name), self._spec(name).get("shard")
        for entry in path.iterdir():
            serving = entry.name in (META_FILE, BUILD_LOG, generation) or (
                not generation and not entry.name.startswith(GENERATION))
            if not serving:
                _remove(entry)

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
            shard = new_shard(path, {"dense": spec.dense, "sparse": list(spec.sparse)})
            self._shards[name] = shard
            write_json(path / META_FILE, {
                "dense": spec.dense, "sparse": list(spec.sparse), "metadata": spec.metadata,
            })  # written last: a folder without it is an unfinished create
            private_tree(path)
            return True

    def delete_collection(self, name: str) -> None:
        self._cancel_build(name)
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
        with self._lock, private_umask():
            self._shard(name).update(qe.UpdateOperation.upsert_points(batch))
            if build := self._building(name):
                build.wrote(p.id for p in points)

    def set_payload(self, name: str, ids: Sequence[str], payload: dict[str, Any]) -> None:
        with self._lock, private_umask():
            self._shard(name).update(qe.UpdateOperation.set_payload(list(ids), payload))
            if build := self._building(name):
                build.wrote(ids)

    def delete(self, name: str, flt: models.Filter) -> None:
        with self._lock, private_umask():
            self._shard(name).update(
                qe.UpdateOperation.delete_points_by_filter(cv.edge_filter(flt)))
            if build := self._building(name):
                build.deleted(flt)

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

    # ---- HNSW, built beside the serving shard (see ``edge_build``) -------------------------------
    def optimize(self, name: str, wait: bool = True) -> bool:
        """Build HNSW for ``name`` in a child process; searches and writes go on meanwhile.

        ``wait``: return when the built index serves (raises if the build failed); else return
        at once. True: a build ran or runs."""
        build = self.start_build(name)
        if wait:
            build.finished.wait()
            if build.state != "done":
                raise VistaRAGError(
                    f"building the HNSW index of {name!r} {build.state}: {build.error or '?'}; "
                    "searches stay exact (slower at this size). See "
                    f"{self._dir(name) / BUILD_LOG}")
        return True

    def start_build(self, name: str) -> IndexBuild:
        """The running build of ``name``, or a new one."""
        with self._lock:
            if build := self._building(name):
                return build
            self._shard(name)  # raises for an unknown collection
            generation = self._next_generation(name)
            build = IndexBuild(name, generation, self._dir(name) / generation)
            _remove(build.folder)
            self._builds[name] = build
        threading.Thread(target=self._run_build, args=(build,), daemon=True,
                         name=f"hnsw-build-{name}").start()
        return build

    def index_state(self, name: str) -> dict[str, Any]:
        """Points, points covered by the last HNSW build, and the build running now, if any."""
        with self._lock:
            build = self._builds.get(name)
            running = self._building(name)
            state: dict[str, Any] = {
                "points": self.points(name),
                "indexed_points": int(self._spec(name).get("indexed_points") or 0),
                "building": running.state if running else None,
            }
            if build is not None:
                state.update(build_state=build.state, build_seconds=round(build.elapsed(), 1),
                             build_error=build.error)
            return state

    def _building(self, name: str) -> IndexBuild | None:
        build = self._builds.get(name)
        return build if build is not None and build.running else None

    def _next_generation(self, name: str) -> str:
        used = [int(p.name[len(GENERATION):]) for p in self._dir(name).glob(GENERATION + "*")
                if p.name[len(GENERATION):].isdigit()]
        return f"{GENERATION}{max(used, default=0) + 1}"

    def _run_build(self, build: IndexBuild) -> None:
        name, log_path = build.collection, self._dir(build.collection) / BUILD_LOG
        try:
            build.process = start_child(build.folder, self._spec(name), log_path)
            build.points = send_pages(build.process, self._export(build))
            build.state = "building"
            code = build.process.wait()
            if build.state == "cancelled":
                raise VistaRAGError("cancelled")
            if code != 0:
                raise VistaRAGError(f"the build process ended with code {code}: "
                                    f"{log_tail(log_path)}")
            build.state = "catching up"
            self._swap_in(build)
            build.state = "done"
        except Exception as exc:  # the serving shard is untouched: log, keep serving
            if build.state != "cancelled":
                build.state, build.error = "failed", str(exc)
                log.warning("HNSW build of %s failed: %s", name, exc)
            _remove(build.folder)
        finally:
            build.finished.set()

    def _export(self, build: IndexBuild) -> Any:
        """The serving shard's points, a page at a time (each read under the lock)."""
        offset = None
        while True:
            with self._lock:
                if build.state == "cancelled":
                    raise VistaRAGError("cancelled")
                records, offset = self._shard(build.collection).scroll(qe.ScrollRequest(
                    offset=offset, limit=EXPORT_PAGE, with_payload=True, with_vector=True))
            yield [_record(r) for r in records]
            if offset is None:
                return

    def _swap_in(self, build: IndexBuild) -> None:
        """Bring the built shard up to date with the serving one, then serve it."""
        name = build.collection
        started = time.perf_counter()
        built = qe.EdgeShard.load(str(build.folder))
        build.timings["load"] = time.perf_counter() - started
        try:
            while True:
                with self._lock:
                    if build.state == "cancelled":
                        raise VistaRAGError("cancelled")
                    if len(build.dirty) + len(build.deletes) <= CATCH_UP_UNDER_LOCK:
                        started = time.perf_counter()
                        self._catch_up(name, built, *build.take_changes())
                        build.timings["last catch-up"] = time.perf_counter() - started
                        old = self._serve(name, built, build)
                        break
                    changes = build.take_changes()
                started = time.perf_counter()
                self._catch_up(name, built, *changes)
                build.timings["catch-up"] = (build.timings.get("catch-up", 0.0)
                                             + time.perf_counter() - started)
        except BaseException:
            built.close()
            raise
        # Out of the lock. Dropping the old shard lets other threads run; its close() would
        # hold the GIL throughout (2.6 s at 541k points: every search waited).
        started = time.perf_counter()
        del old
        build.timings["drop old"] = time.perf_counter() - started
        with self._lock:
            self._sweep(name)

    def _catch_up(self, name: str, built: qe.EdgeShard, dirty: set[str], deletes: list) -> None:
        """Apply to ``built`` what the serving shard got since the export began."""
        for flt in deletes:
            built.update(qe.UpdateOperation.delete_points_by_filter(cv.edge_filter(flt)))
        ids = sorted(dirty)
        for at in range(0, len(ids), 500):
            chunk = ids[at:at + 500]
            with self._lock:
                found = self._shard(name).retrieve(chunk, True, True)
            if found:
                built.update(qe.UpdateOperation.upsert_points([
                    qe.Point(p.id, cv.vectors(p.vectors), p.payload) for p in map(_record, found)
                ]))
            gone = set(chunk) - {str(r.id) for r in found}
            if gone:
                built.update(qe.UpdateOperation.delete_points(sorted(gone)))

    def _serve(self, name: str, built: qe.EdgeShard, build: IndexBuild) -> qe.EdgeShard | None:
        """Under the lock: the built shard serves from now on. Returns the old one, for the
        caller to drop; ``_sweep`` then removes its files."""
        built.flush()
        old = self._shards.pop(name, None)
        self._shards[name] = built
        spec = self._spec(name)
        spec.update(shard=build.generation, indexed_points=int(built.info().points_count))
        write_json(self._dir(name) / META_FILE, spec)
        private_tree(build.folder)
        return old

    def _cancel_build(self, name: str) -> None:
        build = self._builds.get(name)
        if build is not None and build.running:
            build.cancel()
            build.finished.wait(timeout=30)

    def warm_up(self, name: str, wait: bool = False) -> bool:
        """Read the serving shard's files into the page cache, in a child process (see
        ``prefetch``): a long-running process's first searches then do not wait on the disk.
        Searches made while it reads wait longer (the first, up to a second at 500k points)."""
        with self._lock:
            self._shard(name)  # raises for an unknown collection
            folder = self._shard_dir(name)
        child = prefetch.start(folder)
        if wait:
            child.wait()
        return True

    def points(self, name: str) -> int:
        with self._lock:
            return int(self._shard(name).info().points_count)

    def flush(self) -> None:
        with self._lock, private_umask():
            for shard in self._shards.values():
                shard.flush()
            private_tree(self.root)

    def close(self) -> None:
        """Close every shard and release the index. At process exit the shards are flushed and
        left open instead (see ``_leave_open``)."""
        for name in list(self._builds):
            self._cancel_build(name)
        with self._lock:
            exiting = process_exiting()
            for shard in self._shards.values():
                if exiting:
                    _leave_open(shard)
                else:
                    shard.close()
            self._shards.clear()
            private_tree(self.root)
            if not exiting:  # at exit the lock goes with the process, after Edge's own
                release(self._fd)
                self._fd = None


def _leave_open(shard: qe.EdgeShard) -> None:
    """Flush ``shard`` and never drop it: the process ends with it open.

    Closing (or dropping) an Edge shard evicts its files from the OS page cache, so the next
    process would read every vector it touches from disk: at 541k points the first 200 queries
    of a fresh process took p50/p95 29/90 ms instead of 7/13. A flushed shard loses nothing when
    its process ends (its write-ahead log is replayed on the next open, as after a crash), and
    the kernel drops the file locks with the process. A shard whose folder is gone (deleted
    while the process ran) has nothing left to keep: a warning, and exit goes on."""
    try:
        shard.flush()
    except Exception as exc:
        log.warning("index shard not flushed at exit: %s", exc)
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(shard))  # never deallocated, so never dropped
