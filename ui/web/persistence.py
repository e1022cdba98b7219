"""Chat history on SQLite: Chainlit's SQLAlchemy data layer (aiosqlite) plus a local file store.

Chainlit creates no tables and ships only cloud storage clients (without one it drops every
element), so this module creates the schema and stores elements under the data dir. Evidence
from the knowledge base is not copied: its elements point at ``/vistarag/...`` routes that check
the owner on every request (see ``routes``), and are stored here as the URL they are.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.data.storage_clients.base import BaseStorageClient
from chainlit.data.utils import queue_until_user_message
from chainlit.element import Element, ElementDict
from fastapi import HTTPException

ROUTE_PREFIX = "/vistarag/"
FILES_ROUTE = ROUTE_PREFIX + "files/"

# Chainlit's documented schema (docs.chainlit.io/data-layers/sqlalchemy), in SQLite types.
SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    "id" TEXT PRIMARY KEY, "identifier" TEXT NOT NULL UNIQUE, "metadata" TEXT NOT NULL,
    "createdAt" TEXT);
CREATE TABLE IF NOT EXISTS threads (
    "id" TEXT PRIMARY KEY, "createdAt" TEXT, "name" TEXT, "userId" TEXT, "userIdentifier" TEXT,
    "tags" TEXT, "metadata" TEXT,
    FOREIGN KEY ("userId") REFERENCES users("id") ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS steps (
    "id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "type" TEXT NOT NULL, "threadId" TEXT NOT NULL,
    "parentId" TEXT, "streaming" BOOLEAN NOT NULL, "waitForAnswer" BOOLEAN, "isError" BOOLEAN,
    "metadata" TEXT, "tags" TEXT, "input" TEXT, "output" TEXT, "createdAt" TEXT, "command" TEXT,
    "start" TEXT, "end" TEXT, "generation" TEXT, "showInput" TEXT, "language" TEXT,
    "indent" INT, "defaultOpen" BOOLEAN, "autoCollapse" BOOLEAN, "modes" TEXT, "icon" TEXT,
    FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS elements (
    "id" TEXT PRIMARY KEY, "threadId" TEXT, "type" TEXT, "url" TEXT, "chainlitKey" TEXT,
    "name" TEXT NOT NULL, "display" TEXT, "objectKey" TEXT, "size" TEXT, "page" INT,
    "language" TEXT, "forId" TEXT, "mime" TEXT, "props" TEXT, "autoPlay" BOOLEAN,
    "playerConfig" TEXT,
    FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS feedbacks (
    "id" TEXT PRIMARY KEY, "forId" TEXT NOT NULL, "threadId" TEXT NOT NULL,
    "value" INT NOT NULL, "comment" TEXT,
    FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE);
"""


def create_schema(db_path: Path) -> None:
    """Create Chainlit's tables in ``db_path`` if they are missing."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db_path) as conn:
        conn.executescript(SCHEMA)


def safe_join(root: Path, key: str) -> Path:
    """``root/key``, refusing any key that would leave ``root`` (``..``, absolute, links)."""
    root = root.resolve()
    if not key or "\x00" in key or key.startswith(("/", "\\")):
        raise ValueError(f"bad object key {key!r}")
    target = (root / key).resolve()
    if root != target and root not in target.parents:
        raise ValueError(f"object key {key!r} escapes the store")
    return target


class LocalStorageClient(BaseStorageClient):
    """Chainlit storage client writing under a local folder; read URLs are served by
    ``routes`` only to the user the key belongs to (``<user id>/<element id>/<name>``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    async def upload_file(
        self,
        object_key: str,
        data: bytes | str,
        mime: str = "application/octet-stream",
        overwrite: bool = True,
        content_disposition: str | None = None,
    ) -> dict[str, Any]:
        target = safe_join(self.root, object_key)
        if target.exists() and not overwrite:
            return {"object_key": object_key, "url": await self.get_read_url(object_key)}
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = data.encode("utf-8") if isinstance(data, str) else data
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, target)
        return {"object_key": object_key, "url": await self.get_read_url(object_key)}

    async def delete_file(self, object_key: str) -> bool:
        try:
            safe_join(self.root, object_key).unlink(missing_ok=True)
        except ValueError:
            return False
        return True

    async def get_read_url(self, object_key: str) -> str:
        from urllib.parse import quote

        return FILES_ROUTE + quote(object_key)

    async def close(self) -> None:
        return None

    def path(self, object_key: str) -> Path:
        return safe_join(self.root, object_key)


def _json_field(value: Any) -> Any:
    """A JSON column as stored (text, or NULL for elements that have none) -> its value."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return json.loads(value)
        return None
    return value


class VistaDataLayer(SQLAlchemyDataLayer):
    """The SQLAlchemy data layer on SQLite, keeping ``/vistarag/...`` element URLs as they are.

    ``before_delete`` hooks run ahead of a thread's deletion (the app forgets the thread's graph
    memory and marks its id deleted there); a hook that fails stops the deletion.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.before_delete: list[Callable[[str], Awaitable[None]]] = []

    async def delete_thread(self, thread_id: str) -> None:
        for hook in self.before_delete:
            await hook(thread_id)
        await super().delete_thread(thread_id)

    async def get_thread_author(self, thread_id: str) -> str:
        """The thread's author, or "" when there is none yet (Chainlit's raises ValueError,
        an HTTP 500, for a thread whose record is still being written): its ACL check then
        answers 404."""
        try:
            return await super().get_thread_author(thread_id)
        except ValueError:
            return ""

    async def get_element(self, thread_id: str, element_id: str) -> ElementDict | None:
        """One element of a thread; 404 when the thread has no such element.

        Chainlit's own version fails with a TypeError (HTTP 500) on every element without
        ``props`` (all but custom elements): the column is NULL, not missing.
        """
        rows = await self.execute_sql(
            'SELECT * FROM elements WHERE "threadId" = :thread_id AND "id" = :element_id',
            {"thread_id": thread_id, "element_id": element_id},
        )
        if not isinstance(rows, list) or not rows:
            raise HTTPException(status_code=404, detail="Element not found")
        row = rows[0]
        element = {key: row.get(key) for key in ElementDict.__annotations__ if key in row}
        element["props"] = _json_field(row.get("props")) or {}
        element["playerConfig"] = _json_field(row.get("playerConfig"))
        return ElementDict(**element)  # type: ignore[typeddict-item]

    async def _get_user_id_by_thread(self, thread_id: str) -> str | None:
        """The thread's user; for a thread not written yet (an upload in its first message),
        the signed-in user of this session, so the element is stored under that user."""
        user_id = await super()._get_user_id_by_thread(thread_id)
        if user_id:
            return user_id
        from chainlit.context import context

        with contextlib.suppress(Exception):
            return getattr(context.session.user, "id", None)
        return None

    @queue_until_user_message()
    async def create_element(self, element: Element) -> None:
        if not (element.url or "").startswith(ROUTE_PREFIX):
            await super().create_element(element)
            return
        if not element.for_id:
            return
        row: dict[str, Any] = {k: v for k, v in element.to_dict().items() if v is not None}
        for key in ("props", "playerConfig"):
            if key in row:
                row[key] = json.dumps(row[key])
        columns = ", ".join(f'"{c}"' for c in row)
        values = ", ".join(f":{c}" for c in row)
        updates = ", ".join(f'"{c}" = :{c}' for c in row if c != "id")
        await self.execute_sql(
            f"INSERT INTO elements ({columns}) VALUES ({values}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates};",
            row,
        )


def make_data_layer(db_path: Path, files_root: Path) -> VistaDataLayer:
    create_schema(db_path)
    return VistaDataLayer(
        conninfo=f"sqlite+aiosqlite:///{db_path}", storage_provider=LocalStorageClient(files_root)
    )
