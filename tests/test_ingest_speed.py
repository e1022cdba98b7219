"""Ingestion does less and uses every core: tiny and repeated images are never OCRed or
embedded, concurrent text encoding gives the one-at-a-time vectors, extraction reads ahead of
embedding, and several workers store the same points as one."""

from __future__ import annotations

import io
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image, ImageDraw

from vistarag.agent.engine import Engine
from vistarag.agent.imaging import looks_blank, render_page
from vistarag.agent.ingest.discover import select
from vistarag.agent.ingest.parallel import map_ordered, read_ahead
from vistarag.agent.ingest.pdf import draws_no_images, extract_pdf
from vistarag.agent.models import Models
from vistarag.agent.ocr import OcrLine, RapidOcrEngine
from vistarag.agent.onnx_text import OnnxTextEncoder, run_threads
from vistarag.agent.settings import Settings
from vistarag.evals.bench_messy import make_glyph_pdf, make_small_files
from vistarag.evals.sample_corpus import text_image

SCAN_LINES = ["Exhibit 10.2 schedule of leased warehouses", "Rotterdam depot lease 2031"]


class CountingOcr(RapidOcrEngine):
    """The real RapidOCR engine, counting the images it reads."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def read(self, image: Image.Image) -> list[OcrLine]:
        self.calls += 1
        return super().read(image)


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _messy_pdf(path: Path) -> Path:
    """3 text pages, each with 16 tiny glyph images and the same 120x60 pt logo; then a page
    that is one full-page scan."""
    doc = pymupdf.open()
    tick = Image.new("RGB", (16, 20), "white")
    ImageDraw.Draw(tick).rectangle([1, 3, 14, 16], outline="black", width=2)
    logo = Image.new("RGB", (240, 120), "#1f4e79")
    ImageDraw.Draw(logo).text((20, 40), "ACME", fill="white", font_size=40)
    for n in range(3):
        page = doc.new_page()
        page.insert_image(pymupdf.Rect(440, 16, 560, 76), stream=_png(logo))
        for i in range(16):
            y = 100 + 36 * i
            page.insert_image(pymupdf.Rect(60, y, 68, y + 10), stream=_png(tick))
            page.insert_text((76, y + 9), f"Item {n}.{i}: the forklift brake check is complete.")
    page = doc.new_page()
    scan = text_image(SCAN_LINES, size=(1200, 1500), font_size=44)
    page.insert_image(page.rect, stream=_png(scan))
    doc.save(path)
    doc.close()
    return path


def test_tiny_and_repeated_images_are_not_ocred_or_embedded(tmp_path: Path) -> None:
    ocr = CountingOcr()
    extraction = extract_pdf(_messy_pdf(tmp_path / "messy.pdf"), ocr, 50, 1000, 72)
    figures = [u for u in extraction.units if u.modality == "image"]
    # the logo once (its first page), nothing for 48 glyph images, nor for the scan itself
    assert [(u.page, u.payload["from"]) for u in figures] == [(1, "pdf-figure")]
    assert ocr.calls == 2  # the logo once, the scanned page once
    scanned = " ".join(u.text for u in extraction.units if u.page == 4 and u.modality == "text")
    assert "Rotterdam" in scanned


def test_a_document_of_glyph_pages_costs_no_ocr(tmp_path: Path) -> None:
    ocr = CountingOcr()
    extraction = extract_pdf(make_glyph_pdf(tmp_path / "glyphs.pdf", pages=30), ocr, 50, 1000, 72)
    assert ocr.calls == 1  # the logo, once for the document
    assert sum(u.modality == "image" for u in extraction.units) == 1


def test_blank_pages_are_not_ocred_and_a_page_number_alone_is(tmp_path: Path) -> None:
    """A page with nothing on it, or the scan of a blank sheet (paper noise), has nothing for
    OCR to read: the OCR models do not run (they took 0.85 s a blank page). A scanned page
    that holds only its page number is still read."""
    doc = pymupdf.open()
    doc.new_page()
    sheet = Image.effect_noise((1200, 1500), 6).point(lambda v: min(255, v + 110))
    doc.new_page().insert_image(pymupdf.Rect(0, 0, 612, 792), stream=_png(sheet.convert("RGB")))
    numbered = doc.new_page()
    number = Image.new("RGB", (1200, 1500), "white")
    ImageDraw.Draw(number).text((500, 1300), "Page 7", fill="black", font_size=60)
    numbered.insert_image(numbered.rect, stream=_png(number))
    doc.save(tmp_path / "scan_with_blanks.pdf")
    ocr = CountingOcr()
    extraction = extract_pdf(tmp_path / "scan_with_blanks.pdf", ocr, 50, 1000, 72)
    assert ocr.calls == 1
    assert [u.page for u in extraction.units if u.modality == "text"] == [3]
    assert "Page 7" in " ".join(u.text for u in extraction.units if u.modality == "text")


def test_blank_means_no_mark_in_either_direction() -> None:
    """Dark screenshots and video frames count too: light text on a dark ground is a mark; a
    black frame (a fade) is blank; one 8 pt word on a rendered letter page is a mark."""
    dark = Image.new("RGB", (800, 600), (20, 20, 30))
    assert looks_blank(dark)
    ImageDraw.Draw(dark).text((100, 100), "Build failed", fill=(230, 230, 230), font_size=14)
    assert not looks_blank(dark)
    page = pymupdf.open().new_page()
    page.insert_text((72, 72), "Hi", fontsize=8)
    assert not looks_blank(render_page(page, 200, max_side=1600))


def _append_content(doc: pymupdf.Document, page: pymupdf.Page, ops: bytes) -> None:
    xref = page.get_contents()[-1]
    doc.update_stream(xref, doc.xref_stream(xref) + b"\n" + ops)


def _set_resource(doc: pymupdf.Document, page: pymupdf.Page, key: str, value: str) -> None:
    kind, ref = doc.xref_get_key(page.xref, "Resources")
    assert kind == "xref"
    doc.xref_set_key(int(ref.split()[0]), key, value)


def _pages_that_draw_images(path: Path) -> pymupdf.Document:
    """Page 1: text and a link, nothing drawn as an image; then one page for each way a page
    can place an image: an image XObject, an inline image, a shading, a shading pattern, an
    annotation's appearance, a soft mask, a form XObject (another page shown on this one)."""
    doc = pymupdf.open()
    tick = _png(Image.new("RGB", (16, 20), "black"))
    for _ in range(8):
        page = doc.new_page()
        page.insert_text((72, 72), "Revenue by segment, fiscal 2024 (BILLION dollars)")
        page.insert_link({"kind": pymupdf.LINK_URI, "from": pymupdf.Rect(72, 60, 200, 76),
                          "uri": "https://example.com"})
    doc[1].insert_image(pymupdf.Rect(100, 100, 300, 200), stream=tick)
    inline = b"q 200 0 0 100 100 300 cm BI /W 2 /H 1 /CS /G /BPC 8 ID \x00\xff EI Q"
    _append_content(doc, doc[2], inline)
    shading = ("<</ShadingType 2 /ColorSpace /DeviceRGB /Coords [0 0 1 0] /Function "
               "<</FunctionType 2 /Domain [0 1] /C0 [1 0 0] /C1 [0 0 1] /N 1>> >>")
    _set_resource(doc, doc[3], "Shading", f"<</Sh1 {shading}>>")
    _append_content(doc, doc[3], b"q 200 0 0 100 100 300 cm /Sh1 sh Q")
    _set_resource(doc, doc[4], "Pattern", f"<</P1 <</PatternType 2 /Shading {shading}>> >>")
    _append_content(doc, doc[4], b"q /Pattern cs /P1 scn 100 300 200 100 re f Q")
    doc[5].add_stamp_annot(pymupdf.Rect(100, 300, 300, 400))
    _set_resource(doc, doc[6], "ExtGState", "<</G1 <</SMask <</S /Luminosity /G 0 0 R>> >> >>")
    other = pymupdf.open()
    other.new_page().insert_image(pymupdf.Rect(50, 50, 250, 150), stream=tick)
    doc[7].show_pdf_page(pymupdf.Rect(100, 300, 400, 600), other, 0)
    doc.save(path)
    return pymupdf.open(path)


def test_pages_that_certainly_draw_no_image_skip_the_image_pass(tmp_path: Path) -> None:
    """``draws_no_images`` (read from resources, not by interpreting the page) answers True
    only where PyMuPDF's image pass finds nothing: a wrong True would lose a figure."""
    doc = _pages_that_draw_images(tmp_path / "ways.pdf")
    assert [draws_no_images(page) for page in doc] == [True] + [False] * 7
    for page in doc:
        assert not (draws_no_images(page) and page.get_image_info())
    assert all(page.get_image_info() for page in doc if page.number in (1, 2, 3, 7))


def test_run_threads_never_oversubscribe() -> None:
    for cores in (1, 2, 3, 8, 32):
        runs, intra = run_threads(cores)
        assert runs >= 1 and intra >= 1 and runs * intra <= cores


def test_concurrent_encoding_equals_one_at_a_time(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, home=tmp_path / "home", joint_model="none")
    encoder = Models(settings).text_encoder
    assert isinstance(encoder, OnnxTextEncoder)
    words = ["net", "revenue", "increased", "compared", "quarter", "lease", "obligations",
             "forklift", "brake"]
    texts = [" ".join(words[(i * 7 + k) % len(words)] for k in range(5 + 9 * i % 70))
             for i in range(40)]
    encoder._runs = 1
    sequential = encoder.encode_document(texts, batch_size=8, max_tokens=256)
    encoder._runs = 4
    concurrent = encoder.encode_document(texts, batch_size=8, max_tokens=256)
    one_each = np.stack([encoder.encode_document([t], max_tokens=256)[0] for t in texts])
    assert np.abs(concurrent - sequential).max() <= 1e-6
    assert np.abs(concurrent - one_each).max() <= 1e-6  # int8: never depends on batch-mates


def test_runs_caps_the_texts_in_the_model_at_once(tmp_path: Path) -> None:
    """``--workers 1`` keeps the text model to one run at a time; the vectors do not change."""
    settings = Settings(_env_file=None, home=tmp_path / "home", joint_model="none")
    encoder = Models(settings).text_encoder
    assert isinstance(encoder, OnnxTextEncoder)
    encoder._runs = 4  # as on a 4-core machine, whatever this one has
    texts = [f"lease obligations of depot {i} " * (1 + i % 9) for i in range(24)]
    run = encoder._run
    busy, most = [0], []
    lock = threading.Lock()

    def counted(encs, rows):  # noqa: ANN001, ANN202
        with lock:
            busy[0] += 1
            most.append(busy[0])
        try:
            return run(encs, rows)
        finally:
            with lock:
                busy[0] -= 1

    encoder._run = counted  # type: ignore[method-assign]
    by_runs = {}
    for runs in (1, 2, None):
        most.clear()
        encoder._cache.clear()
        by_runs[runs] = encoder.encode_document(texts, max_tokens=256, runs=runs)
        assert max(most) <= (runs or 4) and len(most) == len(texts)
    assert max(most) > 1  # the default runs several at once
    assert np.abs(by_runs[1] - by_runs[2]).max() <= 1e-6
    assert np.abs(by_runs[1] - by_runs[None]).max() <= 1e-6


def test_progress_says_which_pages_are_stored_behind_those_read(tmp_path: Path) -> None:
    """A PDF's progress: ``pages`` as they are read, and ``stored`` as each batch's points
    land (what ``vistarag ingest`` counts for its pages/s), in page order up to the last. The
    first pages' points wait for the document's metadata (``docmeta.BODY_PAGES``)."""
    settings = Settings(_env_file=None, home=tmp_path / "home", joint_model="none",
                        synthesizer="extractive", ingest_batch_units=8)
    events: list[tuple[str, float, float | None]] = []
    result = Engine(settings).ingestor().ingest_file(
        make_glyph_pdf(tmp_path / "glyphs.pdf", pages=30),
        on_progress=lambda stage, done, total: events.append((stage, done, total)))
    assert result.status == "added" and result.pages == 30
    stored = [(done, total) for stage, done, total in events if stage == "stored"]
    assert len(stored) >= 2 and stored[-1] == (30, 30)  # several batches, the last page last
    assert [d for d, _ in stored] == sorted({d for d, _ in stored})
    read = 0.0
    for stage, done, _ in events:
        if stage == "pages":
            read = done
        elif stage == "stored":
            assert done <= read  # a page is stored only once it has been read


def test_progress_says_which_page_is_being_ocred(tmp_path: Path) -> None:
    """OCR takes seconds a page where reading a text layer takes milliseconds, so a scanned
    page reports ``ocr`` before its OCR (and ``pages`` after); text pages never do. An image
    file reports ``ocr`` too."""
    doc = pymupdf.open()
    doc.new_page(width=360, height=200).insert_text((36, 60), "Fleet report: " * 12)
    scan = doc.new_page(width=360, height=200)
    scan.insert_image(scan.rect, stream=_png(text_image(SCAN_LINES[:3], size=(720, 400))))
    doc.save(tmp_path / "half_scanned.pdf")
    shot = tmp_path / "shot.png"
    text_image(["Certificate expired"], size=(400, 120)).save(shot)
    settings = Settings(_env_file=None, home=tmp_path / "home", joint_model="none",
                        synthesizer="extractive")
    ingestor = Engine(settings).ingestor()
    events: list[tuple[str, float, float | None]] = []
    for path in (tmp_path / "half_scanned.pdf", shot):
        result = ingestor.ingest_file(
            path, on_progress=lambda stage, done, total: events.append((stage, done, total)))
        assert result.status == "added"
    reading = [e for e in events if e[0] in ("ocr", "pages")]
    assert reading == [("pages", 1, 2), ("ocr", 2, 2), ("pages", 2, 2), ("ocr", 1, 1)]


def test_workers_reach_the_text_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file ingested by one of N workers asks the text model for at most N runs at once; a
    file ingested on its own (an upload) for the default."""
    files = sorted(make_small_files(tmp_path / "small", n=2).iterdir())
    settings = Settings(_env_file=None, home=tmp_path / "home", joint_model="none",
                        synthesizer="extractive")
    engine = Engine(settings)
    encoder = engine.models.text_encoder
    asked = []
    encode = encoder.encode_document

    def spy(items, batch_size=32, max_tokens=None, runs=None):  # noqa: ANN001, ANN202
        asked.append(runs)
        return encode(items, batch_size, max_tokens, runs)

    monkeypatch.setattr(encoder, "encode_document", spy)
    ingestor = engine.ingestor()
    for workers, file in zip((1, 3), files, strict=True):
        asked.clear()
        ingestor.ingest_selection(select([file]), workers=workers)
        assert asked and set(asked) == {workers}
    asked.clear()
    (tmp_path / "upload.md").write_text("An uploaded note about forklift brakes.")
    assert ingestor.ingest_file(tmp_path / "upload.md").status == "added"
    assert asked == [None]


def test_read_ahead_keeps_order_raises_and_stops_the_producer() -> None:
    assert list(read_ahead(iter(range(50)), depth=2)) == list(range(50))
    closed = threading.Event()

    def failing():
        try:
            yield 1
            raise ValueError("page 2 could not be read")
        finally:
            closed.set()

    with pytest.raises(ValueError, match="page 2"):
        list(read_ahead(failing()))
    assert closed.is_set()
    produced = []

    def endless():
        try:
            n = 0
            while True:
                produced.append(n)
                yield n
                n += 1
        finally:
            closed.set()

    closed.clear()
    groups = read_ahead(endless(), depth=2)
    assert next(groups) == 0
    groups.close()  # the consumer stops: so does the producer, and its generator is closed
    assert closed.is_set() and len(produced) <= 5


def test_map_ordered_keeps_order_on_threads() -> None:
    seen: set[str] = set()

    def work(n: int) -> int:
        seen.add(threading.current_thread().name)
        return n * n

    assert list(map_ordered(work, list(range(20)), 3)) == [n * n for n in range(20)]
    assert any(name.startswith("ingest") for name in seen)


def _stored(engine: Engine) -> Counter[tuple]:
    kb = engine.kb()
    return Counter(
        (Path(p.payload["source"]).name, p.payload["unit"], p.payload["modality"],
         p.payload["text"], p.payload["content_hash"])
        for p in kb.scroll(fields=["source", "unit", "modality", "text", "content_hash"])
    )


def test_two_workers_store_the_same_points_as_one(tmp_path: Path) -> None:
    files = sorted(make_small_files(tmp_path / "small", n=8).iterdir())
    stored = []
    for workers in (1, 2):
        settings = Settings(_env_file=None, home=tmp_path / f"home{workers}", joint_model="none",
                            synthesizer="extractive")
        engine = Engine(settings)
        report = engine.ingestor().ingest_selection(select(files), workers=workers)
        assert [r.status for r in report.results] == ["added"] * len(files)
        assert [Path(r.path).name for r in report.results] == [f.name for f in files]
        stored.append(_stored(engine))
    assert stored[0] == stored[1] and sum(stored[0].values()) > len(files)


def test_cli_ingest_takes_workers(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vistarag.agent.qdrant import close_all
    from vistarag.ui.cli import app

    folder = make_small_files(tmp_path / "small", n=4)
    env = {"VISTARAG_HOME": str(tmp_path / "home"), "VISTARAG_JOINT_MODEL": "none",
           "VISTARAG_KB": None, "VISTARAG_QDRANT_URL": None, "COLUMNS": "400"}
    try:
        result = CliRunner().invoke(app, ["ingest", str(folder), "--workers", "3"], env=env)
        bad = CliRunner().invoke(app, ["ingest", str(folder), "--workers", "0"], env=env)
    finally:
        close_all()
    assert result.exit_code == 0, result.output
    assert "4 files: 4 added" in result.stderr
    assert bad.exit_code == 2 and "--workers" in bad.output


def _embed_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ingest-embed")]


def _home_free(payload: dict) -> dict:
    """A payload without its document id (keyed by each data dir's own secret)."""
    out = {k: v for k, v in payload.items() if k != "doc_id"}
    out["metadata"] = {k: v for k, v in payload["metadata"].items() if k != "doc_id"}
    return out


def test_a_batch_in_flight_stores_what_one_batch_stores(tmp_path: Path) -> None:
    """Batches of 3 units (the next one embedding while the last is written) store the very
    points, payloads and vectors that one batch of 128 stores: pooled page vectors, document
    metadata and the completion flag included."""
    pdf = make_glyph_pdf(tmp_path / "glyphs.pdf", pages=8)
    stored = []
    for units in (3, 128):
        settings = Settings(_env_file=None, home=tmp_path / f"home{units}", joint_model="none",
                            synthesizer="extractive", ingest_batch_units=units)
        engine = Engine(settings)
        assert engine.ingestor().ingest_paths([pdf]).count("added") == 1
        stored.append({p.payload["unit"]: p for p in engine.kb().scroll(with_vectors=True)})
    small, big = stored
    assert small.keys() == big.keys() and len(big) > 16
    for unit, point in big.items():
        assert _home_free(small[unit].payload) == _home_free(point.payload), unit
        assert small[unit].vector.keys() == point.vector.keys(), unit
        np.testing.assert_allclose(small[unit].vector["text"], point.vector["text"], atol=1e-6)
    assert sum(1 for p in big.values() if p.payload.get("complete")) == 1
    assert not _embed_threads()


def test_an_extractor_failing_with_a_batch_in_flight_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from vistarag.agent.errors import IngestError
    from vistarag.agent.ingest import pipeline

    real = pipeline.get_extractor("pdf")

    def cut(path: Path, ctx: object):
        for n, group in enumerate(real.extract(path, ctx), 1):
            yield group
            if n == 5:
                raise IngestError(str(path), "the file was cut off at page 6")

    pdf = make_glyph_pdf(tmp_path / "glyphs.pdf", pages=8)
    settings = Settings(_env_file=None, home=tmp_path / "home", joint_model="none",
                        synthesizer="extractive", ingest_batch_units=3)
    engine = Engine(settings)
    monkeypatch.setattr(pipeline, "get_extractor", lambda kind: replace(real, extract=cut))
    report = engine.ingestor().ingest_paths([pdf])
    assert report.count("error") == 1 and "cut off at page 6" in report.results[0].message
    assert not _embed_threads()
    assert not [p for p in engine.kb().scroll() if p.payload.get("complete")]
    monkeypatch.undo()
    assert engine.ingestor().ingest_paths([pdf]).count("added") == 1  # nothing half-stored


def test_a_document_first_batch_is_small_so_the_text_model_starts_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batch of a document is about two pages (``FIRST_BATCH_UNITS``), so the text
    model starts while the rest is read rather than after the first 128 units; later batches
    are full size."""
    from vistarag.agent.ingest.pipeline import FIRST_BATCH_UNITS

    pdf = make_glyph_pdf(tmp_path / "glyphs.pdf", pages=40)
    engine = Engine(Settings(_env_file=None, home=tmp_path / "home", joint_model="none",
                             synthesizer="extractive"))
    encoder = engine.models.text_encoder
    real = encoder.encode_document
    texts_per_call: list[int] = []

    def counting(texts, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        texts_per_call.append(len(texts))
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(encoder, "encode_document", counting)
    assert engine.ingestor().ingest_paths([pdf]).count("added") == 1
    first, *later = texts_per_call
    assert 0 < first <= FIRST_BATCH_UNITS < max(later), texts_per_call


def test_pdf_reading_does_not_start_pymupdfs_layout_model(tmp_path: Path) -> None:
    """pymupdf-layout (a pymupdf dependency) loads an ONNX model when pymupdf is imported;
    VistaRAG never uses it, so a process that reads PDFs through it does not load it, and
    code that wants it can still turn it on by importing it."""
    import subprocess
    import sys

    pdf = make_glyph_pdf(tmp_path / "glyphs.pdf", pages=2)
    probe = (
        "import importlib.util, sys\n"
        "from pathlib import Path\n"
        "from collections import Counter\n"
        "from vistarag.agent.ingest.pdf import iter_pdf_pages\n"
        "import pymupdf\n"
        f"pages = iter_pdf_pages(Path({str(pdf)!r}), None, max_pages=10, max_chars=1200,"
        " render_dpi=72, warnings=[], stats=Counter())\n"
        "units = [u for page in pages for u in page]\n"
        "print('UNITS', len(units))\n"
        "print('LAYOUT', pymupdf._get_layout is not None, 'pymupdf.layout' in sys.modules)\n"
        "if importlib.util.find_spec('pymupdf.layout') is not None:\n"
        "    import pymupdf.layout\n"
        "    print('LATER', pymupdf._get_layout is not None)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300)
    out = done.stdout + done.stderr
    assert "LAYOUT False False" in out, out
    assert int(out.split("UNITS")[1].split()[0]) > 0, out
    if "LATER" in out:
        assert "LATER True" in out, out
