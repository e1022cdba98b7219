"""Where the index lives, for code that asks by the old names: a backend per data dir or URL.

``get_backend`` (Qdrant Edge under the data dir, or a server by ``QDRANT_URL``) replaced the
shared local-mode ``QdrantClient``; ``get_client`` remains for a server only.
"""

from __future__ import annotations

from typing import Any

from vistarag.agent.errors import VistaRAGError
from vistarag.agent.index.backend import close_all, get_backend
from vistarag.agent.settings import Settings

__all__ = ["close_all", "get_backend", "get_client"]


def get_client(settings: Settings) -> Any:
    """The ``QdrantClient`` of the server backend (``QDRANT_URL`` must be set)."""
    client = getattr(get_backend(settings), "client", None)
    if client is None:
        raise VistaRAGError(
            "this needs a Qdrant server: set QDRANT_URL (the embedded index is Qdrant Edge, "
            "which has no QdrantClient)"
        )
    return client
