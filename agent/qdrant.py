"""One Qdrant client per process and location: embedded local mode or a server (QDRANT_URL)."""

from __future__ import annotations

import atexit
import contextlib
import sqlite3
import threading
import warnings
from pathlib import Path

from qdrant_client import QdrantClient

from vistarag.agent.errors import StoreBusyError
from vistarag.agent.locks import Serialised
from vistarag.agent.settings import Settings, private_dir, private_file

_clients: dict[str, QdrantClient] = {}
_lock = threading.Lock()


def client_key(settings: Settings) -> str:
    return settings.qdrant_url or f"path:{settings.qdrant_dir.resolve()}"


def get_client(settings: Settings) -> QdrantClient:
    """The shared client for these settings (local mode allows one client per folder).

    The embedded engine is not thread-safe (two threads creating collections race on its
    ``meta.json``; a scroll meets a dict another thread grows), so in local mode each of its
    calls holds one lock (``client_lock``)."""
    key = client_key(settings)
    with _lock:
        client = _clients.get(key)
        if client is None:
            if settings.qdrant_url:
                client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
            else:
                settings.ensure_home()
                private_dir(settings.qdrant_dir)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        client = QdrantClient(path=str(settings.qdrant_dir))
                except RuntimeError as exc:
                    if "already accessed" not in str(exc):
                        raise
                    raise StoreBusyError(
                        f"the index in {settings.qdrant_dir} is open in another process "
                        "(embedded Qdrant serves one process at a time). Close the other "
                        "VistaRAG process (UI, ask, ingest), or run a Qdrant server and set "
                        "QDRANT_URL for concurrent use."
                    ) from exc
                client._client = _PrivateLocal(client._client)
            tune_local_storage(client)
            _clients[key] = client
        return client


def tune_local_storage(client: QdrantClient) -> None:
    """Put each embedded collection's SQLite file in WAL mode with ``synchronous=NORMAL``.

    Embedded Qdrant commits every point on its own, and SQLite's default (a rollback journal,
    ``synchronous=FULL``) syncs each commit to disk: 2,431 points of the four filings spent
    3.8 of 34 s in fdatasync. WAL with NORMAL, SQLite's recommended setting for applications,
    syncs at checkpoints instead; a crash cannot corrupt the file, a power cut may lose the last
    commits (a version whose last batch is lost has no complete flag and is ingested again).
    Called when a client opens and after each collection is created; a no-op for a server.
    """
    local = getattr(client, "_client", None)
    with client_lock(client):
        for collection in list(getattr(local, "collections", {}).values()):
            connection = getattr(getattr(collection, "storage", None), "storage", None)
            if isinstance(connection, sqlite3.Connection):
                with contextlib.suppress(sqlite3.Error):  # a read-only index stays as it is
                    connection.execute("PRAGMA journal_mode=WAL")
                    connection.execute("PRAGMA synchronous=NORMAL")
        location = getattr(local, "location", None)
        if getattr(local, "persistent", False) and location:
            _private_files(Path(location))


def _private_files(root: Path) -> None:
    """Owner-only modes on the embedded index: files 0600, folders 0700."""
    for path in [root, *root.rglob("*")]:
        with contextlib.suppress(OSError):
            path.chmod(0o700 if path.is_dir() else 0o600)


def client_lock(client: QdrantClient) -> contextlib.AbstractContextManager[object]:
    """The lock every call into this embedded client holds; a no-op for a server client."""
    local = getattr(client, "_client", None)
    return local.lock if isinstance(local, Serialised) else contextlib.nullcontext()


class _PrivateLocal(Serialised):
    """The embedded engine, one call at a time, its ``meta.json`` kept 0600: the engine
    rewrites it (a new file, with the umask's mode) after each collection or alias change."""

    SAVES = frozenset({
        "create_collection", "update_collection", "delete_collection", "recreate_collection",
        "update_collection_aliases", "create_payload_index", "delete_payload_index",
        "create_vector_name", "delete_vector_name",
    })

    def __getattr__(self, name: str) -> object:
        call = super().__getattr__(name)
        if name not in self.SAVES:
            return call
        location = getattr(self.wrapped, "location", None)

        def saving(*args: object, **kwargs: object) -> object:
            with self.lock:
                try:
                    return call(*args, **kwargs)
                finally:
                    if location and getattr(self.wrapped, "persistent", False):
                        private_file(Path(location) / "meta.json")

        return saving


def is_local(client: QdrantClient) -> bool:
    """True for embedded local mode, where payload indexes are not used."""
    local = getattr(client, "_client", None)
    if isinstance(local, Serialised):
        local = local.wrapped
    return type(local).__name__ == "QdrantLocal"


def close_all() -> None:
    """Close every client (tests and process exit); later calls reopen."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


atexit.register(close_all)
