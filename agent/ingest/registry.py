"""One registry of extractors, chosen by kind; every extractor has the same signature.

An extractor is ``extract(path, ctx) -> Iterator[list[Unit]]``: it yields *groups* of units
(a PDF page, a video keyframe, a transcript chunk) as it reads the file, so the pipeline can
embed and upsert them in batches and memory stays bounded whatever the file's length. Within
a group, and across earlier groups, a unit's ``blob_of`` may name another unit's key; the
target must come in the same group or an earlier one. Counts and warnings go to ``ctx``.
Adding a format is one module plus one ``register`` call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from vistarag.agent.ingest.units import Unit

if TYPE_CHECKING:
    from vistarag.agent.models import Models
    from vistarag.agent.settings import Settings

ProgressCallback = Callable[[str, float, float | None], None]
"""``(stage, done, total)``: e.g. ``("video", 12.5, 600.0)`` seconds of video decoded,
``("pages", 12, 30)`` pages read, ``("ocr", 13, 30)`` page 13 being OCRed (an image file:
``("ocr", 1, 1)``), ``("stored", 8, 30)`` pages whose points are stored (the reader runs a
few batches ahead of the text model)."""


@dataclass
class ExtractContext:
    """What every extractor gets besides the path: settings, models, counters, progress."""

    settings: Settings
    models: Models
    on_progress: ProgressCallback | None = None
    stats: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    file_sha256: str | None = None  # the file's own content hash, where the caller has it

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def progress(self, stage: str, done: float, total: float | None = None) -> None:
        if self.on_progress is not None:
            self.on_progress(stage, done, total)


class Extractor(Protocol):
    def __call__(self, path: Path, ctx: ExtractContext) -> Iterator[list[Unit]]: ...


@dataclass(frozen=True)
class ExtractorSpec:
    """A registered extractor: its kind, the suffixes it claims, and the function."""

    kind: str
    suffixes: frozenset[str]
    extract: Extractor
    companions: Callable[[Path], list[Path]] | None = None
    """Files read along with the main one (a video's sidecar subtitles): part of its version."""


REGISTRY: dict[str, ExtractorSpec] = {}


def register(
    kind: str,
    suffixes: set[str] | frozenset[str],
    extract: Extractor,
    companions: Callable[[Path], list[Path]] | None = None,
) -> None:
    REGISTRY[kind] = ExtractorSpec(
        kind, frozenset(s.lower() for s in suffixes), extract, companions
    )


def get_extractor(kind: str) -> ExtractorSpec:
    _load_builtins()
    return REGISTRY[kind]


def _load_builtins() -> None:
    """Register the built-in extractors (their heavy dependencies still import lazily)."""
    if REGISTRY:
        return
    from vistarag.agent.ingest import images, pdf, subtitles, textfiles, video

    register("image", images.IMAGE_SUFFIXES, images.iter_image)
    register("pdf", {".pdf"}, pdf.iter_pdf)
    register("text", textfiles.TEXT_SUFFIXES, textfiles.iter_text_file)
    register("video", video.VIDEO_SUFFIXES, video.iter_video, video.companions)
    register("subtitles", subtitles.SUBTITLE_SUFFIXES, subtitles.iter_subtitle_file)
