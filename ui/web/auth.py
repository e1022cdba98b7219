"""Password login: PBKDF2-SHA256 hashes (stdlib), users from ``VISTARAG_UI_USERS`` and the
users file (``<data dir>/ui/users``, written by ``vistarag ui add-user``).

A hash reads ``pbkdf2_sha256$<iterations>$<salt hex>$<digest hex>``; plain-text passwords are never
stored or accepted in settings. ``vistarag ui hash-password`` prints one. A login for an unknown
name is checked against a dummy hash of the same cost, so timing does not tell which names exist.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import cache
from pathlib import Path

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


@cache
def _dummy_hash(iterations: int) -> str:
    return hash_password(secrets.token_hex(16), iterations=iterations)


def _iterations(encoded: str) -> int:
    try:
        return int(encoded.split("$")[1])
    except (IndexError, ValueError):
        return ITERATIONS


def check_login(users: dict[str, str], name: str, password: str) -> bool:
    """True when ``name`` is a user whose hash ``password`` matches.

    An unknown name costs the same PBKDF2 work as a known one (a dummy hash with the users' own
    iteration count), so the answer time does not tell which names exist.
    """
    encoded = users.get(name)
    cost = max((_iterations(h) for h in users.values()), default=ITERATIONS)
    ok = verify_password(password, encoded if encoded is not None else _dummy_hash(cost))
    return ok and encoded is not None


def parse_users(spec: str, origin: str = "VISTARAG_UI_USERS") -> dict[str, str]:
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
            raise VistaRAGError(
                f"{origin}: {entry[:40]!r} is not NAME:HASH; add users with "
                "`vistarag ui add-user NAME`"
            )
        encoded = encoded.strip()
        if not encoded.startswith(SCHEME + "$") or encoded.count("$") != 3:
            raise VistaRAGError(
                f"{origin}: the password of {name!r} is not a {SCHEME} hash (a `$` expanded "
                "by the shell? quote the value in single quotes); make one with "
                "`vistarag ui add-user NAME` or `vistarag ui hash-password NAME`"
            )
        users[name] = encoded
    return users


def read_users_file(path: Path) -> dict[str, str]:
    """The users in ``path`` (one ``NAME:HASH`` a line; ``#`` comments); none if it is missing."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise VistaRAGError(f"{path}: cannot read the users file ({exc.strerror or exc})") from None
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return parse_users("\n".join(lines), origin=str(path))


def add_user(path: Path, name: str, password: str, iterations: int = ITERATIONS) -> None:
    """Add (or replace) ``name`` in the users file ``path``, kept readable by its owner only."""
    name = name.strip()
    if not name or any(c in name for c in ":,;\n\r\t "):
        raise VistaRAGError(f"user name {name!r}: use letters, digits, dots, dashes, @ or _")
    users = read_users_file(path)
    users[name] = hash_password(password, iterations=iterations)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# VistaRAG chat logins (NAME:HASH); edit with `vistarag ui add-user NAME`\n")
        f.writelines(f"{user}:{encoded}\n" for user, encoded in users.items())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
