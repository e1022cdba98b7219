"""One Qdrant client per process and location: embedded local mode or a server (QDRANT_URL)."""

from __future__ import annotations

import atexit
import contextlib
import sqlite3
import threading
import warnings

from qdrant_client import QdrantClient

from vistarag.agent.errors import StoreBusyError
from vistarag.agent.settings import Settings

_clients: dict[str, QdrantClient] = {}
_lock = threading.Lock()


def client_key(settings: Settings) -> str:
    return settings.qdrant_url or f"path:{settings.qdrant_dir.resolve()}"


def get_client(settings: Settings) -> QdrantClient:
    """The shared client for these settings (local mode allows one client per folder)."""
    key = client_key(settings)
    with _lock:
        client = _clients.get(key)
        if client is None:
            if settings.qdrant_url:
                client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
            else:
                settings.qdrant_dir.mkdir(parents=True, exist_ok=True)
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
    for collection in list(getattr(local, "collections", {}).values()):
        connection = getattr(getattr(collection, "storage", None), "storage", None)
        if isinstance(connection, sqlite3.Connection):
            with contextlib.suppress(sqlite3.Error):  # a read-only index stays as it is
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")


def is_local(client: QdrantClient) -> bool:
    """True for embedded local mode, where payload indexes are not used."""
    return type(getattr(client, "_client", None)).__name__ == "QdrantLocal"


def close_all() -> None:
    """Close every client (tests and process exit); later calls reopen."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


atexit.register(close_all)
