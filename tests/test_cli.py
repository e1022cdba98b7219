"""The ``vistarag`` command line, through typer's CliRunner, on real files and models."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pymupdf
import pytest
from typer.testing import CliRunner

from tests.fixtures_media import make_pdf, make_screenshot
from vistarag.agent.blobs import BlobStore
from vistarag.agent.qdrant import close_all
from vistarag.ui.cli import app
from vistarag.ui.cli_progress import PagesDone, reading_line

PUBLIC_KEYS = {
    "id",
    "doc",  # document metadata (title, company, form, year) when known
    "modalities",  # every modality that matched this piece of evidence
    "score",
    "modality",
    "doc_id",
    "source",
    "page",
    "bbox",
    "t_start",
    "t_end",
    "text",
    "blob",
}
SCREEN_LINES = [
    "Network Settings",
    "Proxy server: proxy.internal:3128",
    "Error code QX-4471: certificate expired",
]


def text_pdf(path: Path, text: str) -> Path:
    doc = pymupdf.open()
    doc.new_page().insert_textbox(pymupdf.Rect(72, 72, 540, 300), text, fontsize=12)
    doc.save(path)
    doc.close()
    return path


class Cli:
    """Runs ``vistarag`` with its data dir in a temp folder and no joint model."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.runner = CliRunner()
        self.env = {
            "VISTARAG_HOME": str(home),
            "VISTARAG_JOINT_MODEL": "none",
            "VISTARAG_KB": None,
            "VISTARAG_QDRANT_URL": None,
            "COLUMNS": "400",
        }

    def __call__(self, *args: str, code: int = 0):  # type: ignore[no-untyped-def]
        try:
            result = self.runner.invoke(app, list(args), env=self.env)
        finally:
            close_all()  # as a new process would: nothing held between commands
        assert result.exit_code == code, (args, result.exit_code, result.output, result.exception)
        return result

    def json(self, *args: str):  # type: ignore[no-untyped-def]
        return json.loads(self(*args).stdout)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cli")
    pdf = make_pdf(root / "report.pdf")
    shot = make_screenshot(root / "settings_screen.png", SCREEN_LINES)
    run = Cli(tmp_path_factory.mktemp("cli-home"))  # not inside the folder ingested below
    ingest = run("ingest", str(pdf), str(shot))
    return SimpleNamespace(run=run, root=root, pdf=pdf, shot=shot, ingest=ingest)


def test_ingest_reports_what_it_added(cli) -> None:
    err = cli.ingest.stderr
    assert "2 files: 2 added, 0 replaced, 0 unchanged, 0 skipped, 0 errors" in err
    assert "(3 pages," in err and "into knowledge base 'default'" in err
    # the progress bar's last state and the summary give the pages read and the rate
    assert re.search(r"2/2 \S+ 3 pages stored, \d+\.\d pages/s\n", err), err
    assert re.search(r" s \(\d+\.\d pages/s\) into knowledge base", err), err
    again = cli.run("ingest", str(cli.root))  # a folder: the same two files, unchanged
    assert "2 files: 0 added, 0 replaced, 2 unchanged" in again.stderr


def test_search_json_hits_have_exactly_the_public_keys(cli) -> None:
    hits = cli.run.json("search", "certificate expired", "--json", "-k", "4")
    assert isinstance(hits, list) and 1 <= len(hits) <= 4
    for hit in hits:
        assert set(hit) == PUBLIC_KEYS
        assert isinstance(hit["score"], float) and isinstance(hit["text"], str)
    top = hits[0]
    assert top["source"] == str(cli.shot.resolve())
    assert "certificate expired" in top["text"] and top["modality"] == "text"
    assert len(top["bbox"]) == 4 and top["blob"]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_search_table_output(cli) -> None:
    out = cli.run("search", "INV-20931").stdout
    assert "report.pdf p.3" in out and "INV-20931" in out


def test_search_modality_filter(cli) -> None:
    hits = cli.run.json("search", "tyres inspection", "--modality", "page", "--json")
    assert hits and {h["modality"] for h in hits} == {"page"}
    assert hits[0]["page"] == 2
    both = cli.run.json(
        "search", "warehouse", "--modality", "image", "--modality", "text", "--json", "-k", "20"
    )
    assert both and {h["modality"] for h in both} <= {"image", "text"}
    assert {h["modality"] for h in both} == {"image", "text"}
    bad = cli.run("search", "x", "--modality", "video", code=2)
    assert "unknown modality 'video'" in bad.stderr


def test_search_by_image(cli) -> None:
    hits = cli.run.json("search", "--image", str(cli.shot), "--json", "-k", "3")
    assert hits[0]["source"] == str(cli.shot.resolve())


def test_search_needs_a_query(cli) -> None:
    assert "give a query text" in cli.run("search", code=2).stderr


def test_batch_search_prints_one_json_line_per_input(cli, tmp_path: Path) -> None:
    batch = tmp_path / "queries.jsonl"
    lines = [
        {"id": "q-cert", "query": "certificate expired"},
        {"id": 7, "query": "INV-20931"},
        {"id": "q-img", "image": str(cli.shot)},
        {"id": "q-page", "query": "tyres inspection"},
    ]
    batch.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    out = cli.run("search", "--batch", str(batch), "--json", "-k", "3").stdout
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in records] == ["q-cert", 7, "q-img", "q-page"]
    for r in records:
        assert set(r) == {"id", "hits"}
        assert 1 <= len(r["hits"]) <= 3 and all(set(h) == PUBLIC_KEYS for h in r["hits"])
    by_id = {r["id"]: r["hits"] for r in records}
    assert by_id["q-cert"][0]["source"] == str(cli.shot.resolve())
    assert by_id[7][0]["page"] == 3
    assert by_id["q-img"][0]["source"] == str(cli.shot.resolve())
    assert by_id["q-page"][0]["page"] == 2
    batch.write_text("\n".join(json.dumps(x) for x in lines if "query" in x))
    paged = cli.run("search", "--batch", str(batch), "--json", "--modality", "page").stdout
    assert len(paged.splitlines()) == 3
    for line in paged.splitlines():
        assert {h["modality"] for h in json.loads(line)["hits"]} == {"page"}


def test_batch_search_reports_a_bad_line_and_goes_on(cli, tmp_path: Path) -> None:
    batch = tmp_path / "queries.jsonl"
    batch.write_text(
        '{"id": "ok", "query": "certificate expired"}\nnot json\n'
        '{"id": "last", "query": "INV-20931"}\n'
    )
    result = cli.run("search", "--batch", str(batch), "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 3
    assert records[0]["id"] == "ok" and records[2]["id"] == "last"
    assert "hits" not in records[1] and records[1]["error"].startswith(f"{batch}:2:")
    assert f"{batch}:2:" in result.stderr
    missing = cli.run("search", "--batch", str(tmp_path / "nope.jsonl"), code=2)
    assert "batch file not found" in missing.stderr


def test_batch_error_record_keeps_the_input_id(cli, tmp_path: Path) -> None:
    batch = tmp_path / "queries.jsonl"
    batch.write_text(
        '{"id": 2, "query": "certificate expired"}\n'
        f'{{"id": "shot-b", "image": "{tmp_path / "moved.png"}"}}\n'
    )
    records = [
        json.loads(ln)
        for ln in cli.run("search", "--batch", str(batch), "--json").stdout.splitlines()
    ]
    assert [r["id"] for r in records] == [2, "shot-b"]


def test_kb_list_stats_delete(cli, tmp_path: Path) -> None:
    a = text_pdf(tmp_path / "scratch-a.pdf", "Scratch note: the lab key is at reception.")
    b = text_pdf(tmp_path / "scratch-b.pdf", "Scratch note two: visitors sign in at gate 3.")
    cli.run("ingest", str(a), str(b), "--kb", "scratch")
    assert cli.run.json("kb", "list", "--json") == ["default", "scratch"]
    assert cli.run("kb", "list").stdout.split() == ["default", "scratch"]

    stats = cli.run.json("kb", "stats", "--json")
    assert stats["kb"] == "default" and stats["documents"] == 2
    assert stats["points"] == sum(stats["by_modality"].values())
    assert set(stats["by_modality"]) == {"text", "image", "page"}
    assert stats["by_modality"]["page"] == 3
    assert stats["text_model"] == "packaged:all-MiniLM-L6-v2"
    assert stats["joint_model"] == "none (text-bridge)"
    assert cli.run.json("status", "--json")["models"]["text_backend"] == "onnx-int8"
    assert "packaged:all-MiniLM-L6-v2 on onnx-int8" in cli.run("status").stdout
    scratch = cli.run.json("kb", "stats", "scratch", "--json")
    assert scratch["documents"] == 2 and scratch["by_modality"] == {"text": 2, "page": 2}

    # delete one document by path, then the knowledge base and the blobs only it used
    blobs = BlobStore(cli.run.home / "blobs")
    before = blobs.all_refs()
    assert "removed 2 points" in cli.run("delete", str(a), "--kb", "scratch").stderr
    assert cli.run.json("kb", "stats", "scratch", "--json")["documents"] == 1
    assert "no document" in cli.run("delete", str(a), "--kb", "scratch", code=1).stderr
    assert len(blobs.all_refs()) == len(before) - 1
    hits = cli.run.json("search", "visitors sign in", "--kb", "scratch", "--json")
    assert hits[0]["source"] == str(b.resolve())

    b_blob = next(h["blob"] for h in hits if "page" in h["modalities"] and h["blob"])
    before = blobs.all_refs()
    result = cli.run("kb", "delete", "scratch", "--yes")
    freed = int(
        re.search(r"deleted knowledge base .scratch. \((\d+) blobs? freed\)", result.stderr)
        .group(1)
    )
    assert freed >= 1 and len(blobs.all_refs()) == len(before) - freed
    assert not blobs.exists(b_blob)
    assert cli.run.json("kb", "list", "--json") == ["default"]
    assert cli.run.json("kb", "stats", "--json")["points"] == stats["points"]  # untouched
    for hit in cli.run.json("search", "report", "--json", "-k", "50"):  # its blobs are kept
        assert hit["blob"] is None or blobs.exists(hit["blob"])
    assert (
        "no knowledge base named 'scratch'"
        in cli.run("kb", "delete", "scratch", "--yes", code=2).stderr
    )
    assert "does not exist yet" in cli.run("kb", "stats", "scratch", code=2).stderr
    missing = cli.run("search", "anything", "--kb", "scratch", code=2).stderr  # says so, fails
    assert "no knowledge base 'scratch'" in missing and "vistarag ingest" in missing
    assert "invalid knowledge base name" in cli.run("kb", "stats", "../x", code=2).stderr


def test_search_from_another_directory_finds_the_same_knowledge_base(tmp_path: Path) -> None:
    """Without VISTARAG_HOME the data dir is the user's (platformdirs), not the working
    directory: ingest in one folder, search from another, nothing written where you stand."""
    import os
    import subprocess
    import sys

    first, second, data = tmp_path / "here", tmp_path / "there", tmp_path / "xdg-data"
    for folder in (first, second):
        folder.mkdir()
    text_pdf(first / "memo.pdf", "The quarterly offsite moves to Lisbon in March.")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISTARAG_")}
    env.update({"XDG_DATA_HOME": str(data), "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
                "VISTARAG_JOINT_MODEL": "none", "COLUMNS": "200"})

    def vistarag(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vistarag.ui.cli", *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=300)

    assert vistarag(first, "ingest", "memo.pdf").returncode == 0
    found = vistarag(second, "search", "offsite Lisbon", "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)[0]["source"] == str((first / "memo.pdf").resolve())
    assert not (first / ".vistarag").exists() and not (second / ".vistarag").exists()
    assert any(data.rglob("*.sqlite")) or any(data.iterdir())  # the KB lives in the user dir
    # A knowledge base nobody ingested into says so and fails, from anywhere.
    missing = vistarag(second, "search", "offsite", "--kb", "nothing-here")
    assert missing.returncode != 0 and "nothing-here" in missing.stderr


def test_pages_done_add_up_over_files_read_at_once() -> None:
    """``vistarag ingest --workers 2`` ingests two files at once: the bar counts the stored
    pages of both, never goes back, and gives pages per second since the ingest started."""
    pages = PagesDone(started=100.0)
    assert pages.line(now=101.0) == ""
    pages.update(Path("a.pdf"), 3)
    pages.update("b.pdf", 5)
    pages.update("a.pdf", 2)  # a late, smaller count for a.pdf: still 3
    pages.update(Path("a.pdf"), 10)  # a.pdf's result: all 10 pages
    assert pages.done == 15
    assert pages.line(now=103.0) == "15 pages stored, 5.0 pages/s"
    one = PagesDone(started=0.0)
    one.update("c.pdf", 1)
    assert one.line(now=2.0) == "1 page stored, 0.5 pages/s"


def test_the_bar_says_what_the_file_is_at() -> None:
    """The page being read, OCR where a page or an image takes seconds, a video's time; the
    writers' ``stored`` reports are counted, not shown as the file's line."""
    assert reading_line("r.pdf", "pages", 12, 30) == "r.pdf: page 12/30"
    assert reading_line("scan.pdf", "ocr", 3, 4) == "scan.pdf: OCR of page 3/4"
    assert reading_line("shot.png", "ocr", 1, 1) == "shot.png: OCR"
    assert reading_line("talk.mp4", "speech", 80, 245) == "talk.mp4: transcribed 01:20 / 04:05"
    assert reading_line("r.pdf", "stored", 8, 30) is None
