"""Security fixes in the core (issue 20): owner isolation under concurrent first uploads,
blobs shared across knowledge bases, keyed document ids, symlinks, exit codes, file modes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures_media import SCREENSHOT_LINES, make_pdf, make_screenshot
from vistarag.agent.blobs import BlobStore, PageRender, sha256_file
from vistarag.agent.docid import doc_id_for, legacy_doc_id, secret_key
from vistarag.agent.engine import Engine
from vistarag.agent.index import KnowledgeBase, field_filter
from vistarag.agent.index.edge import EdgeBackend
from vistarag.agent.ingest.discover import select
from vistarag.agent.ingest.pipeline import Ingestor
from vistarag.agent.maintenance import collect_garbage_blobs
from vistarag.agent.qdrant import close_all
from vistarag.agent.search import SearchRequest
from vistarag.agent.settings import Settings

USERS = ("alice", "bob", "carol", "dave")
ROUNDS = 50
VISTARAG = Path(sys.executable).with_name("vistarag")


# ---- 1. concurrent first uploads never leak between users -------------------------------------


def _run_together(jobs: list) -> list:
    """Run the callables on threads released at once; re-raise the first failure."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = jobs[i]()
        except BaseException as exc:  # noqa: BLE001 - reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def test_concurrent_first_uploads_never_leak_and_never_get_lost(
    settings: Settings, tmp_path: Path
) -> None:
    """Many rounds: four users' first uploads into a new knowledge base at the same moment,
    then a second upload each into the now existing one; every search sees only its owner's
    points and every upload is there."""
    engine = Engine(settings)  # one engine, one model load, for every round
    files = {}
    for user in USERS:
        for n in (1, 2):
            path = tmp_path / "files" / user / f"note{n}.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"# Shared note {n}\nThe shared project note of {user}, part {n}.")
            files[user, n] = path
    engine.models.record()  # load the text model before the clock starts
    started = time.perf_counter()
    for r in range(ROUNDS):
        kb = f"race{r}"
        for n in (1, 2):  # 1: first uploads into a new base; 2: into the existing one
            jobs = [
                (lambda u=user, kb=kb, n=n: engine.ingestor(kb, owner=u).ingest_file(files[u, n]))
                for user in USERS
            ]
            results = _run_together(jobs)
            bad = [(user, res.status, res.message) for user, res in zip(USERS, results,
                                                                         strict=True)
                   if res.status != "added"]
            assert not bad, f"round {r}, upload {n}: {bad}"
        base = KnowledgeBase(settings, kb)
        assert len(base.builds()) == 1, f"round {r}: {base.builds()}"
        for user in USERS:
            hits = engine.search(SearchRequest(text="shared project note", kb=kb, owner=user,
                                               top_k=20)).hits
            owners = {h.owner for h in hits}
            assert owners == {user}, f"round {r}: {user}'s search returned {owners}"
            mine = base.count(field_filter(owner=user))
            assert mine == 2, f"round {r}: {user} has {mine} of 2 uploads"
    print(f"{ROUNDS} rounds x {len(USERS)} users x 2 uploads: "
          f"{time.perf_counter() - started:.1f} s")


def test_search_filters_by_owner_whatever_the_metadata_says(settings: Settings,
                                                             tmp_path: Path) -> None:
    """A base whose owner list names only alice (as the race left it) still holds bob's
    points: alice's search must not skip the owner filter."""
    engine = Engine(settings)
    for user in ("alice", "bob"):
        note = tmp_path / f"{user}.md"
        note.write_text(f"The shared project note of {user}.")
        assert engine.ingestor("k", owner=user).ingest_file(note).status == "added"
    base = engine.kb("k")
    base.backend.update_metadata(base.physical(), {"owners": ["alice"]})
    hits = engine.search(SearchRequest(text="shared project note", kb="k", owner="alice")).hits
    assert hits and {h.owner for h in hits} == {"alice"}


def test_the_knowledge_base_lock_holds_across_processes(tmp_path: Path) -> None:
    """Another process holding a knowledge base's lock makes this one wait (fcntl.flock)."""
    from vistarag.agent.locks import path_lock

    lock_file = tmp_path / "locks" / "kb-x.lock"
    code = ("import sys, time; from pathlib import Path; from vistarag.agent.locks import "
            "path_lock\nwith path_lock(Path(sys.argv[1])):\n    print('held', flush=True)\n"
            "    time.sleep(1.5)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(lock_file)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        started = time.perf_counter()
        with path_lock(lock_file), path_lock(lock_file):  # re-entrant within a thread
            waited = time.perf_counter() - started
    finally:
        proc.wait(timeout=30)
    assert waited > 0.8, f"took the lock after {waited:.2f} s while another process held it"
    assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600


# ---- 3. a delete in one knowledge base keeps another's blobs ----------------------------------


def _blob_refs(kb: KnowledgeBase) -> set[str]:
    return {p.payload["blob"] for p in kb.scroll(fields=["blob"]) if p.payload.get("blob")}


def test_delete_keeps_blobs_another_knowledge_base_uses(settings: Settings, tmp_path: Path):
    (tmp_path / "a").mkdir()
    shot_a = make_screenshot(tmp_path / "a" / "shot.png", SCREENSHOT_LINES)
    shot_b = tmp_path / "b" / "shot.png"
    shot_b.parent.mkdir()
    shot_b.write_bytes(shot_a.read_bytes())  # the same image: one blob, two knowledge bases
    engine = Engine(settings)
    assert engine.ingestor("a").ingest_file(shot_a).status == "added"
    assert engine.ingestor("b").ingest_file(shot_b).status == "added"
    refs = _blob_refs(engine.kb("b"))
    assert refs and refs == _blob_refs(engine.kb("a"))

    assert engine.ingestor("a").delete_source(str(shot_a.resolve())) > 0
    assert all(engine.blobs.has(ref) for ref in refs), "b's image went with a's delete"
    assert collect_garbage_blobs(engine) == 0  # garbage collection sees b's points too

    assert engine.ingestor("b").delete_source(str(shot_b.resolve())) > 0
    assert not any(engine.blobs.has(ref) for ref in refs), "nobody uses it any more"


def test_reingest_restores_missing_blobs(settings: Settings, tmp_path: Path) -> None:
    """A document whose blobs are gone (lost to the old cross-base delete) is not 'unchanged':
    re-ingesting stores its images again."""
    shot = make_screenshot(tmp_path / "shot.png", SCREENSHOT_LINES)
    engine = Engine(settings)
    engine.ingestor("b").ingest_file(shot)
    refs = _blob_refs(engine.kb("b"))
    for ref in refs:
        engine.blobs.delete(ref)
    again = engine.ingestor("b").ingest_file(shot)
    assert again.status == "replaced" and "missing" in again.message
    assert all(engine.blobs.has(ref) for ref in refs)
    assert engine.ingestor("b").ingest_file(shot).status == "unchanged"


def test_blob_check_counts_a_page_to_render_without_rendering(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "report.pdf")
    store = BlobStore(tmp_path / "blobs")
    ref = store.put_render(PageRender(str(pdf), sha256_file(pdf), 0, 72.0, None))
    assert store.has(ref)
    assert not store._file(ref).exists(), "has() must not render the page"
    assert not store.has("0" * 64 + ".jpg")


def test_garbage_collection_keeps_blobs_of_a_build_in_progress(settings: Settings,
                                                               tmp_path: Path) -> None:
    shot = make_screenshot(tmp_path / "shot.png", SCREENSHOT_LINES)
    engine = Engine(settings)
    engine.ingestor("a").ingest_file(shot)
    staging = engine.kb("c").staging(engine.models.record())  # a re-index not yet swapped in
    Ingestor(settings, engine.models, staging, engine.blobs).ingest_file(shot)
    refs = _blob_refs(staging)
    engine.ingestor("a").delete_source(str(shot.resolve()))
    assert collect_garbage_blobs(engine) == 0
    assert all(engine.blobs.has(ref) for ref in refs)


# ---- 4. keyed document ids, old ids still found; symlinks -------------------------------------


class _LegacyIngestor(Ingestor):
    """Ingests as the code before keyed ids did: the unkeyed SHA-1 id of the path."""

    def doc_id(self, source: str) -> str:
        return legacy_doc_id(source)


def test_doc_ids_are_keyed_per_data_dir(tmp_path: Path) -> None:
    key = secret_key(tmp_path / "one")
    assert secret_key(tmp_path / "one") == key and len(key) == 32
    assert stat.S_IMODE((tmp_path / "one" / "secret.key").stat().st_mode) == 0o600
    other = secret_key(tmp_path / "two")
    source = "/home/alice/report.pdf"
    assert doc_id_for(source, key) != doc_id_for(source, other)
    assert doc_id_for(source, key) != legacy_doc_id(source)
    assert doc_id_for(source, key, "alice") != doc_id_for(source, key, "bob")
    assert len(doc_id_for(source, key)) == len(legacy_doc_id(source)) == 16


def test_processes_creating_the_key_at_once_agree(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code = ("import sys; from vistarag.agent.docid import secret_key; "
            "print(secret_key(__import__('pathlib').Path(sys.argv[1])).hex())")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(home)], stdout=subprocess.PIPE,
                              text=True) for _ in range(6)]
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(keys) == 1 and keys == {secret_key(home).hex()}


def test_documents_under_the_old_unkeyed_id_are_found(settings: Settings, tmp_path: Path):
    doc = tmp_path / "old.txt"
    doc.write_text("The old warranty lasts 12 months.")
    engine = Engine(settings)
    legacy = _LegacyIngestor(settings, engine.models, engine.kb(), engine.blobs)
    assert legacy.ingest_file(doc).status == "added"
    kb = engine.kb()
    points = kb.count()

    again = engine.ingestor().ingest_file(doc)
    assert again.status == "unchanged" and again.doc_id == legacy_doc_id(str(doc.resolve()))
    assert kb.count() == points

    doc.write_text("The new warranty lasts 24 months.")
    changed = engine.ingestor().ingest_file(doc)
    assert changed.status == "replaced" and changed.doc_id != again.doc_id
    assert {p.payload["doc_id"] for p in kb.scroll(fields=["doc_id"])} == {changed.doc_id}

    # delete by path finds an old-id document too
    legacy.ingest_file(tmp_path / "old.txt")  # the same path, stored again the old way
    assert kb.count(field_filter(doc_id=legacy_doc_id(str(doc.resolve())))) > 0
    assert engine.ingestor().delete_source(str(doc.resolve())) > 0
    assert kb.count() == 0


def test_cli_delete_finds_an_old_id_document(settings: Settings, tmp_path: Path) -> None:
    doc = tmp_path / "old.txt"
    doc.write_text("The old warranty lasts 12 months.")
    engine = Engine(settings)
    _LegacyIngestor(settings, engine.models, engine.kb(), engine.blobs).ingest_file(doc)
    close_all()  # the CLI process opens the index itself
    proc = _cli(settings.home, "delete", str(doc))
    assert proc.returncode == 0, proc.stderr
    assert "removed 1 point" in proc.stderr


def test_folder_walk_skips_symlinks_pointing_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("not for the knowledge base")
    (outside / "dir").mkdir()
    (outside / "dir" / "more.txt").write_text("nor this")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "inner.txt").symlink_to(folder / "a.txt")  # stays inside: fine
    (folder / "leak.txt").symlink_to(secret)
    (folder / "leakdir").symlink_to(outside / "dir")

    sel = select([folder])
    assert sorted(p.name for p in sel.files) == ["a.txt", "inner.txt"]
    skipped = {p.name: reason for p, reason in sel.skipped}
    assert set(skipped) == {"leak.txt", "leakdir"}
    assert "outside the folders given" in skipped["leak.txt"]
    assert str(secret.resolve()) in skipped["leak.txt"]

    # named directly, a symlink is the user's choice; a second folder given makes it inside
    assert select([folder / "leak.txt"]).files == [folder / "leak.txt"]
    both = select([folder, outside])
    assert folder / "leak.txt" in both.files and not both.skipped


# ---- 5. refused commands exit 2 quickly, never abort; private modes ----------------------------


def _cli(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VISTARAG_HOME": str(home), "VISTARAG_JOINT_MODEL": "none"}
    return subprocess.run([str(VISTARAG), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.mark.skipif(not VISTARAG.exists(), reason="the vistarag entry point is not installed")
def test_search_in_a_missing_knowledge_base_exits_2(settings: Settings, tmp_path: Path):
    doc = tmp_path / "a.txt"
    doc.write_text("The blue whale is the largest animal.")
    Engine(settings).ingestor("real").ingest_file(doc)
    close_all()
    for _ in range(4):
        proc = _cli(settings.home, "search", "whale", "--kb", "nosuch")
        assert proc.returncode == 2, (proc.returncode, proc.stderr)
        assert "no knowledge base 'nosuch'" in proc.stderr
        assert "terminate called" not in proc.stderr


@pytest.mark.skipif(not VISTARAG.exists(), reason="the vistarag entry point is not installed")
def test_search_on_a_locked_index_exits_2_before_loading_a_model(
    settings: Settings, tmp_path: Path
) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text("The blue whale is the largest animal.")
    Engine(settings).ingestor("real").ingest_file(doc)
    close_all()
    silent = EdgeBackend(settings.qdrant_dir / "edge")  # holds the index, serves nobody
    code = ("import sys, runpy; sys.argv = ['vistarag', 'search', 'whale', '--kb', 'real']\n"
            "try:\n    runpy.run_module('vistarag.ui.cli', run_name='__main__')\n"
            "finally:\n    print('LOADED' if 'onnxruntime' in sys.modules else 'NOT-LOADED',"
            " file=sys.stderr)\n")
    env = {**os.environ, "VISTARAG_HOME": str(settings.home), "VISTARAG_JOINT_MODEL": "none"}
    for _ in range(3):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, timeout=120)
        assert proc.returncode == 2, (proc.returncode, proc.stderr)
        assert "open in another process" in proc.stderr
        assert "NOT-LOADED" in proc.stderr, "a model started loading before the refusal"
    silent.close()


def test_data_dir_is_private(settings: Settings, tmp_path: Path) -> None:
    from vistarag.graphs.builder import default_checkpointer

    shot = make_screenshot(tmp_path / "shot.png", SCREENSHOT_LINES)
    engine = Engine(settings)
    assert engine.ingestor().ingest_file(shot).status == "added"
    saver = default_checkpointer(settings.model_copy(update={"checkpointer": "sqlite"}))
    saver.conn.close()
    home = settings.home
    checked = 0
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        want = 0o700 if path.is_dir() else 0o600
        assert mode == want, f"{path}: {oct(mode)}, want {oct(want)}"
        checked += 1
    names = {p.name for p in home.rglob("*")}
    assert {"checkpoints.sqlite", "secret.key", "blobs", "qdrant", "vistarag.json"} <= names
    assert checked > 8
