"""Image and OCR helpers shared by ingestion and queries: decode a file safely, flatten to RGB,
OCR at a bounded size, render a PDF page, and the words of a file name."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageOps, UnidentifiedImageError

from vistarag.agent.errors import IngestError
from vistarag.agent.ocr import OcrLine, RapidOcrEngine

if TYPE_CHECKING:
    import pymupdf

OCR_MAX_SIDE = 2000
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
    """Decode an image fully (first frame of animations), or raise IngestError saying why."""
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
        raise IngestError(str(path), f"image is too large to decode safely ({exc})") from exc
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
    histogram = grey.histogram()
    half, seen, paper = (grey.width * grey.height) / 2, 0, 0
    for level, count in enumerate(histogram):
        seen += count
        if seen >= half:
            paper = level
            break
    darkest, lightest = grey.getextrema()  # type: ignore[misc]
    return paper - darkest <= BLANK_LEVELS and lightest - paper <= BLANK_LEVELS


def ocr_image(ocr: RapidOcrEngine, image: Image.Image) -> list[OcrLine]:
    """OCR at a bounded size; boxes are returned in the original image's pixels. A blank
    image (``looks_blank``) reads nothing without running the OCR models."""
    if looks_blank(image):
        return []
    scale = 1.0
    img = image
    if max(image.size) > OCR_MAX_SIDE:
        scale = OCR_MAX_SIDE / max(image.size)
        img = image.resize((round(image.width * scale), round(image.height * scale)))
    lines = ocr.read(img)
    if scale == 1.0:
        return lines
    return [
        OcrLine(ln.text, ln.score, tuple(v / scale for v in ln.bbox))  # type: ignore[arg-type]
        for ln in lines
    ]
