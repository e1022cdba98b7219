"""The holder's wire format: length-prefixed pickles, read with an allow-list of classes.

A message is an 8-byte big-endian length and a pickle. ``loads`` accepts the index's own
classes, numpy arrays and the standard containers only; peers are checked (``peer_uid``) before
anything is read. Errors travel as (type, args, attributes) and are rebuilt as the same type.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import socket
import struct
from typing import Any

from vistarag.agent.errors import VistaRAGError

MAX_FRAME = 1 << 31
_HEADER = struct.Struct("!Q")
_ROOTS = {"vistarag", "numpy", "builtins", "collections", "uuid", "datetime", "decimal",
          "pathlib", "qdrant_edge"}
_REDUCERS = {
    ("copyreg", "_reconstructor"), ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class IndexRequestRefused(VistaRAGError):
    """The holder refused a request that is not an index call."""


class SafeUnpickler(pickle.Unpickler):
    """Classes from the index's own modules, numpy and the standard containers only."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _REDUCERS:
            return super().find_class(module, name)
        if module.split(".")[0] in _ROOTS and "." not in name:  # no os.system via a module
            found = super().find_class(module, name)
            if isinstance(found, type) and found.__module__.split(".")[0] in _ROOTS:
                return found
        raise pickle.UnpicklingError(f"{module}.{name} may not travel to or from the index")


def loads(data: bytes | bytearray) -> Any:
    return SafeUnpickler(io.BytesIO(data)).load()


def dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=5)


def send(sock: socket.socket, data: bytes) -> None:
    if len(data) < 65536:
        sock.sendall(_HEADER.pack(len(data)) + data)
    else:
        sock.sendall(_HEADER.pack(len(data)))
        sock.sendall(data)


def _recv_exact(sock: socket.socket, size: int) -> bytearray:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise EOFError("the other end closed the connection")
        got += n
    return buf


def recv(sock: socket.socket) -> bytearray:
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if size > MAX_FRAME:
        raise EOFError(f"a message of {size} bytes is over the limit")
    return _recv_exact(sock, size)


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end (Linux ``SO_PEERCRED``); None if unknown."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", raw)[1]


def error_reply(exc: BaseException) -> bytes:
    """The exception's type, args and attributes; a RuntimeError when they cannot travel."""
    kind = type(exc)
    if kind.__module__.split(".")[0] in _ROOTS:
        with contextlib.suppress(Exception):
            data = dumps(("err", kind, exc.args, dict(getattr(exc, "__dict__", {}))))
            loads(data)  # the client must be able to read it back
            return data
    fallback = VistaRAGError if isinstance(exc, VistaRAGError) else RuntimeError
    return dumps(("err", fallback, (f"{kind.__name__}: {exc}",), {}))


def raise_error(kind: Any, args: tuple, state: dict) -> None:
    if not (isinstance(kind, type) and issubclass(kind, Exception)):
        raise RuntimeError(f"the index holder sent an error of an unknown kind: {args!r}")
    try:
        exc = kind.__new__(kind, *args)
        exc.args = tuple(args)
        exc.__dict__.update(state)
    except Exception:  # noqa: BLE001 - a type that cannot be rebuilt: keep its message
        exc = RuntimeError(f"{kind.__name__}: {' '.join(map(str, args))}")
    raise exc
