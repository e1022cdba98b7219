"""Subtitles: SubRip (.srt) and WebVTT (.vtt) cues as timed text.

Beside a video with the same stem (``talk.mp4`` + ``talk.srt`` or ``talk.en.vtt``) they are
the video's transcript, preferred over speech recognition; on their own they are ingested as a
document of timed text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from vistarag.agent.errors import IngestError
from vistarag.agent.ingest.textfiles import decode_text
from vistarag.agent.ingest.timed import TimedText, chunk_unit, merge_segments
from vistarag.agent.ingest.units import Unit

if TYPE_CHECKING:
    from vistarag.agent.ingest.registry import ExtractContext

SUBTITLE_SUFFIXES = {".srt", ".vtt"}
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_CUE_TIMING = re.compile(_TIME + r"\s*-->\s*" + _TIME)
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")


def _seconds(h: str | None, m: str, s: str, frac: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000


def parse_subtitles(text: str) -> list[TimedText]:
    """Cues of an SRT or WebVTT text, in time order, markup removed."""
    cues: list[TimedText] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = block.strip("\n").split("\n")
        for i, line in enumerate(lines):
            match = _CUE_TIMING.search(line)
            if match is None:
                continue
            g = match.groups()
            start, end = _seconds(*g[:4]), _seconds(*g[4:])
            body = " ".join(html.unescape(_TAG.sub("", ln)).strip() for ln in lines[i + 1 :])
            if body.strip():
                cues.append(TimedText(start, max(end, start), " ".join(body.split())))
            break
    cues.sort(key=lambda c: c.start)
    return cues


def load_subtitles(path: Path) -> list[TimedText]:
    """Parse a subtitle file, or raise IngestError saying what is wrong."""
    try:
        text = decode_text(path, path.read_bytes())  # UTF-16 .srt files are common
    except OSError as exc:
        raise IngestError(str(path), f"cannot read the subtitles ({exc})") from exc
    cues = parse_subtitles(text)
    if not cues:
        raise IngestError(str(path), "no subtitle cues found (expected SubRip .srt or WebVTT)")
    return cues


def sidecar_for(video: Path) -> Path | None:
    """The subtitle file beside ``video``: same stem (``talk.srt``) or a language variant."""
    for suffix in (".srt", ".vtt"):
        exact = video.with_suffix(suffix)
        if exact.is_file():
            return exact
    variants = sorted(
        p
        for p in video.parent.glob(f"{glob_escape(video.stem)}.*")
        if p.suffix.lower() in SUBTITLE_SUFFIXES and p.is_file()
    )
    return variants[0] if variants else None


def video_for_sidecar(subtitle: Path) -> Path | None:
    """The video a subtitle file belongs to, if one with its stem sits beside it."""
    from vistarag.agent.ingest.video import VIDEO_SUFFIXES

    stems = {subtitle.stem}
    if "." in subtitle.stem:  # talk.en.srt -> talk
        stems.add(subtitle.stem.rsplit(".", 1)[0])
    for stem in stems:
        for suffix in VIDEO_SUFFIXES:
            candidate = subtitle.with_name(stem + suffix)
            if candidate.is_file():
                return candidate
    return None


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]])", r"[\1]", text)


def subtitle_groups(
    cues: list[TimedText], max_chars: int, title: str, keyframe_at=None
) -> Iterator[list[Unit]]:
    """Transcript units (origin ``subtitle``) from cues; ``keyframe_at(t)`` names a blob."""
    for i, chunk in enumerate(merge_segments(cues, max_chars)):
        blob_of = keyframe_at(chunk[0].start) if keyframe_at else None
        yield [chunk_unit(chunk, f"sub{i}", "subtitle", title, blob_of)]


def iter_subtitle_file(path: Path, ctx: ExtractContext) -> Iterator[list[Unit]]:
    """Registry extractor for a subtitle file on its own."""
    cues = load_subtitles(path)
    ctx.stats["transcript_segments"] = len(cues)
    ctx.stats["duration_s"] = cues[-1].end
    yield from subtitle_groups(cues, transcript_chars(ctx.settings.chunk_chars), path.name)


def transcript_chars(chunk_chars: int) -> int:
    """Readable chunk length for timed text: a few sentences, so a hit points at a moment."""
    return max(160, min(chunk_chars, 480))
