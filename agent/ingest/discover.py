"""Find ingestible files under the paths a user gives; a file's kind comes from the registry."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from vistarag.agent.ingest.registry import REGISTRY, _load_builtins


def kind_of(path: Path) -> str | None:
    """'image', 'pdf', 'text', 'video', 'subtitles' or None (unsupported), by extension."""
    _load_builtins()
    suffix = path.suffix.lower()
    for spec in REGISTRY.values():
        if suffix in spec.suffixes:
            return spec.kind
    return None


def is_sidecar(path: Path) -> bool:
    """A subtitle file beside a video of the same stem (``talk.srt`` next to ``talk.mp4``).

    The video's extractor reads it, so it is not ingested on its own when a folder is walked.
    """
    if kind_of(path) != "subtitles":
        return False
    from vistarag.agent.ingest.subtitles import video_for_sidecar

    return video_for_sidecar(path) is not None


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
                if child.is_file() and kind_of(child) is not None and not is_sidecar(child):
                    yield child
        else:
            yield path
