"""Images and screenshots: validate, decode, OCR, and turn into units."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageOps, UnidentifiedImageError

from vistarag.agent.errors import IngestError
from vistarag.agent.ingest.chunking import Block, pack_blocks
from vistarag.agent.ingest.units import Extraction, Unit
from vistarag.agent.ocr import OcrLine, RapidOcrEngine, lines_to_text

if TYPE_CHECKING:
    from vistarag.agent.ingest.registry import ExtractContext

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
OCR_MAX_SIDE = 2000


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


def ocr_image(ocr: RapidOcrEngine, image: Image.Image) -> list[OcrLine]:
    """OCR at a bounded size; boxes are returned in the original image's pixels."""
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


def ocr_units(
    lines: list[OcrLine],
    max_chars: int,
    parent_key: str,
    page: int | None = None,
    scale: float = 1.0,
) -> list[Unit]:
    """Group OCR lines into text units whose bbox is the region they cover."""
    blocks = [Block(ln.text, tuple(v * scale for v in ln.bbox)) for ln in lines]
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
    yield extract_image(path, ctx.models.ocr, s.max_image_pixels, s.chunk_chars).units
