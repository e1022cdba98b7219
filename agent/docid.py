"""Document ids keyed by a secret of the data dir, so nobody can derive one from a path.

``doc_id_for(source, key, owner)`` is ``"d"`` + 15 hex of HMAC-SHA256(key, owner + source), so
two users' uploads of one name are two documents (neither replaces the other). The key is 32
random bytes in ``<home>/secret.key`` (0600), made once; two processes creating it at once
agree on one (it is written aside and hard-linked into place, which fails if it exists).
Knowledge bases built before keyed ids used ``legacy_doc_id`` (SHA-1 of the path); ingestion
and deletion look up both.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path

from vistarag.agent.errors import VistaRAGError
from vistarag.agent.settings import private_dir, private_file

KEY_FILE = "secret.key"
KEY_BYTES = 32
_keys: dict[str, bytes] = {}
_lock = threading.Lock()


def doc_id_for(source: str, key: bytes, owner: str = "") -> str:
    """The id of ``owner``'s document from ``source`` (a resolved path or an upload's name)."""
    message = f"{owner}\0{source}".encode()
    return "d" + hmac.new(key, message, hashlib.sha256).hexdigest()[:15]


def legacy_doc_id(source: str) -> str:
    """The unkeyed id knowledge bases built before keyed ids hold (SHA-1 of the source)."""
    return "d" + hashlib.sha1(source.encode("utf-8")).hexdigest()[:15]


def secret_key(home: Path) -> bytes:
    """The data dir's document-id key, created (0600) on first use."""
    path = Path(home).absolute() / KEY_FILE
    with _lock:
        key = _keys.get(str(path))
        if key is None:
            key = _keys[str(path)] = _read_or_create(path)
        return key


def _read_or_create(path: Path) -> bytes:
    if not path.exists():
        private_dir(path.parent)
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(KEY_BYTES))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # atomic create-if-absent: the first process's key wins
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links: exclusive create instead
                _create_exclusive(path, tmp.read_bytes())
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise VistaRAGError(
            f"{path} is damaged ({len(key)} bytes, expected {KEY_BYTES}): restore it from a "
            "backup; deleting it makes every document get a new id (re-ingest them after)"
        )
    private_file(path)
    return key



def _create_exclusive(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file (0600); nothing when the file already exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as f:
        f.write(data)
