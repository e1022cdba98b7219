"""Image and OCR helpers shared by ingestion and queries: decode a file safely, flatten to RGB,
OCR at a bounded size, render a PDF page, and the words of a file name."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageOps, ImageStat, UnidentifiedImageError

from vistarag.agent.errors import IngestError
from vistarag.agent.ocr import OcrLine, RapidOcrEngine

if TYPE_CHECKING:
    import pymupdf

OCR_MAX_SIDE = 2000
OCR_STRIP_OVERLAP = 200  # rows two strips of a tall image share (``ocr_strips``)
BLANK_CELLS = 200  # ``looks_blank`` averages an image down to this many cells on its longer side
BLANK_LEVELS = 24  # grey levels (of 255) from the paper that still count as blank


def render_page(
    page: pymupdf.Page, dpi: float, clip: pymupdf.Rect | None = None,
    max_side: int | None = None,
) -> Image.Image:
    """The page (or ``clip``) at ``dpi``, or smaller where ``max_side`` pixels is reached first:
    rendering at the stored size costs less than resizing afterwards (6 ms a page)."""
    from vistarag.agent.pdflib import pymupdf

    rect = clip or page.rect
    if max_side:
        dpi = min(dpi, 72.0 * max_side / max(rect.width, rect.height, 1.0))
    zoom = dpi / 72.0
    pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), clip=clip, alpha=False)
    return Image.frombytes("RGB", (pix.width, pix.height), pix.samples)


def title_words(path: Path) -> str:
    """Words from a file name ('red_motorcycle-2.png' -> 'red motorcycle 2')."""
    return re.sub(r"[_\-.]+", " ", path.stem).strip()


def open_image(path: Path, max_pixels: int) -> Image.Image:
    """Decode an image fully (first frame of animations), or raise IngestError saying why.
    ``max_pixels`` is the limit (``VISTARAG_MAX_IMAGE_PIXELS``): Pillow's own guard against
    decompression bombs is raised to it where it is lower, so raising the setting works."""
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise IngestError(
                        str(path),
                        f"image is {width}x{height} = {width * height:,} pixels, over the limit of "
                        f"{max_pixels:,} (raise VISTARAG_MAX_IMAGE_PIXELS to allow it)",
                    )
                im.seek(0)
                im.load()
                frame = ImageOps.exif_transpose(im) or im
                return frame.convert("RGBA" if "A" in frame.getbands() else "RGB")
    except IngestError:
        raise
    except UnidentifiedImageError as exc:
        raise IngestError(
            str(path), f"not a readable image: its content is not {path.suffix.upper()} data"
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        size = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow's "Image size (N pixels)"
        pixels = f"{int(size.group(1)):,} pixels, " if size else ""
        raise IngestError(str(path), f"image is {pixels}over the limit of {max_pixels:,} (raise "
                          "VISTARAG_MAX_IMAGE_PIXELS to allow it)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise IngestError(str(path), f"image data is damaged or truncated ({exc})") from exc


def flatten(image: Image.Image) -> Image.Image:
    """RGB on white, for OCR and embedding."""
    if image.mode == "RGB":
        return image
    rgba = image.convert("RGBA")
    canvas = Image.new("RGB", rgba.size, "white")
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas


def looks_blank(image: Image.Image) -> bool:
    """True when ``image`` holds no mark to read: averaged over cells of 1/200 of its longer
    side (4 pt on a letter page), no cell is more than ``BLANK_LEVELS`` grey levels darker or
    lighter than the paper (the median). A page number alone, or one word, is far over that;
    a blank page, the blank back of a scanned sheet (specks average out) or an empty screenshot
    is not. 2-5 ms on a scanned page, where OCR takes 0.3-3 s. (Video keyframes have a
    stricter test of their own, ``video.has_detail``: a frame of soft edges shows no text.)"""
    grey = image.convert("L")
    grey.thumbnail((BLANK_CELLS, BLANK_CELLS), Image.Resampling.BOX)
    cells = ImageStat.Stat(grey)
    paper, (darkest, lightest) = cells.median[0], cells.extrema[0]
    return paper - darkest <= BLANK_LEVELS and lightest - paper <= BLANK_LEVELS


def ocr_image(ocr: RapidOcrEngine, image: Image.Image) -> list[OcrLine]:
    """OCR at a bounded width; boxes are returned in the original image's pixels. An image
    wider than ``OCR_MAX_SIDE`` is scaled down to it; one taller than that is read in strips
    (``ocr_strips``) at that scale, so a full-page web screenshot keeps the size of its text:
    scaled as a whole to 2,000 px high, a 1280x8000 page's 16 px lines came out garbled
    ("Section 0livskcerhotes"). A blank image (``looks_blank``) reads nothing without running
    the OCR models."""
    if looks_blank(image):
        return []
    scale = min(1.0, OCR_MAX_SIDE / image.width)
    img = image
    if scale < 1.0:
        img = image.resize((OCR_MAX_SIDE, max(1, round(image.height * scale))))
    lines = []
    for top, bottom, keep_from, keep_to in ocr_strips(img.height):
        strip = img if (top, bottom) == (0, img.height) else img.crop((0, top, img.width, bottom))
        for ln in ocr.read(strip):
            x0, y0, x1, y1 = ln.bbox
            if keep_from <= top + (y0 + y1) / 2 < keep_to:
                box = (x0 / scale, (y0 + top) / scale, x1 / scale, (y1 + top) / scale)
                lines.append(OcrLine(ln.text, ln.score, box))
    return lines


def ocr_strips(height: int) -> list[tuple[int, int, float, float]]:
    """(top, bottom, keep_from, keep_to) of each strip of at most ``OCR_MAX_SIDE`` rows that
    a ``height``-row image is read in. Neighbours overlap by at least ``OCR_STRIP_OVERLAP``
    rows, and a line is kept from the strip that holds its centre's row within its keep range
    (the ranges meet mid-overlap): a line up to that overlap high is whole in that strip, and
    a part of it cut off by a strip's edge is never kept."""
    if height <= OCR_MAX_SIDE:
        return [(0, height, 0.0, float(height))]
    step = OCR_MAX_SIDE - OCR_STRIP_OVERLAP
    tops = [*range(0, height - OCR_MAX_SIDE, step), height - OCR_MAX_SIDE]
    bounds = [(tops[i] + OCR_MAX_SIDE + tops[i + 1]) / 2 for i in range(len(tops) - 1)]
    edges = [0.0, *bounds, float(height)]
    return [(top, top + OCR_MAX_SIDE, edges[i], edges[i + 1]) for i, top in enumerate(tops)]
