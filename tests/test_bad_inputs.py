"""Bad files never stop a batch: each gets one error naming the problem, the rest is ingested.

Every bad input is ingested in one batch together with a good file, into a knowledge base that
already holds a document, with the real pipeline (PyMuPDF, Pillow, RapidOCR, MiniLM, Qdrant).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import pymupdf
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.fixtures_media import make_pdf, make_screenshot
from vistarag.agent.engine import Engine
from vistarag.agent.index import field_filter
from vistarag.agent.qdrant import close_all
from vistarag.agent.settings import Settings
from vistarag.ui.cli import app

MAX_PIXELS = 200_000  # the good screenshot (1000x216) fits, the big image (600x400) does not


def make_bad_files(root: Path) -> dict[str, Path]:
    """One file per kind of problem (the keys name the problem)."""
    root.mkdir(parents=True, exist_ok=True)
    real_pdf = make_pdf(root / "source.pdf").read_bytes()
    (root / "source.pdf").unlink()
    files = {
        "empty": root / "empty.pdf",
        "truncated": root / "truncated.pdf",
        "encrypted": root / "locked.pdf",
        "garbage_pdf": root / "garbage.pdf",
        "html_as_pdf": root / "saved-page.pdf",
        "image_as_pdf": root / "photo.pdf",
        "blank_pdf": root / "blank.pdf",
        "text_as_png": root / "notes.png",
        "truncated_png": root / "cut.png",
        "too_many_pixels": root / "huge.png",
        "dangling_link": root / "scan.png",
    }
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(real_pdf[: len(real_pdf) // 2])
    doc = pymupdf.open(stream=real_pdf, filetype="pdf")
    doc.save(
        files["encrypted"],
        encryption=pymupdf.PDF_ENCRYPT_AES_256,
        user_pw="s3cret",
        owner_pw="owner-s3cret",
    )
    doc.close()
    files["garbage_pdf"].write_bytes(b"this is not a PDF at all\n" * 20)
    # MuPDF opens these by their content (as HTML, as an image), whatever the name says;
    # read as PDFs they crashed the whole process (Page.xref on a document with no xrefs)
    files["html_as_pdf"].write_text("<html><body><h1>Quarterly report</h1></body></html>\n")
    Image.new("RGB", (120, 80), "teal").save(files["image_as_pdf"], format="PNG")
    blank = pymupdf.open()
    for _ in range(3):
        blank.new_page()
    blank.save(files["blank_pdf"])
    files["text_as_png"].write_text("Meeting notes: nothing here is an image.\n")
    Image.new("RGB", (600, 400), "teal").save(files["too_many_pixels"])
    Image.effect_noise((200, 150), 40).convert("RGB").save(files["truncated_png"])
    png = files["truncated_png"].read_bytes()
    files["truncated_png"].write_bytes(png[: len(png) // 3])
    os.symlink(root / "scan-that-was-moved.png", files["dangling_link"])
    return files


# messages must name the problem (matched case-insensitively against FileResult.message)
EXPECTED = {
    "empty": r"empty \(0 bytes\)",
    "encrypted": r"encrypted.*password",
    "garbage_pdf": r"not a readable PDF",
    "html_as_pdf": r"not a PDF: its content is a web page \(HTML\)",
    "image_as_pdf": r"not a PDF: its content is an image.*\.png",
    "blank_pdf": r"nothing retrievable was found in it \(3 pages, no text in the text layer "
    r"or by OCR\)",
    "text_as_png": r"not a readable image.*not \.PNG data",
    "truncated_png": r"damaged or truncated",
    "too_many_pixels": r"600x400 = 240,000 pixels, over the limit of 200,000.*"
    r"VISTARAG_MAX_IMAGE_PIXELS",
    "dangling_link": r"file not found",
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("bad-inputs")
    settings = Settings(
        home=root / "home",
        joint_model="none",
        max_image_pixels=MAX_PIXELS,
        synthesizer="extractive",
        checkpointer="memory",
        _env_file=None,
    )
    engine = Engine(settings)
    earlier = root / "earlier.md"
    earlier.write_text("# Earlier\n\nThe server room door code changes every Monday.\n")
    first = engine.ingestor().ingest_file(earlier)
    assert first.status == "added"
    before = engine.kb().count()
    bad = make_bad_files(root / "files")
    good = make_screenshot(
        root / "files" / "good.png",
        ["Deployment checklist", "Rotate the signing key before release"],
    )
    paths = [*bad.values(), good]
    report = engine.ingestor().ingest_paths(paths)
    yield SimpleNamespace(
        root=root,
        settings=settings,
        bad=bad,
        good=good,
        earlier=earlier,
        first=first,
        before=before,
        report=report,
        by_path={r.path: r for r in report.results},
    )
    close_all()


def test_one_result_per_file_in_order(batch) -> None:
    assert [r.path for r in batch.report.results] == [
        str(p) for p in [*batch.bad.values(), batch.good]
    ]


@pytest.mark.parametrize("problem", sorted(EXPECTED))
def test_bad_file_is_an_error_naming_the_problem(batch, problem: str) -> None:
    result = batch.by_path[str(batch.bad[problem])]
    assert result.status == "error", result
    assert re.search(EXPECTED[problem], result.message, re.I), result.message
    assert result.points == 0 and result.doc_id is None


def test_truncated_pdf_is_repaired_with_a_warning(batch) -> None:
    """PyMuPDF repairs a PDF cut in half. pdf.py's design: keep the pages it could read and say
    so with a warning (never drop it silently nor pretend it is intact)."""
    result = batch.by_path[str(batch.bad["truncated"])]
    assert result.status == "added", result
    assert result.warnings == [
        "the PDF was damaged and has been repaired; some content may be missing"
    ]
    stored = list(Engine(batch.settings).kb().scroll(field_filter(doc_id=result.doc_id)))
    assert len(stored) == result.points > 0
    # what survived the cut (the first pages' text) is stored and findable
    assert any("Zephyr Logistics" in p.payload["text"] and p.payload["page"] == 1 for p in stored)


def test_good_file_in_the_same_batch_is_added(batch) -> None:
    result = batch.by_path[str(batch.good)]
    assert result.status == "added", result.message
    assert not result.warnings
    hits = Engine(batch.settings).find("rotate the signing key", k=3)
    assert hits[0].source == str(batch.good.resolve())


def test_points_stored_before_the_batch_are_still_there(batch) -> None:
    engine = Engine(batch.settings)
    assert engine.kb().count(field_filter(doc_id=batch.first.doc_id)) == batch.first.points
    added = sum(r.points for r in batch.report.results if r.status == "added")
    assert engine.kb().count() == batch.before + added
    assert engine.find("server room door code", k=1)[0].doc_id == batch.first.doc_id


def test_summary_counts_the_errors(batch) -> None:
    summary = batch.report.summary()
    assert summary["errors"] == len(EXPECTED) == len(batch.report.errors)
    assert summary["files"] == len(batch.bad) + 1


def test_unreadable_path_is_an_error(batch) -> None:
    """Tests run as root (chmod cannot deny reading): a directory named like an image is not
    readable as a file when given to ingest_file directly."""
    folder = batch.root / "scan-folder.png"
    folder.mkdir()
    result = Engine(batch.settings).ingestor().ingest_file(folder)
    assert result.status == "error"
    assert re.search(r"cannot read the file", result.message), result.message


def test_file_over_the_size_limit(batch, tmp_path: Path) -> None:
    settings = batch.settings.model_copy(update={"max_file_mb": 0.001})
    big = tmp_path / "long.txt"
    big.write_text("word " * 1000)
    result = Engine(settings).ingestor().ingest_file(big)
    assert result.status == "error"
    assert "over the limit of 0.001 MB" in result.message and "VISTARAG_MAX_FILE_MB" in (
        result.message
    )


def test_query_image_over_the_pixel_limit_is_refused(batch) -> None:
    from vistarag.agent.errors import IngestError

    with pytest.raises(IngestError, match="over the limit"):
        Engine(batch.settings).load_query_image(batch.bad["too_many_pixels"])


def test_cli_ingest_prints_one_line_per_bad_file_and_exits_1(tmp_path: Path) -> None:
    bad = make_bad_files(tmp_path / "files")
    good = tmp_path / "files" / "good.md"
    good.write_text("# Good\n\nThe spare printer toner is in cabinet B.\n")
    env = {
        "VISTARAG_HOME": str(tmp_path / "home"),
        "VISTARAG_JOINT_MODEL": "none",
        "VISTARAG_MAX_IMAGE_PIXELS": str(MAX_PIXELS),
        "COLUMNS": "400",
    }
    try:
        result = CliRunner().invoke(app, ["ingest", *map(str, bad.values()), str(good)], env=env)
    finally:
        close_all()
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    for problem, path in bad.items():
        named = [ln for ln in lines if str(path) in ln]
        if problem == "truncated":
            assert len(named) == 1 and named[0].startswith("warning"), named
            assert "damaged and has been repaired" in named[0]
            continue
        errors = [ln for ln in named if ln.startswith("error")]
        assert len(errors) == 1, (problem, named)
        assert re.search(EXPECTED[problem], errors[0], re.I), errors[0]
    assert not any(str(good) in ln for ln in lines)
    assert re.search(r"\b12 files\b.*\b2 added\b.*\b10 errors\b", result.stderr), result.stderr


def _cli_ingest(tmp_path: Path, paths: list[Path], columns: str):  # type: ignore[no-untyped-def]
    env = {
        "VISTARAG_HOME": str(tmp_path / "home"),
        "VISTARAG_JOINT_MODEL": "none",
        "VISTARAG_MAX_IMAGE_PIXELS": str(MAX_PIXELS),
        "COLUMNS": columns,
    }
    try:
        return CliRunner().invoke(app, ["ingest", *map(str, paths)], env=env)
    finally:
        close_all()


def test_cli_error_line_is_one_line_at_80_columns(tmp_path: Path) -> None:
    huge = tmp_path / "huge.png"
    Image.new("RGB", (600, 400), "teal").save(huge)
    good = tmp_path / "good.md"
    good.write_text("# Good\n\nfine\n")
    result = _cli_ingest(tmp_path, [huge, good], columns="80")
    assert result.exit_code == 1
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error")]
    assert str(huge) in line and line.endswith("(raise VISTARAG_MAX_IMAGE_PIXELS to allow it)")


def test_cli_error_line_names_a_file_with_brackets(tmp_path: Path) -> None:
    bad = tmp_path / "notes [draft].png"
    bad.write_text("not an image")
    good = tmp_path / "good.md"
    good.write_text("# Good\n\nfine\n")
    result = _cli_ingest(tmp_path, [bad, good], columns="400")
    assert result.exit_code == 1
    assert f"error {bad}: not a readable image" in result.stderr, result.stderr


def test_pdf_over_the_page_limit(batch, tmp_path: Path) -> None:
    from tests.fixtures_media import make_pdf

    settings = batch.settings.model_copy(update={"max_pdf_pages": 2})
    result = Engine(settings).ingestor().ingest_file(make_pdf(tmp_path / "three_pages.pdf"))
    assert result.status == "error"
    assert "3 pages, over the limit of 2" in result.message
    assert "VISTARAG_MAX_PDF_PAGES" in result.message


def test_an_image_past_pillows_own_guard_is_held_to_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pillow refuses images past its decompression-bomb guard (89 million pixels) before
    VistaRAG sees their size: such an image got Pillow's message, and raising
    VISTARAG_MAX_IMAGE_PIXELS did not let it in. The guard is made smaller here, the image too."""
    from vistarag.agent.errors import IngestError
    from vistarag.agent.imaging import open_image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
    path = tmp_path / "plan.png"
    Image.new("RGB", (500, 400), "white").save(path)  # 200,000 pixels: Pillow's 2x refusal
    with pytest.raises(IngestError, match=r"image is 200,000 pixels, over the limit of 150,000 "
                       r"\(raise VISTARAG_MAX_IMAGE_PIXELS"):
        open_image(path, 150_000)
    assert open_image(path, 250_000).size == (500, 400)  # the setting raised: it opens
