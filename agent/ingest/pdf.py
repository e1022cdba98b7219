"""PDFs with PyMuPDF: text chunks with boxes, embedded figures with captions, page renders, OCR.

Coordinates are PDF points in the page's visible (rotated) space; pages are 1-based.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from vistarag.agent.blobs import PageRender, sha256_file
from vistarag.agent.errors import IngestError
from vistarag.agent.imaging import ocr_image, render_page
from vistarag.agent.ingest.chunking import (
    Block,
    clean,
    pack_blocks,
    repair,
    vocabulary,
    without_amounts,
)
from vistarag.agent.ingest.images import ocr_units
from vistarag.agent.ingest.tables import find_tables, lines_from_words, table_chunks
from vistarag.agent.ingest.units import Extraction, Unit
from vistarag.agent.ocr import RapidOcrEngine, lines_to_text
from vistarag.agent.pdflib import pymupdf

if TYPE_CHECKING:
    from vistarag.agent.ingest.registry import ExtractContext

MIN_FIGURE_PT = 48  # figures smaller than this (either side, in points) are icons or rules
OCR_DPI = 200
# A scanned page is OCRed at most this many pixels on its longer side (145 dpi on a letter page:
# 10 pt text is 20 px high). Measured on a 150 dpi scan of a letter page (evals/bench_messy):
# at 2,200 px the OCR took 7.6 CPU-s and 350 MiB more memory, at 1,600 px 5.7 CPU-s and 190 MiB,
# and read its first line better (the upsampled scan had blurred it).
SCAN_OCR_MAX_SIDE = 1600
CAPTION_GAP_PT = 60
_CAPTION_START = re.compile(r"^\s*(fig(ure)?|table|chart|image|photo|diagram)\.?\s*\d*", re.I)
MIN_TEXT_LAYER_CHARS = 20


def open_pdf(path: Path, max_pages: int) -> pymupdf.Document:
    """Open a PDF or raise IngestError saying what is wrong with it."""
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as exc:  # PyMuPDF raises FileDataError / RuntimeError variants
        raise IngestError(str(path), f"not a readable PDF ({exc})") from exc
    if not doc.is_pdf:  # MuPDF goes by the content: HTML or an image named .pdf opens too
        problem = _not_a_pdf((doc.metadata or {}).get("format") or "")
        doc.close()
        raise IngestError(str(path), problem)
    if doc.needs_pass or doc.is_encrypted:
        doc.close()
        raise IngestError(str(path), "PDF is encrypted (password protected); decrypt it first")
    if doc.page_count == 0:
        doc.close()
        raise IngestError(str(path), "PDF has no pages (the file is truncated or damaged)")
    if doc.page_count > max_pages:
        count = doc.page_count
        doc.close()
        raise IngestError(
            str(path),
            f"PDF has {count} pages, over the limit of {max_pages} (raise VISTARAG_MAX_PDF_PAGES)",
        )
    return doc


def _not_a_pdf(detected: str) -> str:
    """What to tell the user about a .pdf whose content MuPDF reads as ``detected`` (its
    ``format``: "HTML5", "Image", "XPS", ...). Such a document has no PDF objects, and
    PyMuPDF's PDF calls (``Page.xref``) crash the process on it, so it is never read."""
    if detected.lower().startswith(("html", "xhtml")):
        return ("not a PDF: its content is a web page (HTML) saved under a .pdf name; "
                "print it to PDF or take a screenshot of it")
    if detected.lower() == "image":
        return ("not a PDF: its content is an image saved under a .pdf name; "
                "give it its image extension (.png, .jpg) to ingest it as an image")
    return f"not a PDF: its content is {detected or 'another format'}; convert it to PDF"


def _text_blocks(page: pymupdf.Page, textpage: pymupdf.TextPage | None = None) -> list[Block]:
    """Text blocks in reading order, words repaired (ligatures, hyphenation, letter spacing)."""
    raw = [b for b in page.get_text("blocks", sort=True, textpage=textpage)
           if b[6] == 0 and b[4].strip()]
    vocab = vocabulary(b[4] for b in raw)
    return [Block(repair(text, vocab), (x0, y0, x1, y1)) for x0, y0, x1, y1, text, *_ in raw]


def _table_units(
    page: pymupdf.Page, page_no: int, max_chars: int, textpage: pymupdf.TextPage | None = None
) -> list[Unit]:
    """Tables of a text-layer page as row chunks that keep row labels and column headers."""
    try:
        words = [(*w[:4], repair(w[4])) for w in page.get_text("words", textpage=textpage)]
        tables = find_tables(lines_from_words(words))
    except Exception:  # a table we cannot read is still in the page's plain text chunks
        return []
    return [
        Unit(
            key=f"p{page_no}-tab{i}",
            modality="text",
            text=text,
            dense_text=without_amounts(text),
            page=page_no,
            bbox=[round(v, 1) for v in bbox],
            blob_of=f"p{page_no}",
            payload={"from": "pdf-table"},
        )
        for i, (text, bbox) in enumerate(table_chunks(tables, max_chars))
    ]


def _caption_for(rect: pymupdf.Rect, blocks: list[Block]) -> str:
    """The text block right below (preferred) or above a figure, if close enough."""
    best: tuple[float, str] | None = None
    for block in blocks:
        x0, y0, x1, y1 = block.bbox  # type: ignore[misc]
        overlaps = min(x1, rect.x1) - max(x0, rect.x0) > 0
        if not overlaps:
            continue
        below = y0 - rect.y1
        above = rect.y0 - y1
        gap = below if below >= -2 else (above + 10 if above >= -2 else None)
        if gap is None or gap > CAPTION_GAP_PT:
            continue
        if _CAPTION_START.match(block.text):
            gap -= CAPTION_GAP_PT  # a "Figure 3 ..." line wins over plain nearby text
        if best is None or gap < best[0]:
            best = (gap, clean(block.text))
    return best[1][:500] if best else ""


def _text_inside(rect: pymupdf.Rect, blocks: list[Block]) -> str:
    """Text of the blocks whose centre lies inside ``rect`` (OCR lines on a scanned figure)."""
    inside = [
        clean(b.text)
        for b in blocks
        if b.bbox and rect.contains(pymupdf.Point((b.bbox[0] + b.bbox[2]) / 2,
                                                   (b.bbox[1] + b.bbox[3]) / 2))
    ]
    return "\n".join(inside)[:500]


FIGURE_OCR_WORDS = 8  # fewer words of the text layer inside a figure: OCR it (a chart's labels)
PAGE_COVER = 0.85  # an image over this share of a scanned page is the page: its render stands in


def _stage(stats: Counter[str], name: str) -> contextlib.AbstractContextManager[None]:
    """Times a block into ``stats[name + '_s']`` (see ``_timed`` and ``bench_messy``)."""
    return _timed(stats, f"{name}_s")


@contextlib.contextmanager
def _timed(stats: Counter[str], key: str) -> Iterator[None]:
    """Wall seconds under ``key``, this thread's CPU seconds under ``key + '_cpu'``."""
    started, cpu = time.perf_counter(), time.thread_time()
    try:
        yield
    finally:
        stats[key] += time.perf_counter() - started  # type: ignore[assignment]
        stats[f"{key}_cpu"] += time.thread_time() - cpu  # type: ignore[assignment]


_INLINE_IMAGE = re.compile(rb"(?<![^\s\]>)}])BI(?=[\s/])")
_REFERENCE = re.compile(r"(\d+) 0 R")
_IMAGE_RESOURCES = ("XObject", "Shading", "Pattern")  # images, forms, shadings (drawn as images)


def draws_no_images(page: pymupdf.Page) -> bool:
    """True when the page certainly places no image, read from its resources and content
    without interpreting it (0.35 ms against the 1.4 ms of ``get_image_info`` on a filing's
    page): no image or form XObjects, shadings, patterns, Type3 fonts, annotations drawn from
    an appearance (a link has none), soft masks or inline images. Any doubt (inherited
    resources, a damaged object) answers False."""
    try:
        return _draws_no_images(page)
    except Exception:  # a damaged resource: the image pass decides
        return False


def _draws_no_images(page: pymupdf.Page) -> bool:
    doc = page.parent
    xref = page.xref
    if doc.xref_get_key(xref, "Resources")[0] not in ("xref", "dict"):
        return False
    if any(doc.xref_get_key(xref, f"Resources/{key}")[0] != "null" for key in _IMAGE_RESOURCES):
        return False
    if _annotations_drawn(doc, doc.xref_get_key(xref, "Annots")):
        return False
    if any(font[2] == "Type3" for font in page.get_fonts()):
        return False
    if _soft_masks(doc, doc.xref_get_key(xref, "Resources/ExtGState")):
        return False
    content = page.read_contents()
    return b"BI" not in content or not _INLINE_IMAGE.search(content)


def _annotations_drawn(doc: pymupdf.Document, annots: tuple[str, str]) -> bool:
    """True unless the page's annotations (an ``xref_get_key`` answer) certainly draw nothing:
    none, or only ones without an appearance stream (links)."""
    kind, value = annots
    if kind == "null":
        return False
    refs, rest = _references(value)
    if kind != "array" or rest.strip("[] "):
        return True  # an indirect array or an annotation written inline: not read here
    return any(doc.xref_get_key(ref, "AP")[0] != "null" for ref in refs)


def _soft_masks(doc: pymupdf.Document, states: tuple[str, str]) -> bool:
    """True unless the graphics states (an ``xref_get_key`` answer) certainly set no soft
    mask (a soft mask is a group drawn like a form)."""
    kind, value = states
    if kind == "null":
        return False
    if kind == "xref":
        value = doc.xref_object(int(value.split()[0]), compressed=True)
    elif kind != "dict":
        return True
    refs, rest = _references(value)
    return "SMask" in rest or any(
        doc.xref_get_key(ref, "SMask") not in (("null", "null"), ("name", "/None"))
        for ref in set(refs)
    )


def _references(value: str) -> tuple[list[int], str]:
    """The object numbers a PDF value refers to (``12 0 R``), and the value without them."""
    return [int(n) for n in _REFERENCE.findall(value)], _REFERENCE.sub("", value)


def _triage(
    page: pymupdf.Page, scanned: bool, seen: set[bytes], stats: Counter[str]
) -> list[pymupdf.Rect]:
    """The boxes of the page's images worth a figure unit. Left out, and never OCRed or
    embedded: images under ``MIN_FIGURE_PT`` on a side (glyphs, check boxes, icons, rules), an
    image already placed earlier in the document (a logo on every page: the same pixels, by
    MD5), and on a scanned page the scan itself (the page render and its OCR stand for it).
    A page that ``draws_no_images`` is not interpreted a second time to find out."""
    boxes: list[pymupdf.Rect] = []
    if draws_no_images(page):
        return boxes
    area = max(page.rect.width * page.rect.height, 1.0)
    for info in page.get_image_info(hashes=True):
        stats["images_placed"] += 1
        rect = pymupdf.Rect(info["bbox"]) & page.rect
        if rect.is_empty or rect.width < MIN_FIGURE_PT or rect.height < MIN_FIGURE_PT:
            stats["images_tiny"] += 1
            continue
        digest = bytes(info.get("digest") or b"") or repr(tuple(rect)).encode()
        if digest in seen:
            stats["images_repeated"] += 1
            continue
        seen.add(digest)
        if scanned and rect.width * rect.height >= PAGE_COVER * area:
            stats["images_page_scan"] += 1
            continue
        boxes.append(rect)
    return boxes


def _figures(
    page: pymupdf.Page, page_no: int, blocks: list[Block], boxes: list[pymupdf.Rect],
    ocr: RapidOcrEngine | None = None, stats: Counter[str] | None = None,
) -> list[Unit]:
    """Figure units for the triaged image ``boxes``: the crop, its caption, and (with ``ocr``,
    for figures the text layer has no words inside) what OCR reads in it: chart labels."""
    stats = stats if stats is not None else Counter()
    units: list[Unit] = []
    for rect in boxes:
        caption = _caption_for(rect, blocks) or _text_inside(rect, blocks)
        with _stage(stats, "render"):
            crop = render_page(page, 150, clip=rect)
        text = caption
        if ocr is not None and len(_text_inside(rect, blocks).split()) < FIGURE_OCR_WORDS:
            with _stage(stats, "ocr"):
                read = lines_to_text(ocr_image(ocr, crop)).strip()
            stats["ocr_runs"] += 1
            text = "\n".join(t for t in (caption, read) if t)
        units.append(
            Unit(
                key=f"p{page_no}-fig{len(units)}",
                modality="image",
                text=text,
                image=crop,
                page=page_no,
                bbox=[round(v, 1) for v in rect],
                payload={"caption": caption, "from": "pdf-figure"},
            )
        )
    return units


def _render(
    page: pymupdf.Page, dpi: int, max_side: int | None, stats: Counter[str]
) -> Image.Image:
    with _stage(stats, "render"):
        return render_page(page, dpi, max_side=max_side)


def extract_pdf(
    path: Path, ocr: RapidOcrEngine, max_pages: int, max_chars: int, render_dpi: int,
    max_side: int | None = None,
) -> Extraction:
    """All units of a PDF at once (small files, tests); ingestion streams ``iter_pdf_pages``."""
    warnings: list[str] = []
    stats: Counter[str] = Counter()
    pages = iter_pdf_pages(path, ocr, max_pages, max_chars, render_dpi, warnings, stats,
                           max_side=max_side)
    units = [unit for group in pages for unit in group]
    return Extraction(units=units, kind="pdf", pages=stats["pages"], warnings=warnings)


def iter_pdf(path: Path, ctx: ExtractContext) -> Iterator[list[Unit]]:
    """Registry extractor: one group per page, so only one page's renders are held at once."""
    s = ctx.settings
    yield from iter_pdf_pages(
        path, ctx.models.ocr, s.max_pdf_pages, s.chunk_chars, s.page_render_dpi, ctx.warnings,
        ctx.stats, lambda done, total: ctx.progress("pages", done, total),
        on_ocr=lambda page, total: ctx.progress("ocr", page, total),
        max_side=s.thumbnail_px,
        # a joint model embeds every page's image, so it needs them now
        defer_renders=s.render_text_pages_later and ctx.models.joint is None,
        file_sha256=ctx.file_sha256,
    )


def iter_pdf_pages(
    path: Path,
    ocr: RapidOcrEngine,
    max_pages: int,
    max_chars: int,
    render_dpi: int,
    warnings: list[str],
    stats: Counter[str],
    on_page: Callable[[int, int], None] | None = None,
    on_ocr: Callable[[int, int], None] | None = None,
    max_side: int | None = None,
    defer_renders: bool = False,
    file_sha256: str | None = None,
) -> Iterator[list[Unit]]:
    """The units of a PDF, one page at a time; pages without a text layer are OCRed. After
    each page ``on_page(page, pages)``; before a page's OCR (seconds, where reading a page
    takes milliseconds) ``on_ocr(page, pages)``. Page renders are at ``render_dpi``, at most
    ``max_side`` pixels on their longer side. With ``defer_renders``, a page whose text layer
    holds all of it (not scanned, no figures) is not rendered now: its unit carries how to
    render it when its image is first asked for, keyed by ``file_sha256`` (hashed here when
    the caller has not)."""
    doc = open_pdf(path, max_pages)
    content = (file_sha256 or sha256_file(path)) if defer_renders else ""
    resolved = str(path.resolve())  # once: resolving stats every folder of the path
    stats["pages"] = doc.page_count
    title = (doc.metadata or {}).get("title") or ""
    produced = 0
    seen_images: set[bytes] = set()
    try:
        for index in range(doc.page_count):
            page_no = index + 1
            units: list[Unit] = []
            try:
                with _stage(stats, "parse"):
                    page = doc.load_page(index)
                    textpage = page.get_textpage(flags=pymupdf.TEXTFLAGS_BLOCKS)
                    blocks = _text_blocks(page, textpage)
                page_key = f"p{page_no}"
                page_text = "\n".join(clean(b.text) for b in blocks)
                scanned = len(page_text) < MIN_TEXT_LAYER_CHARS
                with _stage(stats, "triage"):
                    boxes = _triage(page, scanned, seen_images, stats)
                if scanned:
                    if on_ocr is not None:
                        on_ocr(page_no, doc.page_count)
                    with _stage(stats, "render"):
                        image = render_page(page, OCR_DPI, max_side=SCAN_OCR_MAX_SIDE)
                    with _stage(stats, "ocr"):
                        lines = ocr_image(ocr, image)
                    stats["ocr_runs"] += 1
                    scale = page.rect.width / image.width
                    del image
                    units += ocr_units(lines, max_chars, page_key, page=page_no, scale=scale)
                    page_text = lines_to_text(lines)
                    # On a scanned page, what OCR read inside a figure stands in for its text.
                    blocks = [Block(ln.text, tuple(v * scale for v in ln.bbox)) for ln in lines]
                else:
                    with _stage(stats, "tables"):
                        tables = _table_units(page, page_no, max_chars, textpage)
                    with _stage(stats, "chunk"):
                        chunks = pack_blocks(blocks, max_chars)
                    for i, chunk in enumerate(chunks):
                        units.append(
                            Unit(
                                key=f"{page_key}-t{i}",
                                modality="text",
                                text=chunk.text,
                                page=page_no,
                                bbox=[round(v, 1) for v in chunk.bbox] if chunk.bbox else None,
                                blob_of=page_key,
                            )
                        )
                    units += tables
                figures = _figures(page, page_no, blocks, boxes, ocr, stats)
                units += figures
                later = None
                if defer_renders and not scanned and not figures:
                    later = PageRender(resolved, content, index, render_dpi, max_side)
                units.append(
                    Unit(
                        key=page_key,
                        modality="page",
                        text=page_text[:1500],
                        text_vector_from=tuple(u.key for u in units if u.modality == "text"),
                        image=None if later else _render(page, render_dpi, max_side, stats),
                        render=later,
                        page=page_no,
                        bbox=[round(v, 1) for v in page.rect],
                        payload={"from": "pdf-page"},
                    )
                )
            except IngestError:
                raise
            except Exception as exc:
                warnings.append(f"page {page_no}: could not be read ({exc}); skipped")
            for unit in units:
                unit.payload.setdefault("title", path.name)
                if title:
                    unit.payload.setdefault("pdf_title", title)
            produced += len(units)
            if on_page is not None:
                on_page(page_no, doc.page_count)
            if units:
                yield units
        if doc.is_repaired:
            warnings.append(
                "the PDF was damaged and has been repaired; some content may be missing"
            )
        if not produced:
            raise IngestError(str(path), "no page of this PDF could be read (damaged file)")
    finally:
        doc.close()
