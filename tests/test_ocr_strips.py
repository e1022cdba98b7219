"""Tall images (full-page web screenshots) are OCRed in strips at the size of their text, not
scaled down as a whole until their lines are a few pixels high."""

from __future__ import annotations

from difflib import SequenceMatcher

import pytest
from PIL import Image, ImageDraw

from vistarag.agent.imaging import OCR_MAX_SIDE, OCR_STRIP_OVERLAP, ocr_image, ocr_strips
from vistarag.agent.ocr import RapidOcrEngine


@pytest.mark.parametrize("height", [1, 1999, 2000, 2001, 4000, 8000, 12345])
def test_strips_cover_the_image_and_each_row_is_kept_once(height: int) -> None:
    strips = ocr_strips(height)
    assert strips[0][2] == 0 and strips[-1][3] == height
    half = OCR_STRIP_OVERLAP / 2
    for i, (top, bottom, keep_from, keep_to) in enumerate(strips):
        assert 0 <= top < bottom <= height and bottom - top <= OCR_MAX_SIDE
        assert keep_from - top >= (half if i else 0)  # a line up to the overlap high that is
        assert bottom - keep_to >= (half if i < len(strips) - 1 else 0)  # kept here is whole
    for (_, bottom, _, keep_to), (top, _, keep_from, _) in zip(strips, strips[1:], strict=False):
        assert keep_to == keep_from and bottom - top >= OCR_STRIP_OVERLAP


def test_a_full_page_screenshot_is_read_line_by_line_once() -> None:
    """A 1280x6000 page of 16 px lines, some across the strips' edges (1800, 2000) and where
    their keep ranges meet (1900, 3700): every line read once, in order, its box where it was
    drawn. Scaled as a whole to 2,000 px high (the previous code) the lines were 5 px high and
    came out garbled."""
    page = Image.new("RGB", (1280, 6000), "white")
    draw = ImageDraw.Draw(page)
    words = ["invoice", "warehouse", "deployment", "signing", "budget", "forklift", "payroll"]
    ys = sorted({*range(250, 5900, 300), 1790, 1892, 1990, 3695})
    written = [f"Entry {i}: the {words[i % 7]} schedule for {2000 + i}" for i in range(len(ys))]
    for y, text in zip(ys, written, strict=True):
        draw.text((40, y), text, fill="black", font_size=16)
    read = ocr_image(RapidOcrEngine(), page)
    assert len(read) == len(written), [ln.text for ln in read]
    for line, text, y in zip(read, written, ys, strict=True):
        assert SequenceMatcher(None, line.text, text).ratio() > 0.9, (line.text, text)
        assert abs(line.bbox[1] - y) < 12 and line.bbox[0] < 60, (line.bbox, y)
