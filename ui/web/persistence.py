"""Chat history on SQLite: Chainlit's SQLAlchemy data layer (aiosqlite) plus a local file store.

Chainlit creates no tables and ships only cloud storage clients (without one it drops every
element), so this module creates the schema and stores elements under the data dir. Evidence
from the knowledge base is not copied: its elements point at ``/vistarag/...`` routes that check
the owner on every request (see ``routes``), and are stored here as the URL they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Awaitable, Callable, Iterable
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


TITLE_CHARS = 44
"""A thread title longer than this is cut (with an ellipsis), so the whole title, with a suffix
that tells two threads apart, fits the sidebar's two lines (``vistarag.css``)."""


def thread_title(question: str, taken: Iterable[str] = ()) -> str:
    """A thread's title from its first question: one line, at most ``TITLE_CHARS``, and
    distinct from ``taken`` (the user's other titles) by a ``(2)``, ``(3)`` ... suffix."""
    text = " ".join(question.split())
    if len(text) > TITLE_CHARS:
        text = text[: TITLE_CHARS - 1].rsplit(" ", 1)[0].rstrip(" ,;:.") + "\u2026"
    taken = set(taken)
    if text not in taken:
        return text
    return next(f"{text} ({k})" for k in range(2, len(taken) + 3) if f"{text} ({k})" not in taken)


class VistaDataLayer(SQLAlchemyDataLayer):
    """The SQLAlchemy data layer on SQLite, keeping ``/vistarag/...`` element URLs as they are.

    ``before_delete`` hooks run ahead of a thread's deletion (the app forgets the thread's graph
    memory and marks its id deleted there); a hook that fails stops the deletion. Writes that
    reach a thread after this process deleted it are dropped, so it never comes back. Step writes
    land in the order they were made; a new thread's title is made distinct; a thread read for
    resuming gets back what Chainlit's query drops (step icons, a video's autoplay).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.before_delete: list[Callable[[str], Awaitable[None]]] = []
        self._step_writes = asyncio.Lock()
        # Chainlit writes a session's metadata to its thread when the socket closes, which can
        # come after the user deleted the thread: that upsert would bring the thread back as a
        # row without an author (and Chainlit then refuses every socket on that id).
        self._deleted: set[str] = set()

    async def create_step(self, step_dict: Any) -> None:
        """Chainlit's, one write at a time in the order they were made.

        Chainlit writes a step's creation and each of its updates in tasks of their own; run
        together, an older state could land last ("Reading the question" without its summary
        after a reload). The lock is each task's first wait, and asyncio starts tasks and wakes
        a lock's waiters in order, so the writes land in the order they were made.
        """
        if step_dict.get("threadId") in self._deleted:
            return
        async with self._step_writes:
            await super().create_step(step_dict)

    async def delete_thread(self, thread_id: str) -> None:
        for hook in self.before_delete:
            await hook(thread_id)
        self._deleted.add(thread_id)
        await super().delete_thread(thread_id)

    async def update_thread(self, thread_id: str, name: str | None = None,
                            user_id: str | None = None, metadata: dict | None = None,
                            tags: list[str] | None = None) -> None:
        """Chainlit's, except that a new thread's title (its first question) is made distinct
        from the user's other threads: ``Question (2)`` when ``Question`` is taken; a blank one
        (a message of files only) is not set, so ``title_untitled`` can name it. A thread this
        process deleted is not written again."""
        if thread_id in self._deleted:
            return
        if name is not None and not name.strip():
            name = None
        if name:
            name = await self._distinct_title(thread_id, name, user_id)
        await super().update_thread(thread_id, name=name, user_id=user_id, metadata=metadata,
                                    tags=tags)

    async def title_untitled(self, thread_id: str, name: str) -> None:
        """Title a thread that has no title yet (one started by dropping files) ``name``."""
        rows = await self.execute_sql('SELECT "name" FROM threads WHERE "id" = :id',
                                      {"id": thread_id})
        if isinstance(rows, list) and rows and not rows[0].get("name"):
            await self.update_thread(thread_id, name=name)

    async def _distinct_title(self, thread_id: str, name: str, user_id: str | None) -> str:
        """``name`` for a thread not titled yet, made distinct among its user's threads; a
        rename of a titled thread keeps the name it was given."""
        rows = await self.execute_sql(
            'SELECT "name", "userId" FROM threads WHERE "id" = :id', {"id": thread_id})
        row = rows[0] if isinstance(rows, list) and rows else {}
        if row.get("name") or not (user_id or row.get("userId")):
            return name
        base = thread_title(name)
        taken = await self.execute_sql(
            'SELECT "name" FROM threads WHERE "userId" = :user AND "id" != :id '
            'AND ("name" = :base OR "name" LIKE :like)',
            {"user": user_id or row.get("userId"), "id": thread_id, "base": base,
             "like": base + " (%)"})
        return thread_title(name, [r["name"] for r in taken] if isinstance(taken, list) else [])

    async def get_thread(self, thread_id: str) -> Any:
        """The thread as Chainlit's layer reads it, with what that drops put back, so a
        resumed thread looks as it did (``restore_display``)."""
        thread = await super().get_thread(thread_id)
        if thread:
            await self.restore_display(thread)
        return thread

    async def restore_display(self, thread: Any) -> None:
        """Step metadata as a dict (its ``icon`` shows the step's icon; Chainlit hands back the
        JSON text), the steps' open/collapse flags, and the elements' player settings (a cited
        video's autoplay) and props, which Chainlit's query leaves out."""
        params = {"thread_id": thread["id"]}
        steps = await self.execute_sql(
            'SELECT "id", "defaultOpen", "autoCollapse" FROM steps WHERE "threadId" = :thread_id',
            params)
        flags = {r["id"]: r for r in steps} if isinstance(steps, list) else {}
        for step in thread.get("steps") or []:
            step["metadata"] = _json_field(step.get("metadata")) or {}
            row = flags.get(step["id"]) or {}
            for key in ("defaultOpen", "autoCollapse"):
                if row.get(key) is not None:
                    step[key] = bool(row[key])  # type: ignore[literal-required]
        rows = await self.execute_sql(
            'SELECT "id", "autoPlay", "playerConfig", "props" FROM elements '
            'WHERE "threadId" = :thread_id', params)
        players = {r["id"]: r for r in rows} if isinstance(rows, list) else {}
        for element in thread.get("elements") or []:
            row = players.get(element["id"]) or {}
            element["playerConfig"] = _json_field(row.get("playerConfig"))
            element["props"] = _json_field(row.get("props")) or {}
            if row.get("autoPlay") is not None:
                element["autoPlay"] = bool(row["autoPlay"])

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
        if element.thread_id in self._deleted:
            return
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
