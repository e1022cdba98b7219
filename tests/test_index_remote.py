"""One process holds the embedded index and serves it; the user's other processes go through it.

Real processes, real sockets, real Qdrant Edge: a holder script (or this test process) serves,
``vistarag`` subprocesses ingest and search through it, and a holder killed with SIGKILL hands
the index to whoever asks next.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_cli import text_pdf
from tests.test_index_backends import corpus
from vistarag.agent.errors import IngestError, KnowledgeBaseNotFound, StoreBusyError, VistaRAGError
from vistarag.agent.index import (
    FusedQuery,
    KnowledgeBase,
    QueryVectors,
    SearchFilters,
    close_all,
    field_filter,
    get_backend,
    wire,
)
from vistarag.agent.index import remote as rm
from vistarag.agent.index.backend import CollectionSpec
from vistarag.agent.index.edge import EdgeBackend
from vistarag.agent.index.holder import read_holder
from vistarag.agent.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "vistarag.ui.cli"]

HOLDER = """
import json, sys
from vistarag.agent.engine import Engine
from vistarag.agent.index import KnowledgeBase, get_backend
from vistarag.agent.settings import Settings
from tests.test_index_backends import RECORD, corpus

settings = Settings(home=sys.argv[1], joint_model="none", _env_file=None)
backend = get_backend(settings)
if len(sys.argv) > 2:  # a knowledge base of synthetic points
    kb = KnowledgeBase(settings, sys.argv[2], backend)
    kb.ensure(RECORD, owner="alice")
    kb.upsert(corpus(int(sys.argv[3])), batch=500)
print("ready", type(backend).__name__, flush=True)
for line in sys.stdin:  # "search KB TEXT": the holder's own search
    _, kb, text = line.rstrip("\\n").split(" ", 2)
    engine = Engine(Settings(home=sys.argv[1], joint_model="none", kb=kb, _env_file=None))
    print(json.dumps([h.source for h in engine.find(text, k=3)]), flush=True)
"""


def start_holder(home: Path, *args: str) -> subprocess.Popen[str]:
    """A process that opens the index (and serves it) and answers searches on stdin."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home), *args], cwd=REPO, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready"):
        proc.kill()
        raise AssertionError(f"holder did not start: {line} {proc.communicate()[1]}")
    assert line.split()[1] == "EdgeBackend"
    return proc


def vistarag(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VISTARAG_HOME": str(home), "VISTARAG_JOINT_MODEL": "none",
           "COLUMNS": "200"}
    return subprocess.run([*CLI, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.communicate()


# ---- real processes ----------------------------------------------------------------------------
def test_cli_ingest_and_search_go_through_the_holder_then_take_over(tmp_path: Path) -> None:
    home = tmp_path / "home"
    text_pdf(tmp_path / "memo.pdf", "The quarterly offsite moves to Lisbon in March.")
    holder = start_holder(home)
    try:
        added = vistarag(home, "ingest", str(tmp_path / "memo.pdf"), "--kb", "shared")
        assert added.returncode == 0, added.stderr
        assert "Traceback" not in added.stderr
        found = vistarag(home, "search", "offsite Lisbon", "--kb", "shared", "--json")
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)[0]["source"].endswith("memo.pdf")
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write("search shared offsite Lisbon\n")  # the holder sees the commit
        holder.stdin.flush()
        assert json.loads(holder.stdout.readline())[0].endswith("memo.pdf")
        status = vistarag(home, "status", "--json")
        assert status.returncode == 0, status.stderr
        info = json.loads(status.stdout)
        assert info["held_by"]["pid"] == holder.pid and "-c" in info["held_by"]["command"]
        assert f"pid {holder.pid}" in info["index"]
        assert info["knowledge_bases"][0]["points"] >= 1

        holder.send_signal(signal.SIGKILL)  # mid-session: the next command takes the index
        holder.wait()
        again = vistarag(home, "search", "offsite Lisbon", "--kb", "shared", "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)[0]["source"].endswith("memo.pdf")
        assert "Traceback" not in again.stderr
    finally:
        stop(holder)


def test_a_client_takes_the_index_when_its_holder_is_killed(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", joint_model="none", _env_file=None)
    holder = start_holder(settings.home, "failover", "400")
    try:
        backend = get_backend(settings)  # this process goes through the holder
        assert isinstance(backend, rm.RemoteBackend)
        assert backend.kind == f"edge via pid {holder.pid}" and f"pid {holder.pid}" in (
            backend.location)
        kb = KnowledgeBase(settings, "failover")
        assert kb.count() == 400
        with kb.lock:  # the knowledge base's lock still spans processes through the remote path
            kb.upsert(fresh(10))
        assert kb.count() == 410
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert kb.count() == 410  # no traceback: this process holds the index now
        assert backend.holder is None and backend.kind == "edge"
        info = read_holder(settings.qdrant_dir / "edge")
        assert info.pid == os.getpid() and info.socket  # and serves it in turn
        listed = vistarag(settings.home, "kb", "list")
        assert listed.returncode == 0, listed.stderr
        assert "failover" in listed.stdout + listed.stderr
    finally:
        stop(holder)
        close_all()
    assert not (settings.qdrant_dir / "edge" / rm.SOCKET_NAME).exists()


def test_a_client_moves_to_the_next_holder(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", joint_model="none", _env_file=None)
    first = start_holder(settings.home, "moving", "50")
    second = None
    try:
        kb = KnowledgeBase(settings, "moving")
        assert kb.count() == 50 and kb.backend.holder.pid == first.pid
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = start_holder(settings.home)  # another process took the index meanwhile
        assert kb.count() == 50  # the next call finds it and goes through it
        assert kb.backend.holder.pid == second.pid and f"pid {second.pid}" in kb.backend.kind
    finally:
        for proc in (first, second):
            if proc is not None:
                stop(proc)
        close_all()


ENSURE = """
import sys
from vistarag.agent.index import KnowledgeBase
from vistarag.agent.settings import Settings
from tests.test_index_backends import RECORD

kb = KnowledgeBase(Settings(home=sys.argv[1], joint_model="none", _env_file=None), "race")
assert type(kb.backend).__name__ == "RemoteBackend"
sys.stdin.readline()  # both start together
kb.ensure(RECORD, owner=sys.argv[2])
print(kb.physical(), flush=True)
"""


def test_two_clients_creating_one_knowledge_base_make_one_collection(tmp_path: Path) -> None:
    """The knowledge base's lock (``path_lock``) spans processes through the holder too."""
    settings = Settings(home=tmp_path / "home", joint_model="none", _env_file=None)
    holder = start_holder(settings.home)
    clients = [subprocess.Popen([sys.executable, "-c", ENSURE, str(settings.home), owner],
                                cwd=REPO, text=True, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for owner in ("alice", "bob")]
    try:
        time.sleep(3)  # both connected (or still importing: either way they race below)
        for client in clients:
            assert client.stdin is not None
            client.stdin.write("go\n")
            client.stdin.flush()
        made = [client.communicate(timeout=300) for client in clients]
        assert all(c.returncode == 0 for c in clients), made
        assert made[0][0] == made[1][0]  # the same physical collection
        stop(holder)
        kb = KnowledgeBase(settings, "race")
        assert len(kb.builds()) == 1 and set(kb.metadata()["owners"]) == {"alice", "bob"}
    finally:
        stop(holder)
        close_all()


def fresh(n: int) -> list:
    """``n`` points with ids no other test corpus uses."""
    points = corpus(n, seed=3)
    for i, p in enumerate(points):
        p.id = p.id[:-8] + f"{90_000_000 + i:08d}"
    return points


# ---- the protocol, in one process --------------------------------------------------------------
@pytest.fixture
def pair(tmp_path: Path):
    """(local, remote): the index held and served here, and a client of that server."""
    folder = tmp_path / "index"
    local = rm.open_embedded(folder)
    client = rm.open_embedded(folder)  # a second flock from this process is refused: it connects
    assert isinstance(local, EdgeBackend) and isinstance(client, rm.RemoteBackend)
    yield local, client
    client.close()
    rm.stop_serving(local)
    local.close()


def test_every_index_method_gives_the_same_answer_through_the_holder(pair) -> None:
    local, client = pair
    spec = CollectionSpec(dense={"text": 24, "joint": 12}, sparse=("lexical",),
                          metadata={"state": "ready"})
    assert client.create_collection("c1", spec) is True
    assert client.create_collection("c1", spec) is False
    assert client.list_collections() == local.list_collections() == ["c1"]
    assert client.collection_exists("c1") and not client.collection_exists("c2")
    client.update_metadata("c1", {"owners": ["alice"]})
    assert client.metadata("c1") == local.metadata("c1") == {"state": "ready", "owners": ["alice"]}
    assert client.vector_names("c1") == {"text", "joint", "lexical"}
    client.set_alias("a1", "c1")
    assert client.aliases() == local.aliases() == {"a1": "c1"}
    points = corpus(120)
    client.upsert("c1", points)
    assert client.count("c1") == local.count("c1") == 120
    client.set_payload("c1", [points[0].id], {"title": "set remotely"})
    assert local.retrieve("c1", [points[0].id])[0].payload["title"] == "set remotely"
    assert client.retrieve("c1", [points[1].id], True) == local.retrieve("c1", [points[1].id], True)
    flt = field_filter(owner="alice")
    assert client.count("c1", flt) == local.count("c1", flt)
    assert client.scroll("c1", flt, ["doc_id"], 7) == local.scroll("c1", flt, ["doc_id"], 7)
    vector = np.asarray(points[2].vectors["text"], dtype=np.float32)  # numpy travels too
    request = FusedQuery(prefetch=[("text", vector)], limit=5, depth=20, filter=flt)
    assert client.query("c1", request) == local.query("c1", request)
    request.prefetch.append(("lexical", points[2].vectors["lexical"]))  # fused: RRF may tie
    assert {p.id for p in client.query("c1", request)[:2]} == {
        p.id for p in local.query("c1", request)[:2]}
    assert client.optimize("c1") is True  # the holder builds HNSW and says so
    assert client.index_state("c1") == local.index_state("c1")
    client.delete("c1", field_filter(doc_id="d1"))
    assert local.count("c1", field_filter(doc_id="d1")) == 0
    client.delete_alias("a1")
    assert local.aliases() == {}
    client.delete_collection("c1")
    assert local.list_collections() == []


def test_errors_come_back_as_the_same_types_and_messages(pair) -> None:
    local, client = pair
    for call in (lambda b: b.metadata("bad/name"), lambda b: b.count("missing")):
        with pytest.raises(VistaRAGError) as here:
            call(local)
        with pytest.raises(VistaRAGError) as there:
            call(client)
        assert type(there.value) is type(here.value) and str(there.value) == str(here.value)
    with pytest.raises(TypeError):
        client.count()  # a wrong call is the caller's TypeError, raised by the holder
    original = IngestError("/data/a.pdf", "not a PDF")  # custom __init__: rebuilt, not re-run
    with pytest.raises(IngestError) as back:
        wire.raise_error(*pickle.loads(wire.error_reply(original))[1:])
    assert back.value.path == "/data/a.pdf" and str(back.value) == "/data/a.pdf: not a PDF"
    with pytest.raises(KnowledgeBaseNotFound, match="vistarag ingest"):
        wire.raise_error(*pickle.loads(wire.error_reply(KnowledgeBaseNotFound(
            "knowledge base 'x' does not exist yet: run `vistarag ingest PATH --kb x`")))[1:])


def test_unknown_methods_and_foreign_objects_are_refused(pair, tmp_path: Path) -> None:
    local, client = pair
    conn = rm.Connection(str(read_holder(local.root).socket))
    for method in ("close", "_shard", "__init__", "flush", "points"):
        with pytest.raises(rm.IndexRequestRefused, match="only index methods"):
            conn.call(method, (), {})
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    wire.send(conn.sock, pickle.dumps(("count", (Evil(),), {})))
    kind, refused, args, _ = pickle.loads(wire.recv(conn.sock))
    assert kind == "err" and refused is rm.IndexRequestRefused and "may not travel" in args[0]
    def short(text: str) -> bytes:
        return b"\x8c" + bytes([len(text.encode())]) + text.encode()

    # a foreign class reached through an allowed module: socket.socket via remote's "socket"
    sneaky = (b"\x80\x04(" + short("count") + b"(" + short("vistarag.agent.index.remote")
              + short("socket.socket") + b"\x93)Rt}t.")
    wire.send(conn.sock, sneaky)
    kind, refused, args, _ = pickle.loads(wire.recv(conn.sock))
    assert refused is rm.IndexRequestRefused and "socket.socket may not travel" in args[0]
    wire.send(conn.sock, b"not a pickle at all")
    assert pickle.loads(wire.recv(conn.sock))[1] is rm.IndexRequestRefused
    assert not marker.exists()
    assert conn.call("list_collections", (), {}) == []  # the connection still serves
    conn.close()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
def test_another_user_gets_no_answer(pair, tmp_path: Path) -> None:
    local, _ = pair
    served = Path(str(read_holder(local.root).socket))
    door = Path(tempfile.mkdtemp(prefix="vistarag-door-"))  # past the 0700 index folder
    try:
        door.chmod(0o711)
        os.link(served, door / "s")  # the same socket, reachable by another user
        served.chmod(0o666)
        probe = (
            "import socket,struct,sys\n"
            "s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1])\n"
            "try: s.sendall(struct.pack('!Q',5)+b'hello'); got=s.recv(8)\n"
            "except (BrokenPipeError, ConnectionResetError): got=b''\n"  # closed on us
            "print('CONNECTED', 'EOF' if got==b'' else 'ANSWERED')\n"
        )
        nobody = subprocess.run(["/usr/bin/python3", "-c", probe, str(door / "s")],
                                capture_output=True, text=True, timeout=60,
                                preexec_fn=lambda: os.setuid(65534))
    finally:
        shutil.rmtree(door)
    assert nobody.stdout.strip() == "CONNECTED EOF", nobody.stderr  # no hello, no answer


def test_a_long_data_dir_puts_the_socket_in_a_short_private_folder(tmp_path: Path) -> None:
    folder = tmp_path / ("x" * 60) / ("y" * 60) / "index"
    local = rm.open_embedded(folder)
    try:
        path = Path(str(read_holder(folder).socket))
        assert len(os.fsencode(str(folder / rm.SOCKET_NAME))) > rm.MAX_PATH
        assert len(os.fsencode(str(path))) <= rm.MAX_PATH and not path.is_relative_to(folder)
        assert path.parent.stat().st_mode & 0o777 == 0o700
        client = rm.open_embedded(folder)
        assert isinstance(client, rm.RemoteBackend) and client.list_collections() == []
        client.close()
    finally:
        rm.stop_serving(local)
        local.close()
    assert not path.parent.exists()


def test_a_holder_that_does_not_serve_is_named_in_one_clear_line(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    silent = EdgeBackend(folder)  # holds the index without serving it (like a bench script)
    try:
        started = time.monotonic()
        with pytest.raises(StoreBusyError, match="does not serve other processes") as busy:
            rm.open_embedded(folder)
        assert time.monotonic() - started < 3
        assert f"pid {os.getpid()}" in str(busy.value) and "QDRANT_URL" in str(busy.value)
        lock = folder / "holder.lock"  # a holder whose socket is dead: said so, not a traceback
        lock.write_text(lock.read_text() + f"socket {tmp_path / 'gone.sock'}\n")
        with pytest.raises(StoreBusyError, match="does not answer"):
            rm.open_embedded(folder)
    finally:
        silent.close()


def test_frames_over_the_limit_end_the_connection(pair) -> None:
    local, _ = pair
    conn = rm.Connection(str(read_holder(local.root).socket))
    conn.sock.sendall(struct.pack("!Q", wire.MAX_FRAME + 1))
    conn.sock.settimeout(10)
    assert conn.sock.recv(8) == b""  # closed, and the holder goes on serving others
    conn.close()
    assert rm.open_embedded(local.root).list_collections() == []


def test_query_speed_local_and_through_the_holder(tmp_path: Path) -> None:
    """p50 of 200 fused queries on 3,000 points, here and through a holder process."""
    settings = Settings(home=tmp_path / "home", joint_model="none", _env_file=None)
    holder = start_holder(settings.home, "speed", "3000")
    try:
        remote_kb = KnowledgeBase(settings, "speed")
        assert isinstance(remote_kb.backend, rm.RemoteBackend)
        remote = p50(remote_kb)
    finally:
        stop(holder)
        close_all()
    local = p50(KnowledgeBase(settings, "speed"))
    assert isinstance(get_backend(settings), EdgeBackend)
    print(f"\nquery p50 over 3,000 points: local {local:.2f} ms, through the holder "
          f"{remote:.2f} ms")
    assert remote < local + 5  # a few ms at most


def p50(kb: KnowledgeBase) -> float:
    points = corpus(20, seed=11)
    query = QueryVectors(text=[np.asarray(points[0].vectors["text"], dtype=np.float32)],
                         lexical=[points[0].vectors["lexical"]])
    flt = SearchFilters(owner="alice")
    kb.search(query, limit=10, filters=flt)
    times = []
    for i in range(200):
        query.text = [np.asarray(points[i % 20].vectors["text"], dtype=np.float32)]
        started = time.perf_counter()
        assert kb.search(query, limit=10, filters=flt)
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[100]


def test_socket_module_has_what_the_server_needs() -> None:
    assert hasattr(socket, "SO_PEERCRED") and hasattr(socket, "AF_UNIX")  # Linux CI
