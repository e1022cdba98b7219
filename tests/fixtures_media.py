"""Test media made on the fly: screenshots drawn with PIL, PDFs built with PyMuPDF."""

from __future__ import annotations

import io
from pathlib import Path

import pymupdf
from PIL import Image, ImageDraw, ImageFont

PDF_PAGE1 = (
    "Zephyr Logistics annual report. The quarterly revenue of Zephyr Logistics rose fourteen "
    "percent, driven by the new cold-chain warehouse in Rotterdam. Operating costs stayed flat."
)
PDF_PAGE2 = (
    "Fleet maintenance. Every lorry is inspected after 40,000 kilometres. The inspection "
    "checklist covers brakes, tyres, refrigeration units and the tachograph."
)
PDF_SCANNED_LINES = ["Invoice number INV-20931", "Total due 4,250 EUR", "Payable within 30 days"]
FIGURE_CAPTION = "Figure 1: Map of the Rotterdam cold-chain warehouse"


def font(size: int = 28) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def text_image(lines: list[str], size: tuple[int, int] = (900, 300), font_size: int = 30,
               bg: str = "white") -> Image.Image:
    image = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(image)
    y = 20
    for line in lines:
        draw.text((24, y), line, fill="black", font=font(font_size))
        y += int(font_size * 1.6)
    return image


def make_screenshot(path: Path, lines: list[str]) -> Path:
    """A UI-like screenshot: a title bar and lines of text."""
    image = text_image(lines, size=(1000, 60 + 52 * len(lines)))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, 1000, 8], fill="#1f6feb")
    image.save(path)
    return path


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def make_pdf(path: Path) -> Path:
    """3 pages: text + an embedded figure with caption; text; a scanned page (image only)."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(72, 72, 540, 200), PDF_PAGE1, fontsize=11)
    figure = Image.new("RGB", (400, 240), "#c0392b")
    ImageDraw.Draw(figure).rectangle([40, 40, 360, 200], outline="white", width=6)
    page.insert_image(pymupdf.Rect(72, 220, 472, 460), stream=_png_bytes(figure))
    page.insert_textbox(pymupdf.Rect(72, 468, 540, 500), FIGURE_CAPTION, fontsize=10)
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(72, 72, 540, 300), PDF_PAGE2, fontsize=11)
    page = doc.new_page()
    scan = text_image(PDF_SCANNED_LINES, size=(1100, 260), font_size=40)
    page.insert_image(pymupdf.Rect(36, 72, 576, 200), stream=_png_bytes(scan))
    doc.save(path)
    doc.close()
    return path
