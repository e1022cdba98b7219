"""A small sample corpus the project generates itself: a PDF, a screenshot, a chart, notes.

Used by ``make run`` (the demo) and by the tests. ``python -m vistarag.evals.sample_corpus DIR``.
"""

from __future__ import annotations

import io
import sys
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
SCREENSHOT_LINES = [
    "Network Settings",
    "Proxy server: proxy.internal:3128",
    "Error code QX-4471: certificate expired",
]
NOTES = """# Onboarding notes

New drivers complete a two-day safety course before their first route.

The depot in Antwerp opens at 05:30 and closes at 22:00 on weekdays.
"""


def font(size: int = 28) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def text_image(
    lines: list[str], size: tuple[int, int] = (900, 300), font_size: int = 30, bg: str = "white"
) -> Image.Image:
    """Black text lines on a plain background."""
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
    ImageDraw.Draw(image).rectangle([0, 0, 1000, 8], fill="#1f6feb")
    image.save(path)
    return path


def make_chart(path: Path, title: str, values: dict[str, int]) -> Path:
    """A bar chart with a title and labelled bars."""
    image = Image.new("RGB", (800, 500), "white")
    draw = ImageDraw.Draw(image)
    draw.text((30, 20), title, fill="black", font=font(32))
    top = max(values.values()) or 1
    for i, (label, value) in enumerate(values.items()):
        x = 80 + i * 170
        height = int(340 * value / top)
        draw.rectangle([x, 440 - height, x + 110, 440], fill="#2e86de")
        draw.text((x, 450), label, fill="black", font=font(24))
        draw.text((x, 440 - height - 32), str(value), fill="black", font=font(24))
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


def make_sample_corpus(root: Path) -> list[Path]:
    """Write the sample corpus into ``root`` and return the files."""
    root.mkdir(parents=True, exist_ok=True)
    notes = root / "onboarding_notes.md"
    notes.write_text(NOTES, encoding="utf-8")
    return [
        make_pdf(root / "zephyr_report.pdf"),
        make_screenshot(root / "network_settings_screenshot.png", SCREENSHOT_LINES),
        make_chart(root / "revenue_chart_2024.png", "Revenue by quarter 2024 (kEUR)",
                   {"Q1": 410, "Q2": 455, "Q3": 472, "Q4": 530}),
        notes,
    ]


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "sample-corpus")
    for file in make_sample_corpus(target):
        print(file)
