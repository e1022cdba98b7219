"""Timed text (spoken segments, subtitle cues) merged into readable chunks with their times."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from vistarag.agent.ingest.units import Unit
from vistarag.agent.types import time_range

MAX_GAP_S = 2.0  # a pause this long starts a new chunk, so a chunk's start is when it is said
MAX_SPAN_S = 40.0


@dataclass(frozen=True)
class TimedText:
    """One segment: seconds from the start of the video, and what is said or shown."""

    start: float
    end: float
    text: str


def merge_segments(
    segments: Iterable[TimedText], max_chars: int, max_gap: float = MAX_GAP_S
) -> Iterator[list[TimedText]]:
    """Consecutive segments grouped up to ``max_chars`` (streamed; only one chunk is held).

    A chunk also ends at a pause longer than ``max_gap`` or after ``MAX_SPAN_S`` seconds.
    """
    chunk: list[TimedText] = []
    size = 0
    for seg in segments:
        text = " ".join(seg.text.split())
        if not text:
            continue
        seg = TimedText(seg.start, max(seg.end, seg.start), text)
        if chunk and (
            size + len(text) + 1 > max_chars
            or seg.start - chunk[-1].end > max_gap
            or seg.end - chunk[0].start > MAX_SPAN_S
        ):
            yield chunk
            chunk, size = [], 0
        chunk.append(seg)
        size += len(text) + 1
    if chunk:
        yield chunk


def chunk_unit(
    chunk: list[TimedText], key: str, origin: str, title: str, blob_of: str | None = None
) -> Unit:
    """A ``transcript`` unit for one chunk; ``origin`` is ``speech`` or ``subtitle``."""
    return Unit(
        key=key,
        modality="transcript",
        text=" ".join(seg.text for seg in chunk),
        t_start=round(chunk[0].start, 3),
        t_end=round(chunk[-1].end, 3),
        blob_of=blob_of,
        payload={
            "origin": origin,
            "title": title,
            "time": time_range(chunk[0].start, chunk[-1].end),
            "segments": [
                {"t_start": round(s.start, 3), "t_end": round(s.end, 3), "text": s.text}
                for s in chunk
            ],
        },
    )
