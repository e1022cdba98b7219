"""The index interface: what a knowledge base needs from an engine, and how one is chosen.

Two backends implement it: ``EdgeBackend`` (Qdrant Edge shards under the data dir, the
embedded default) and ``ServerBackend`` (a ``QdrantClient``: a server or cluster by
``QDRANT_URL``, or qdrant-client's local mode, which the tests use as the reference).
A backend is one module; a new one implements ``IndexBackend`` and joins ``get_backend``.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vistarag.agent.index import filters as models
from vistarag.agent.index.records import FusedQuery, PointRecord, StoredPoint
from vistarag.agent.settings import Settings, private_dir


@dataclass
class CollectionSpec:
    """Dense vector sizes by name (cosine), whether a lexical sparse vector exists, metadata."""

    dense: dict[str, int]
    sparse: tuple[str, ...]
    metadata: dict[str, Any]


class IndexBackend(Protocol):
    """Collections (one per knowledge-base build), aliases, points and fused queries."""

    kind: str  # "edge" or "qdrant"
    location: str  # said to users: a folder or a URL

    def list_collections(self) -> list[str]: ...
    def collection_exists(self, name: str) -> bool: ...
    def create_collection(self, name: str, spec: CollectionSpec) -> bool:
        """Create ``name`` unless it exists; True when this call created it."""
        ...
    def delete_collection(self, name: str) -> None: ...
    def metadata(self, name: str) -> dict[str, Any]: ...
    def update_metadata(self, name: str, patch: dict[str, Any]) -> None: ...
    def vector_names(self, name: str) -> set[str]: ...
    def aliases(self) -> dict[str, str]: ...
    def set_alias(self, alias: str, collection: str) -> None: ...
    def delete_alias(self, alias: str) -> None: ...
    def upsert(self, name: str, points: Sequence[PointRecord]) -> None: ...
    def set_payload(self, name: str, ids: Sequence[str], payload: dict[str, Any]) -> None: ...
    def delete(self, name: str, flt: models.Filter) -> None: ...
    def scroll(
        self, name: str, flt: models.Filter | None, fields: Sequence[str] | bool, limit: int,
        offset: Any = None, with_vectors: bool = False,
    ) -> tuple[list[StoredPoint], Any]: ...
    def count(self, name: str, flt: models.Filter | None = None) -> int: ...
    def retrieve(
        self, name: str, ids: Sequence[str], with_vectors: bool = False
    ) -> list[StoredPoint]: ...
    def query(self, name: str, request: FusedQuery) -> list[StoredPoint]: ...
    def optimize(self, name: str, wait: bool = True) -> bool:
        """Build vector indexes (HNSW) without stopping searches and writes; ``wait``: return
        when the index serves. False when the backend indexes by itself (a server)."""
        ...
    def index_state(self, name: str) -> dict[str, Any]:
        """``points``, ``indexed_points`` (covered by the last build), ``building`` (a state
        while a build runs, else None)."""
        ...
    def warm_up(self, name: str, wait: bool = False) -> bool:
        """Start reading ``name``'s files into the OS page cache in the background, so the first
        searches of a long-running process do not wait on the disk (``wait``: until read).
        True when started."""
        ...
    def close(self) -> None: ...


_backends: dict[str, IndexBackend] = {}
_lock = threading.Lock()


def backend_key(settings: Settings) -> str:
    return settings.qdrant_url or f"edge:{settings.qdrant_dir.resolve()}"


def get_backend(settings: Settings) -> IndexBackend:
    """The shared backend for these settings: a server by QDRANT_URL, else Qdrant Edge.

    Opening the embedded index moves a data dir built with qdrant-client's local mode to Qdrant
    Edge first (once; see ``migrate``). The first process to open it holds it and serves it to
    the user's other processes, which get a ``RemoteBackend`` through it (see ``remote``).
    """
    key = backend_key(settings)
    with _lock:
        backend = _backends.get(key)
        if backend is None:
            if settings.qdrant_url:
                from vistarag.agent.index.server import ServerBackend, server_client

                backend = ServerBackend(server_client(settings))
            else:
                from vistarag.agent.index.migrate import migrate_if_needed
                from vistarag.agent.index.remote import open_embedded

                settings.ensure_home()
                private_dir(settings.qdrant_dir)
                migrate_if_needed(settings.qdrant_dir)
                backend = open_embedded(settings.qdrant_dir / "edge")
            _backends[key] = backend
        return backend


_exiting = threading.Event()


def process_exiting() -> bool:
    """True once the interpreter has begun to exit (``close_all`` runs at exit)."""
    return _exiting.is_set()


def close_all() -> None:
    """Close every backend (tests and process exit); later calls reopen."""
    with _lock:
        if _backends:
            from vistarag.agent.index.remote import stop_serving

            for backend in _backends.values():
                stop_serving(backend)  # other processes' calls end before the index closes
                backend.close()
        _backends.clear()


def _close_at_exit() -> None:
    _exiting.set()  # an Edge backend then keeps the OS page cache for the next process
    close_all()


atexit.register(_close_at_exit)
