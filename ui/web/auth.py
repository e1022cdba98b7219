"""Password login: PBKDF2-SHA256 hashes (stdlib), users from ``VISTARAG_UI_USERS``.

A hash reads ``pbkdf2_sha256$<iterations>$<salt hex>$<digest hex>``; plain-text passwords are never
stored or accepted in settings. ``vistarag ui hash-password`` prints one.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from vistarag.agent.errors import VistaRAGError

SCHEME = "pbkdf2_sha256"
ITERATIONS = 600_000


def hash_password(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """A salted PBKDF2-SHA256 hash of ``password``."""
    if not password:
        raise VistaRAGError("the password is empty")
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"{SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded`` (constant-time comparison)."""
    try:
        scheme, iterations, salt, digest = encoded.split("$")
        if scheme != SCHEME:
            return False
        candidate = hashlib.pbkdf2_hmac(
            "sha256", password.encode("utf-8"), bytes.fromhex(salt), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(candidate.hex(), digest)


def parse_users(spec: str) -> dict[str, str]:
    """``"alice:pbkdf2_sha256$...,bob:pbkdf2_sha256$..."`` -> ``{name: hash}``.

    Entries are separated by commas, semicolons or newlines. An entry whose secret is not a
    PBKDF2 hash is refused with a message naming the user, so a plain password never works.
    """
    users: dict[str, str] = {}
    for raw in spec.replace(";", ",").replace("\n", ",").split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, encoded = entry.partition(":")
        name = name.strip()
        if not sep or not name:
            raise VistaRAGError(f"VISTARAG_UI_USERS: {entry[:40]!r} is not NAME:HASH")
        if not encoded.startswith(SCHEME + "$") or encoded.count("$") != 3:
            raise VistaRAGError(
                f"VISTARAG_UI_USERS: the password of {name!r} is not a {SCHEME} hash; "
                "make one with `vistarag ui hash-password`"
            )
        users[name] = encoded.strip()
    return users
