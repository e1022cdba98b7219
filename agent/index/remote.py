"""The process that holds the embedded index serves it to the user's other processes.

Qdrant Edge opens a shard from one process only. The holder (``holder``) therefore listens on
a Unix-domain socket inside the owner-only (0700) index folder, or, when that path is longer
than ``AF_UNIX`` allows, in a fresh 0700 folder under the temp dir; ``holder.lock`` names it.
Another process of the same user connects and gets a ``RemoteBackend``: every ``IndexBackend``
method, run by the holder. Messages (``wire``) are length-prefixed pickles, accepted only
from a peer whose uid (``SO_PEERCRED``) is this process's own, and unpickled with an allow-list
of classes; only ``IndexBackend`` method names are callable. Errors come back as the same types
with the same messages. When the holder goes away, a client's next call takes the index itself (and
serves it) or connects to the new holder.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from vistarag.agent.errors import StoreBusyError
from vistarag.agent.index import holder, wire
from vistarag.agent.index.backend import IndexBackend

SOCKET_NAME = "holder.sock"
MAX_PATH = 107  # AF_UNIX sun_path is 108 bytes on Linux, with its closing NUL
PROTOCOL = 1
STOP_WAIT = 10.0  # seconds a stopping holder lets other processes' calls finish
METHODS = frozenset(
    name for name, value in vars(IndexBackend).items()
    if callable(value) and not name.startswith("_") and name != "close"
)
IndexRequestRefused = wire.IndexRequestRefused


class _Lost(Exception):
    """The connection to the holder broke (it exited, or stopped serving)."""


# ---- the holder's side -------------------------------------------------------------------------
def socket_path(folder: Path) -> tuple[Path, Path | None]:
    """Where to listen: ``<folder>/holder.sock``, or a short path in a new 0700 temp folder
    (returned second, to remove on stop) when that is longer than ``AF_UNIX`` allows."""
    path = Path(folder).absolute() / SOCKET_NAME
    if len(os.fsencode(str(path))) <= MAX_PATH:
        return path, None
    for base in (None, "/tmp"):
        short = Path(tempfile.mkdtemp(prefix="vistarag-", dir=base))  # mkdtemp makes it 0700
        if len(os.fsencode(str(short / "index.sock"))) <= MAX_PATH:
            return short / "index.sock", short
        short.rmdir()
    raise OSError(f"no socket path under {MAX_PATH} bytes for {folder}: set TMPDIR shorter")


class Server:
    """Serves ``backend`` on a Unix socket: a thread that accepts, a thread per connection."""

    def __init__(self, backend: IndexBackend, folder: Path) -> None:
        self.backend = backend
        self.folder = Path(folder)
        self.path, self._tmpdir = socket_path(self.folder)
        self._state = threading.Condition()  # guards _stopped and _busy (calls in progress)
        self._stopped = False
        self._busy = 0
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self.hello = wire.dumps(("hello", {
            "protocol": PROTOCOL, "pid": os.getpid(), "command": holder.command_line(),
            "location": str(getattr(backend, "location", folder)),
        }))

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a holder that was killed: we hold the lock now
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(old)
        listener.listen(32)
        self._listener = listener
        threading.Thread(target=self._accept, name="vistarag-index-server", daemon=True).start()

    def _accept(self) -> None:
        listener = self._listener
        while listener is not None and not self._stopped:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name="vistarag-index-client").start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if wire.peer_uid(conn) != os.getuid():
                    return  # another user (or unknown): not a word
            except OSError:
                return
            with self._conns_lock:
                if self._stopped:
                    return
                self._conns.add(conn)
            try:
                wire.send(conn, self.hello)
                while True:
                    reply = self._answer(wire.recv(conn))
                    if reply is None:
                        return  # stopping: the client takes over or finds the next holder
                    wire.send(conn, reply)
            except (OSError, EOFError):
                return
            finally:
                with self._conns_lock:
                    self._conns.discard(conn)

    def _answer(self, data: bytearray) -> bytes | None:
        try:
            method, args, kwargs = wire.loads(data)
            if (method not in METHODS or not isinstance(args, tuple)
                    or not isinstance(kwargs, dict)):
                raise IndexRequestRefused(
                    f"the index holder (pid {os.getpid()}) refuses {str(method)[:80]!r}: only "
                    f"index methods are served ({', '.join(sorted(METHODS))})"
                )
        except Exception as exc:  # noqa: BLE001 - any malformed request is refused, not fatal
            if not isinstance(exc, IndexRequestRefused):
                exc = IndexRequestRefused(
                    f"the index holder (pid {os.getpid()}) refuses a malformed request ({exc})")
            return wire.error_reply(exc)
        with self._state:
            if self._stopped:
                return None
            self._busy += 1
        try:
            result = getattr(self.backend, method)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every error goes back to the caller
            return wire.error_reply(exc)
        finally:
            with self._state:
                self._busy -= 1
                self._state.notify_all()
        try:
            return wire.dumps(("ok", result))
        except Exception as exc:  # noqa: BLE001
            return wire.error_reply(exc)

    def stop(self, wait: bool = True) -> None:
        """Stop listening and drop connections (their clients move on, see ``RemoteBackend``);
        with ``wait``, let calls in progress end first (``STOP_WAIT`` seconds at most)."""
        with self._state:
            self._stopped = True
        holder.announce(self.folder, None, None)
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
            listener.close()
        with self._conns_lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._conns.clear()
        if wait:
            with self._state:
                self._state.wait_for(lambda: self._busy == 0, timeout=STOP_WAIT)
        with contextlib.suppress(OSError):
            self.path.unlink()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)


_servers: dict[int, Server] = {}


def serve(backend: IndexBackend, folder: Path) -> Server | None:
    """Serve the backend this process holds in ``folder``; None where that cannot be done
    (no ``SO_PEERCRED``: peers could not be checked), and the holder just keeps it."""
    if not hasattr(socket, "AF_UNIX") or not hasattr(socket, "SO_PEERCRED"):
        holder.announce(folder, None, None)
        return None
    server = Server(backend, folder)
    try:
        server.start()
    except OSError:
        holder.announce(folder, None, None)
        return None
    _servers[id(backend)] = server
    holder.announce(folder, str(server.path), lambda: server.stop(wait=False))
    return server


def stop_serving(backend: Any) -> None:
    """Stop the server of ``backend`` (before closing it), if it has one."""
    server = _servers.pop(id(backend), None)
    if server is not None:
        server.stop()


# ---- the other processes' side -----------------------------------------------------------------
class Connection:
    """One socket to the holder; ``call`` raises ``_Lost`` when the holder is gone."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(path)
            if wire.peer_uid(sock) != os.getuid():
                raise ConnectionRefusedError(f"{path} is served by another user")
            kind, hello = wire.loads(wire.recv(sock))
            if kind != "hello" or hello.get("protocol") != PROTOCOL:
                raise ConnectionRefusedError(f"{path} speaks another protocol")
            sock.settimeout(None)  # an optimize may take minutes
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.hello: dict[str, Any] = hello

    def call(self, method: str, args: tuple, kwargs: dict) -> Any:
        try:
            wire.send(self.sock, wire.dumps((method, args, kwargs)))
            reply = wire.loads(wire.recv(self.sock))
        except (OSError, EOFError) as exc:
            raise _Lost(str(exc)) from exc
        if reply[0] == "ok":
            return reply[1]
        wire.raise_error(*reply[1:])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _hold_and_serve(folder: Path) -> IndexBackend:
    from vistarag.agent.index.edge import EdgeBackend

    with holder.will_serve():
        backend = EdgeBackend(folder)
    serve(backend, folder)
    return backend


def attach(folder: Path, patience: float = 0.3) -> IndexBackend | Connection:
    """Take the index (and serve it), or connect to the process that serves it.

    Raises ``StoreBusyError`` naming the holder when it does not serve, or its socket does not
    answer for ``patience`` seconds (a holder that is starting to serve gets a few seconds).
    """
    start = time.monotonic()
    while True:
        try:
            return _hold_and_serve(folder)
        except StoreBusyError:
            info = holder.read_holder(folder)
        if info.socket and info.socket != holder.PENDING:
            try:
                return Connection(info.socket)
            except (OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
                why = f"; its socket {info.socket} does not answer ({exc})"
        elif info.socket == holder.PENDING:
            why = "; it is not serving other processes yet"
        else:
            why = " and does not serve other processes"
        waited = time.monotonic() - start
        if waited > (max(patience, 5.0) if info.socket == holder.PENDING else patience):
            raise StoreBusyError(holder.busy_message(folder, info.line, why))
        time.sleep(0.05)


def open_embedded(folder: Path) -> IndexBackend:
    """The embedded index in ``folder``: held (and served) here, or through its holder."""
    found = attach(Path(folder))
    if isinstance(found, Connection):
        return RemoteBackend(Path(folder), found)
    return found


class RemoteBackend:
    """``IndexBackend`` run by the process that holds the index (its methods are added below
    from ``METHODS``). When the holder goes away, the next call takes the index here (and
    serves it) or connects to the new holder; that call is sent once more."""

    def __init__(self, folder: Path, conn: Connection) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._local: IndexBackend | None = None
        self._pid = os.getpid()
        self._use(conn)

    def _use(self, found: IndexBackend | Connection) -> None:
        if isinstance(found, Connection):
            self._conn, self._local = found, None
            pid, command = found.hello.get("pid"), found.hello.get("command") or "?"
            self.holder: holder.HolderInfo | None = holder.HolderInfo(
                f"pid {pid}: {command}", pid, command, None)
            self.kind = f"edge via pid {pid}"
            self.location = f"{found.hello.get('location')} via pid {pid} ({command})"
        else:
            self._conn, self._local, self.holder = None, found, None
            self.kind, self.location = found.kind, found.location

    def _call(self, method: str, args: tuple, kwargs: dict) -> Any:
        lost = ""
        for _ in range(3):
            with self._lock:
                if self._conn is not None and self._pid != os.getpid():
                    self._conn = None  # a forked child: its own connection
                    self._pid = os.getpid()
                if self._conn is None and self._local is None:
                    self._use(attach(self.folder, patience=10.0))
                local, conn = self._local, self._conn
                if conn is not None:
                    try:
                        return conn.call(method, args, kwargs)
                    except _Lost as exc:
                        conn.close()
                        self._conn, lost = None, str(exc)
                        continue
            return getattr(local, method)(*args, **kwargs)
        raise StoreBusyError(
            f"lost the connection to the process holding the index in {self.folder} ({lost}); "
            "run the command again"
        )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._local is not None:
                stop_serving(self._local)
                self._local.close()
                self._local = None


def _forwarder(method: str) -> Any:
    def call(self: RemoteBackend, *args: Any, **kwargs: Any) -> Any:
        return self._call(method, args, kwargs)

    call.__name__ = call.__qualname__ = method
    call.__doc__ = f"``IndexBackend.{method}``, run by the holder."
    return call


for _method in METHODS:
    setattr(RemoteBackend, _method, _forwarder(_method))
