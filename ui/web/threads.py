"""Which owner each chat thread id belongs to, so a turn never runs on another owner's memory.

The graph's memory (LangGraph checkpoints) is keyed by the chat's thread id, and a thread id
shows in ``/thread/<uuid>`` URLs. Chainlit checks the author only of threads it still has; this
table, beside Chainlit's in the chat database, records the owner of every thread VistaRAG ran a
turn on, and keeps a deleted thread's id as a tombstone so no one can take it over.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

SCHEMA = """
CREATE TABLE IF NOT EXISTS vistarag_thread_owners (
    "thread_id" TEXT PRIMARY KEY, "owner" TEXT NOT NULL, "deleted" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TEXT, "deletedAt" TEXT);
"""
REFUSED = (
    "This conversation is not available (it was deleted, or it is not yours). "
    "Start a new chat to ask again."
)
Verdict = Literal["ok", "foreign", "deleted"]


class ThreadOwners:
    """The ``vistarag_thread_owners`` table in the chat database (plain sqlite3: call it in a
    worker thread from async code)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            new = not conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' "
                "AND name = 'vistarag_thread_owners'"
            ).fetchone()
            conn.executescript(SCHEMA)
            if new:
                self._adopt_chat_threads(conn)

    @staticmethod
    def _adopt_chat_threads(conn: sqlite3.Connection) -> None:
        """Once, when the table is created: Chainlit's threads keep their authors as owners
        (threads from before this table); memory of any other id is refused from then on."""
        has_threads = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'threads'"
        ).fetchone()
        if has_threads:
            conn.execute(
                'INSERT OR IGNORE INTO vistarag_thread_owners ("thread_id", "owner", "createdAt") '
                'SELECT "id", "userIdentifier", "createdAt" FROM threads '
                'WHERE "userIdentifier" IS NOT NULL'
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db_path, timeout=30)

    def get(self, thread_id: str) -> tuple[str, bool] | None:
        """``(owner, deleted)`` of a known thread id, else None."""
        with self._connect() as conn:
            row = conn.execute(
                'SELECT "owner", "deleted" FROM vistarag_thread_owners WHERE "thread_id" = ?',
                (thread_id,),
            ).fetchone()
        return (str(row[0]), bool(row[1])) if row else None

    def claim(self, thread_id: str, owner: str) -> Verdict:
        """Record ``owner`` for a new thread id; whether ``owner`` may run a turn on it."""
        with self._connect() as conn:
            conn.execute(
                'INSERT OR IGNORE INTO vistarag_thread_owners ("thread_id", "owner", "createdAt") '
                "VALUES (?, ?, ?)",
                (thread_id, owner, _now()),
            )
            row = conn.execute(
                'SELECT "owner", "deleted" FROM vistarag_thread_owners WHERE "thread_id" = ?',
                (thread_id,),
            ).fetchone()
        if row[1]:
            return "deleted"
        return "ok" if row[0] == owner else "foreign"

    def tombstone(self, thread_id: str, owner: str = "") -> None:
        """Mark a thread id deleted for good (kept, so the id cannot be claimed again)."""
        with self._connect() as conn:
            conn.execute(
                'INSERT INTO vistarag_thread_owners ("thread_id", "owner", "deleted", "createdAt",'
                ' "deletedAt") VALUES (?, ?, 1, ?, ?) ON CONFLICT ("thread_id") DO UPDATE SET '
                '"deleted" = 1, "deletedAt" = excluded."deletedAt"',
                (thread_id, owner, _now(), _now()),
            )


async def admit(
    owners: ThreadOwners,
    thread_id: str,
    owner: str,
    *,
    has_memory: Callable[[str], Awaitable[bool]],
) -> Verdict:
    """Whether ``owner`` may run a turn on ``thread_id``; a new id is claimed for ``owner``.

    An id with graph memory but no recorded owner is memory whose chat was deleted before this
    table existed (live chats were adopted when it was created): it is refused for good.
    """
    known = await asyncio.to_thread(owners.get, thread_id)
    if known is None and await has_memory(thread_id):
        await asyncio.to_thread(owners.tombstone, thread_id)
        return "deleted"
    return await asyncio.to_thread(owners.claim, thread_id, owner)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
