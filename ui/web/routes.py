"""Owner-checked file routes for the chat: evidence and uploads, never a path from the URL.

- ``/vistarag/source/<doc_id>/<name>``: a document the knowledge base lists under this user's
  owner id (a PDF opened at its page, a video played from a timestamp). The file served is the
  ``source`` recorded in the index; the URL's ``name`` is only there for players that look at
  the extension.
- ``/vistarag/blob/<ref>``: an image, page render or keyframe that one of the user's points uses.
- ``/vistarag/files/<user id>/<element id>/<name>``: an element the storage client persisted for
  this user (resolved inside the element store only).

Every route answers 404 for anything the signed-in user does not own, so another user learns
nothing by guessing.
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainlit.auth import get_current_user
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse

from vistarag.agent.engine import Engine
from vistarag.agent.index import field_filter
from vistarag.ui.web.persistence import LocalStorageClient

NOT_FOUND = HTTPException(status_code=404, detail="Not found")


@dataclass
class Access:
    """What the routes need: the engine, the knowledge base, the element store, and how a
    signed-in user maps to an owner id."""

    engine: Engine
    kb: str
    storage: LocalStorageClient
    owner_of: Callable[[Any], str | None]

    def source_of(self, doc_id: str, owner: str) -> Path | None:
        base = self.engine.kb(self.kb)
        if not base.exists():
            return None
        for point in base.scroll(field_filter(doc_id=doc_id, owner=owner), ["source"], limit=1):
            source = (point.payload or {}).get("source")
            if source and Path(source).is_file():
                return Path(source)
        return None

    def owns_blob(self, ref: str, owner: str) -> bool:
        base = self.engine.kb(self.kb)
        return base.exists() and base.count(field_filter(blob=ref, owner=owner)) > 0


def _media_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def install_routes(app: FastAPI, access: Access) -> None:
    """Add the routes ahead of Chainlit's catch-all page route."""

    async def source(doc_id: str, name: str, user: Any = Depends(get_current_user)) -> Any:
        owner = access.owner_of(user)
        if not owner:
            raise NOT_FOUND
        path = await asyncio.to_thread(access.source_of, doc_id, owner)
        if path is None:
            raise NOT_FOUND
        return FileResponse(path, media_type=_media_type(path))

    async def blob(ref: str, user: Any = Depends(get_current_user)) -> Any:
        owner = access.owner_of(user)
        # the owner first: a blob no point of this user's cites is never resolved (nor rendered)
        if not owner or not await asyncio.to_thread(access.owns_blob, ref, owner):
            raise NOT_FOUND
        try:  # off the event loop: a page stored for later is rendered on first request
            path = await asyncio.to_thread(access.engine.blobs.path, ref)
        except ValueError:
            raise NOT_FOUND from None
        if not path.is_file():
            raise NOT_FOUND
        return FileResponse(path, media_type=_media_type(path))

    async def files(key: str, user: Any = Depends(get_current_user)) -> Any:
        user_id = getattr(user, "id", None)
        if not user_id or key.split("/", 1)[0] != user_id:
            raise NOT_FOUND
        try:
            path = access.storage.path(key)
        except ValueError:
            raise NOT_FOUND from None
        if not path.is_file():
            raise NOT_FOUND
        return FileResponse(path, media_type=_media_type(path))

    app.add_api_route("/vistarag/source/{doc_id}/{name}", source, methods=["GET"])
    app.add_api_route("/vistarag/blob/{ref}", blob, methods=["GET"])
    app.add_api_route("/vistarag/files/{key:path}", files, methods=["GET"])

    async def unknown(rest: str) -> Any:
        raise NOT_FOUND

    # anything else under /vistarag/ (a "..%2F" trick included) is a 404, never the chat page
    app.add_api_route("/vistarag/{rest:path}", unknown, methods=["GET"])
    # Chainlit serves its page for every unknown path (a catch-all in its included router):
    # put ours first.
    routes = app.router.routes
    ours = [r for r in routes if str(getattr(r, "path", "")).startswith("/vistarag/")]
    routes[:] = ours + [r for r in routes if r not in ours]
