"""Find ingestible files under the paths a user gives."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from vistarag.agent.ingest.images import IMAGE_SUFFIXES
from vistarag.agent.ingest.textfiles import TEXT_SUFFIXES

PDF_SUFFIXES = {".pdf"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}
SUPPORTED = IMAGE_SUFFIXES | PDF_SUFFIXES | TEXT_SUFFIXES


def kind_of(path: Path) -> str | None:
    """'image', 'pdf', 'text', 'video' or None (unsupported), by extension."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in PDF_SUFFIXES:
        return "pdf"
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


def discover(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named directly, and supported files found recursively in folders (hidden skipped).

    Files named directly are always yielded, so an unsupported or missing one gets reported.
    """
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path).parts
                if any(part.startswith(".") for part in rel):
                    continue
                if child.is_file() and kind_of(child) is not None:
                    yield child
        else:
            yield path
