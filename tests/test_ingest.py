"""Ingestion end to end with the real models (MiniLM, RapidOCR) into embedded Qdrant.

Text-bridge mode (no joint model): screenshots and scanned pages are found through their OCR
text, PDF figures through their captions. One corpus (the test PDF and screenshot) is ingested
once per module and shared by the read-only tests.
"""

from __future__ import annotations

import codecs
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pymupdf
import pytest
from PIL import Image

from tests.fixtures_media import FIGURE_CAPTION, make_pdf, make_screenshot
from vistarag.agent.blobs import sha256_file
from vistarag.agent.engine import Engine
from vistarag.agent.errors import IngestError
from vistarag.agent.index import field_filter
from vistarag.agent.ingest.subtitles import load_subtitles
from vistarag.agent.ingest.textfiles import extract_text_file
from vistarag.agent.qdrant import close_all
from vistarag.agent.settings import Settings
from vistarag.agent.types import Hit

SCREEN_LINES = [
    "Network Settings",
    "Proxy server: proxy.internal:3128",
    "Error code QX-4471: certificate expired",
]
PAGE_RECT = (0.0, 0.0, 595.0, 842.0)  # the test PDF's A4 pages, in points
SCAN_RECT = (36.0, 72.0, 576.0, 200.0)  # where the scanned image sits on page 3


def inside(
    box: list[float] | None, outer: tuple[float, ...] | list[float], tol: float = 2.0
) -> bool:
    return (
        box is not None
        and len(box) == 4
        and box[0] < box[2]
        and box[1] < box[3]
        and box[0] >= outer[0] - tol
        and box[1] >= outer[1] - tol
        and box[2] <= outer[2] + tol
        and box[3] <= outer[3] + tol
    )


def text_pdf(path: Path, text: str) -> Path:
    """A one-page PDF with a text layer (no OCR needed; its page render is a blob)."""
    doc = pymupdf.open()
    doc.new_page().insert_textbox(pymupdf.Rect(72, 72, 540, 300), text, fontsize=12)
    doc.save(path)
    doc.close()
    return path


def payloads(engine: Engine, **conditions) -> list[dict]:
    return [p.payload for p in engine.kb().scroll(field_filter(**conditions))]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("corpus")
    pdf = make_pdf(root / "report.pdf")
    shot = make_screenshot(root / "settings_screen.png", SCREEN_LINES)
    settings = Settings(
        home=root / "home",
        joint_model="none",
        synthesizer="extractive",
        checkpointer="memory",
        _env_file=None,
    )
    ingestor = Engine(settings).ingestor()
    report = ingestor.ingest_paths([pdf, shot])
    yield SimpleNamespace(
        root=root,
        pdf=pdf,
        shot=shot,
        settings=settings,
        report=report,
        pdf_id=ingestor.doc_id(str(pdf.resolve())),  # keyed by the data dir's secret
        shot_id=ingestor.doc_id(str(shot.resolve())),
    )
    close_all()


@pytest.fixture
def engine(corpus) -> Engine:
    """A fresh Engine per test: other fixtures close the shared Qdrant clients on teardown."""
    return Engine(corpus.settings)


# ---- the shared corpus -----------------------------------------------------------------------


def test_batch_report(corpus, engine: Engine) -> None:
    pdf_res, shot_res = corpus.report.results
    assert (pdf_res.status, shot_res.status) == ("added", "added"), corpus.report.results
    assert pdf_res.doc_id == corpus.pdf_id and shot_res.doc_id == corpus.shot_id
    assert pdf_res.pages == 3 and not pdf_res.warnings and not pdf_res.message
    assert engine.kb().count(field_filter(doc_id=corpus.pdf_id)) == pdf_res.points
    assert engine.kb().count(field_filter(doc_id=corpus.shot_id)) == shot_res.points
    summary = corpus.report.summary()
    assert summary["added"] == 2 and summary["errors"] == 0
    assert summary["points"] == engine.kb().count()


def test_screenshot_phrase_comes_back_first_with_its_region(corpus, engine: Engine) -> None:
    hits = engine.find("certificate expired", k=5)
    top = hits[0]
    assert top.modality == "text", [(h.modality, h.text[:40]) for h in hits]
    assert "certificate expired" in top.text
    assert top.source == str(corpus.shot.resolve())
    assert top.doc_id == corpus.shot_id and top.page is None
    width, height = Image.open(corpus.shot).size
    assert inside(top.bbox, (0, 0, width, height), tol=0)
    assert (top.bbox[2] - top.bbox[0]) < width  # a region, not the whole screenshot
    # the box covers the OCR line that says it
    (image_point,) = payloads(engine, doc_id=corpus.shot_id, modality="image")
    line = next(ln for ln in image_point["ocr_lines"] if "certificate expired" in ln["text"])
    assert inside(line["bbox"], top.bbox, tol=0.5)
    # it cites the screenshot itself, which is in the blob store
    assert top.blob == image_point["blob"] and engine.blobs.exists(top.blob)
    assert image_point["bbox"] == [0.0, 0.0, float(width), float(height)]


def test_pdf_phrase_comes_back_first_with_page_and_box(corpus, engine: Engine) -> None:
    hits = engine.find("tyres inspection", k=5)
    top = hits[0]
    assert top.page == 2 and top.source == str(corpus.pdf.resolve()), top
    assert inside(top.bbox, PAGE_RECT)
    # the text chunk itself is among the first two (its page render holds the same text)
    chunk = next(h for h in hits[:2] if h.modality == "text")
    assert chunk.page == 2 and "tyres" in chunk.text
    assert inside(chunk.bbox, PAGE_RECT) and chunk.bbox != list(PAGE_RECT)


def test_scanned_page_is_found_through_ocr(corpus, engine: Engine) -> None:
    hits = engine.find("INV-20931", k=5)
    assert hits[0].page == 3, hits[0]
    chunk = engine.find("INV-20931", k=1, modality=["text"])[0]
    assert chunk.page == 3 and "INV-20931" in chunk.text
    # the OCR box is mapped back to PDF points: it lies on the scanned image, not the full page
    assert inside(chunk.bbox, SCAN_RECT), chunk.bbox
    (point,) = engine.kb().retrieve([chunk.id])
    assert point.payload["from"] == "ocr"


def test_pdf_figure_is_an_image_point_with_caption_and_box(corpus, engine: Engine) -> None:
    figures = payloads(engine, doc_id=corpus.pdf_id, modality="image")
    assert sorted(f["page"] for f in figures) == [1, 3], figures  # the figure; the scan
    fig = next(f for f in figures if f["page"] == 1)
    assert fig["page"] == 1
    assert fig["text"] == FIGURE_CAPTION and fig["caption"] == FIGURE_CAPTION
    assert fig["bbox"] == pytest.approx([72.0, 220.0, 472.0, 460.0], abs=1.0)
    assert engine.blobs.exists(fig["blob"])
    with Image.open(engine.blobs.path(fig["blob"])) as im:  # the figure, not the page
        assert im.width / im.height == pytest.approx(400 / 240, rel=0.05)
    hits = engine.find("map of the Rotterdam warehouse", k=3)
    assert hits[0].modality == "image" and hits[0].page == 1
    # the scanned page's image has no caption: what OCR read on it stands in for one
    scan = next(f for f in figures if f["page"] == 3)
    assert "INV-20931" in scan["text"] and inside(scan["bbox"], SCAN_RECT)


def test_every_page_has_a_render_in_the_blob_store(corpus, engine: Engine) -> None:
    pages = {p["page"]: p for p in payloads(engine, doc_id=corpus.pdf_id, modality="page")}
    assert sorted(pages) == [1, 2, 3]
    for no, page in pages.items():
        assert page["bbox"] == pytest.approx(list(PAGE_RECT), abs=1.0)
        assert engine.blobs.path(page["blob"]).is_file()
        with Image.open(engine.blobs.path(page["blob"])) as im:
            assert max(im.size) <= corpus.settings.thumbnail_px
            assert im.width / im.height == pytest.approx(595 / 842, rel=0.02)
        # each page's text chunks cite that page's render
        for chunk in payloads(engine, doc_id=corpus.pdf_id, modality="text", page=no):
            assert chunk["blob"] == page["blob"]
    assert len({p["blob"] for p in pages.values()}) == 3
    assert "INV-20931" in pages[3]["text"]  # the scanned page's text comes from OCR


def test_same_files_again_are_unchanged(corpus, engine: Engine) -> None:
    before = engine.kb().count()
    blobs_before = engine.blobs.all_refs()
    report = engine.ingestor().ingest_paths([corpus.pdf, corpus.shot])
    assert [r.status for r in report.results] == ["unchanged", "unchanged"]
    assert [r.doc_id for r in report.results] == [corpus.pdf_id, corpus.shot_id]
    assert report.points == 0
    assert engine.kb().count() == before
    assert engine.blobs.all_refs() == blobs_before


def test_no_blob_is_stored_without_a_point_citing_it(corpus, engine: Engine) -> None:
    referenced = {p.payload["blob"] for p in engine.kb().scroll(fields=["blob"])} - {None}
    assert engine.blobs.all_refs() == referenced


# ---- changes and deletes (own data dir each) -------------------------------------------------


def test_changed_file_replaces_the_old_version(settings: Settings, tmp_path: Path) -> None:
    engine = Engine(settings)
    path = text_pdf(tmp_path / "status.pdf", "Backup job failed. The tape library is offline.")
    first = engine.ingestor().ingest_file(path)
    assert first.status == "added", first.message
    old_hash = sha256_file(path)
    old_blobs = {p["blob"] for p in payloads(engine, doc_id=first.doc_id)}
    assert old_blobs and all(engine.blobs.exists(b) for b in old_blobs)

    text_pdf(path, "Invoice approved. Payment is scheduled for Friday; the vendor is Acme.")
    second = engine.ingestor().ingest_file(path)
    assert second.status == "replaced", second.message
    assert second.doc_id == first.doc_id

    stored = payloads(engine, doc_id=first.doc_id)
    assert len(stored) == second.points == engine.kb().count()
    assert {p["content_hash"] for p in stored} == {sha256_file(path)} != {old_hash}
    for hit in engine.find("tape library offline", k=10):
        assert "tape library" not in hit.text
    assert "Payment is scheduled" in engine.find("payment scheduled friday", k=1)[0].text
    new_blobs = {p["blob"] for p in stored}
    assert new_blobs.isdisjoint(old_blobs)
    assert not any(engine.blobs.path(b).exists() for b in old_blobs)  # old blobs deleted
    assert all(engine.blobs.exists(b) for b in new_blobs)
    assert engine.blobs.all_refs() == new_blobs


def test_delete_document_removes_points_and_unshared_blobs(
    settings: Settings, tmp_path: Path
) -> None:
    engine = Engine(settings)
    a = text_pdf(tmp_path / "alpha.pdf", "Shared diagram of the cooling loop.")
    b = tmp_path / "beta.pdf"
    shutil.copyfile(a, b)  # same page render: the same content-addressed blob
    c = text_pdf(tmp_path / "gamma.pdf", "Only in gamma: the spare keys are in drawer 4.")
    text = tmp_path / "notes.md"
    text.write_text("# Notes\n\nNothing to see here.\n")
    ingestor = engine.ingestor()
    results = ingestor.ingest_paths([a, b, c, text]).results
    assert [r.status for r in results] == ["added"] * 4
    ra, rb, rc, rt = results

    def blobs_of(doc_id: str) -> set[str]:
        return {p["blob"] for p in payloads(engine, doc_id=doc_id)} - {None}

    shared = blobs_of(ra.doc_id)
    assert shared == blobs_of(rb.doc_id) and len(shared) == 1
    (gamma_blob,) = blobs_of(rc.doc_id)

    assert ingestor.delete_document(rc.doc_id) == rc.points > 0
    assert engine.kb().count(field_filter(doc_id=rc.doc_id)) == 0
    assert not engine.blobs.path(gamma_blob).exists()

    assert ingestor.delete_document(ra.doc_id) == ra.points
    assert engine.kb().count(field_filter(doc_id=ra.doc_id)) == 0
    assert all(engine.blobs.exists(ref) for ref in shared)  # beta still uses it
    assert engine.kb().count(field_filter(doc_id=rb.doc_id)) == rb.points

    assert ingestor.delete_document(rb.doc_id) == rb.points
    assert not any(engine.blobs.path(ref).exists() for ref in shared)
    assert engine.kb().count() == rt.points  # the text file is untouched
    assert ingestor.delete_document("d-no-such-doc") == 0


def test_folders_are_walked_and_unsupported_files_skipped(
    settings: Settings, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / ".hidden").mkdir()
    (docs / "a.txt").write_text("Alpha handbook: the boiler pressure must stay below 2 bar.")
    (docs / "sub" / "b.md").write_text("# Beta\n\nThe fire exit is behind the kitchen.")
    (docs / ".hidden" / "c.txt").write_text("never ingested")
    (docs / "data.xyz").write_text("not a supported type")
    unsupported = tmp_path / "explicit.xyz"
    unsupported.write_text("named explicitly")
    report = Engine(settings).ingestor().ingest_paths([docs, unsupported])
    by_name = {Path(r.path).name: r for r in report.results}
    assert set(by_name) == {"a.txt", "b.md", "explicit.xyz"}
    assert by_name["a.txt"].status == by_name["b.md"].status == "added"
    assert by_name["explicit.xyz"].status == "skipped"
    assert "unsupported file type '.xyz'" in by_name["explicit.xyz"].message
    hits = Engine(settings).find("where is the fire exit", k=1)
    assert hits[0].source == str((docs / "sub" / "b.md").resolve())


def test_source_override_names_the_document(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "upload-7f3a.txt"
    path.write_text("The warranty lasts 24 months.")
    engine = Engine(settings)
    result = engine.ingestor().ingest_file(path, source="contracts/warranty.txt")
    assert result.status == "added" and result.doc_id == engine.ingestor().doc_id(
        "contracts/warranty.txt")
    hit: Hit = engine.find("warranty", k=1)[0]
    assert hit.source == "contracts/warranty.txt" and hit.doc_id == result.doc_id


def test_page_vector_is_pooled_from_its_chunks_and_every_point_is_described(
    corpus, engine: Engine
) -> None:
    kb = engine.kb()
    points = list(kb.scroll(field_filter(doc_id=corpus.pdf_id, page=2), with_vectors=True))
    page = next(p for p in points if p.payload["modality"] == "page")
    chunks = [np.asarray(p.vector["text"]) for p in points if p.payload["modality"] == "text"]
    assert chunks
    pooled = np.sum(chunks, axis=0)
    pooled /= np.linalg.norm(pooled)
    assert np.allclose(page.vector["text"], pooled, atol=1e-5)
    # the document's metadata is on every point, written with it (no second pass)
    everything = payloads(engine, doc_id=corpus.pdf_id)
    assert everything and all(isinstance(p.get("doc"), dict) for p in everything)
    assert sum(1 for p in everything if p.get("doc_head")) == 1


def test_text_files_are_read_in_the_encodings_editors_save(tmp_path: Path) -> None:
    """Windows Notepad's "Unicode" (UTF-16 with a byte-order mark) used to be refused as
    binary; a UTF-8 byte-order mark stays out of the text; Windows-1252 keeps its curly quotes
    and dashes (Latin-1 made them control characters)."""
    memo = "Quarterly memo: the Oslo office closes in May — “final”.\n"
    cases = {"notepad.txt": memo.encode("utf-16"), "bom.md": codecs.BOM_UTF8 + memo.encode(),
             "wide.txt": memo.encode("utf-32"), "windows.txt": memo.encode("cp1252")}
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
        (unit,) = extract_text_file(tmp_path / name, 900).units
        assert unit.text == memo.strip(), name
    (tmp_path / "cut.txt").write_bytes(memo.encode("utf-16")[:-1])
    with pytest.raises(IngestError, match=r"cut\.txt.*not valid UTF-16-LE text: truncated"):
        extract_text_file(tmp_path / "cut.txt", 900)
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01binary" * 50)
    with pytest.raises(IngestError, match="binary data"):
        extract_text_file(tmp_path / "blob.txt", 900)


def test_subtitles_saved_as_utf16_are_read(tmp_path: Path) -> None:
    """Subtitle tools often write UTF-16 with a byte-order mark; it was read as Windows-1252
    (a NUL between letters) and refused with "no subtitle cues found"."""
    srt = "1\r\n00:00:01,500 --> 00:00:04,000\r\nThe Oslo office closes in May.\r\n"
    (tmp_path / "talk.srt").write_bytes(srt.encode("utf-16"))
    (cue,) = load_subtitles(tmp_path / "talk.srt")
    assert (cue.start, cue.end, cue.text) == (1.5, 4.0, "The Oslo office closes in May.")
