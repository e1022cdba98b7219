"""Plain text and Markdown files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from vistarag.agent.errors import IngestError
from vistarag.agent.ingest.chunking import pack_text
from vistarag.agent.ingest.units import Extraction, Unit

if TYPE_CHECKING:
    from vistarag.agent.ingest.registry import ExtractContext

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}


def extract_text_file(path: Path, max_chars: int) -> Extraction:
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise IngestError(str(path), "looks like binary data, not text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    chunks = pack_text(text, max_chars)
    if not chunks:
        raise IngestError(str(path), "contains no text")
    units = [
        Unit(key=f"t{i}", modality="text", text=chunk, payload={"title": path.name})
        for i, chunk in enumerate(chunks)
    ]
    return Extraction(units=units, kind="text")


def iter_text_file(path: Path, ctx: ExtractContext) -> Iterator[list[Unit]]:
    """Registry extractor: chunks in groups of 64."""
    units = extract_text_file(path, ctx.settings.chunk_chars).units
    for i in range(0, len(units), 64):
        yield units[i : i + 64]
