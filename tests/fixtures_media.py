"""Test media made on the fly (the generators live in vistarag.evals.sample_corpus)."""

from vistarag.evals.sample_corpus import (
    FIGURE_CAPTION,
    PDF_PAGE1,
    PDF_PAGE2,
    PDF_SCANNED_LINES,
    SCREENSHOT_LINES,
    font,
    make_chart,
    make_pdf,
    make_sample_corpus,
    make_screenshot,
    text_image,
)

__all__ = [
    "FIGURE_CAPTION", "PDF_PAGE1", "PDF_PAGE2", "PDF_SCANNED_LINES", "SCREENSHOT_LINES", "font",
    "make_chart", "make_pdf", "make_sample_corpus", "make_screenshot", "text_image",
]
