"""Plain text and Markdown files."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from vistarag.agent.errors import IngestError
from vistarag.agent.ingest.chunking import pack_text
from vistarag.agent.ingest.units import Extraction, Unit

if TYPE_CHECKING:
    from vistarag.agent.ingest.registry import ExtractContext

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}


# UTF-32's byte-order marks begin with UTF-16's: they are tried first
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_text(path: Path, raw: bytes) -> str:
    """The text of a file's bytes: by its byte-order mark (UTF-16, as Windows Notepad saves
    "Unicode", UTF-32, UTF-8 with a BOM; the mark is left out), else UTF-8, else Windows-1252
    (curly quotes and dashes as written), else Latin-1. NUL bytes without a BOM are binary."""
    for mark, codec in BYTE_ORDER_MARKS:
        if raw.startswith(mark):
            try:
                return raw[len(mark):].decode(codec)
            except UnicodeDecodeError as exc:
                name = codec.upper()
                raise IngestError(str(path), f"not valid {name} text: {exc.reason} at byte "
                                  f"{len(mark) + exc.start:,} (it starts with a {name} "
                                  "byte-order mark)") from exc
    if b"\x00" in raw[:4096]:
        raise IngestError(str(path), "looks like binary data, not text")
    for codec in ("utf-8", "cp1252"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def extract_text_file(path: Path, max_chars: int) -> Extraction:
    text = decode_text(path, path.read_bytes())
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
