"""Images and screenshots: validate, decode, OCR, and turn into units."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from vistarag.agent.charts import chart_readings
from vistarag.agent.imaging import flatten, ocr_image, open_image, title_words
from vistarag.agent.ingest.chunking import Block, pack_blocks, union
from vistarag.agent.ingest.units import Extraction, Unit
from vistarag.agent.ocr import OcrLine, RapidOcrEngine, lines_to_text

if TYPE_CHECKING:
    from vistarag.agent.ingest.registry import ExtractContext

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def ocr_units(
    lines: list[OcrLine],
    max_chars: int,
    parent_key: str,
    page: int | None = None,
    scale: float = 1.0,
) -> list[Unit]:
    """Group OCR lines into text units whose bbox is the region they cover; a bar chart's
    values paired with their categories (``charts``) come last, boxed by the whole chart."""
    blocks = [Block(ln.text, tuple(v * scale for v in ln.bbox)) for ln in lines]
    if readings := chart_readings(lines):
        blocks.append(Block(readings, functools.reduce(union, (b.bbox for b in blocks))))
    max_chars = max(120, max_chars // 3)  # small regions, so a citation points somewhere useful
    return [
        Unit(
            key=f"{parent_key}-ocr{i}",
            modality="text",
            text=chunk.text,
            bbox=[round(v, 1) for v in chunk.bbox] if chunk.bbox else None,
            page=page,
            blob_of=parent_key,
            payload={"from": "ocr"},
        )
        for i, chunk in enumerate(pack_blocks(blocks, max_chars))
    ]


def extract_image(path: Path, ocr: RapidOcrEngine, max_pixels: int, max_chars: int) -> Extraction:
    """One image: an image unit (joint vector + OCR/title text) and OCR text units with boxes."""
    image = flatten(open_image(path, max_pixels))
    lines = ocr_image(ocr, image)
    ocr_text = lines_to_text(lines)
    title = title_words(path)
    unit = Unit(
        key="image",
        modality="image",
        text=f"{title}\n{ocr_text}".strip(),
        image=image,
        bbox=[0.0, 0.0, float(image.width), float(image.height)],
        payload={
            "title": path.name,
            "width": image.width,
            "height": image.height,
            "ocr_lines": [
                {"text": ln.text, "bbox": [round(v, 1) for v in ln.bbox]} for ln in lines
            ],
        },
    )
    units = [unit, *ocr_units(lines, max_chars, parent_key="image")]
    return Extraction(units=units, kind="image")


def iter_image(path: Path, ctx: ExtractContext) -> Iterator[list[Unit]]:
    """Registry extractor: one group (the image and its OCR text units)."""
    s = ctx.settings
    ctx.progress("ocr", 1, 1)  # the one thing that takes time here
    yield extract_image(path, ctx.models.ocr, s.max_image_pixels, s.chunk_chars).units
