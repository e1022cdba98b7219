"""Videos: keyframes at scene changes, spoken words (or sidecar subtitles), one clip point.

One pass decodes the video stream with PyAV; each frame, downscaled, goes through
PySceneDetect's content detector (cuts) and threshold detector (fades to and from black).
Times are the frames' presentation times, so variable-frame-rate files are right. A scene gets
one keyframe (the clearest of a few frames just after its start), long scenes one more at most
every ``video_keyframe_interval_s``, and a keyframe that looks like the one before it is merged
into it. At most two frames are held at a time. Speech is transcribed in a second pass
(``speech.py``) unless a sidecar ``.srt``/``.vtt`` is present. Last comes one ``clip`` point
whose vectors the pipeline pools from the keyframes (joint) and transcript chunks (text).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from vistarag.agent.errors import IngestError
from vistarag.agent.imaging import ocr_image, title_words
from vistarag.agent.ingest.subtitles import (
    load_subtitles,
    sidecar_for,
    subtitle_groups,
    transcript_chars,
)
from vistarag.agent.ingest.timed import chunk_unit, merge_segments
from vistarag.agent.ingest.units import Unit
from vistarag.agent.ocr import lines_to_text
from vistarag.agent.types import clock, time_range

if TYPE_CHECKING:
    from vistarag.agent.ingest.registry import ExtractContext

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}
INSTALL_HINT = "video support is not installed: pip install 'vistarag[video]'"
DETECT_WIDTH = 256  # scene detection runs on frames this wide
FRAME_PX = 960  # keyframes are kept (for OCR, the joint model, the thumbnail) at this size
MIN_SCENE_S = 0.5  # PySceneDetect's default (15 frames at 30 fps)
SETTLE_S = (0.4, 1.0, 2.0)  # after a cut, also look at these later frames; keep the clearest
DUPLICATE_DIFF = 3.0  # mean absolute difference (0-255) of 32x32 greys: the same picture...
DUPLICATE_PEAK = 10.0  # ...and no region changed: slides differing by one line of text differ
DETAIL_EDGES = 0.004  # share of strong edges below which a frame is plain (no text to read)
FADE_THRESHOLD = 12  # mean intensity at or below which a frame counts as black
CLIP_TEXT_CHARS = 1200
PROGRESS_EVERY_S = 2.0


def require_video(path: Path) -> tuple[Any, Any]:
    """Import PyAV and PySceneDetect, or raise IngestError naming the extra to install."""
    try:
        import av
        import scenedetect
    except ImportError as exc:
        raise IngestError(str(path), f"{INSTALL_HINT} ({exc.name} is missing)") from exc
    return av, scenedetect


@dataclass
class VideoInfo:
    duration: float | None
    zero: float  # presentation time that counts as 00:00
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    codec: str = ""


@dataclass
class _Frame:
    """A captured candidate keyframe."""

    image: Image.Image
    t: float
    sig: np.ndarray
    score: float

    @property
    def dark(self) -> bool:
        return float(self.sig.mean()) <= FADE_THRESHOLD


@dataclass
class _Keyframe:
    frame: _Frame
    t_start: float
    t_end: float
    scene_start: float
    reason: str  # "scene" or "interval"
    merged: int = 0


@dataclass
class _Tracker:
    """Turns cuts and frames into keyframes, holding at most two images."""

    interval: float
    segment_start: float = 0.0
    scene_start: float = 0.0
    reason: str = "scene"
    capture_base: float | None = None
    settle_next: int = 0
    best: _Frame | None = None
    held: _Keyframe | None = None
    ready: list[_Keyframe] = field(default_factory=list)
    scenes: int = 1

    def cut(self, at: float, capture: Any, t: float) -> None:
        """A scene starts at ``at`` (reported at the frame at ``t``)."""
        if at - self.scene_start < MIN_SCENE_S:
            return
        self._close(at)
        self.scenes += 1
        self.scene_start = self.segment_start = at
        self.reason = "scene"
        self._start_capture(capture, t)

    def frame(self, capture: Any, t: float) -> None:
        if self.capture_base is None:
            self._start_capture(capture, t)
            return
        if t - self.segment_start >= self.interval:
            self._close(t)
            self.segment_start = t
            self.reason = "interval"
            self._start_capture(capture, t)
            return
        if self.settle_next < len(SETTLE_S) and t >= self.capture_base + SETTLE_S[self.settle_next]:
            self.settle_next += 1
            candidate = capture()
            if self.best is None or candidate.score >= self.best.score:
                self.best = candidate

    def finish(self, end: float) -> None:
        self._close(end)
        if self.held is not None:
            self.ready.append(self.held)
            self.held = None

    def _start_capture(self, capture: Any, t: float) -> None:
        self.capture_base = t
        self.settle_next = 0
        self.best = capture()

    def _close(self, end: float) -> None:
        if self.best is None:
            return
        best, self.best = self.best, None
        held = self.held
        if best.dark:  # black between scenes (a fade) is no scene: it joins the one before
            if held is not None:
                held.t_end = max(held.t_end, end)
            return
        kf = _Keyframe(best, self.segment_start, max(end, self.segment_start),
                       self.scene_start, self.reason)
        if held is not None and _same_picture(held.frame, kf.frame):
            held.t_end = kf.t_end
            held.merged += 1
            return
        if held is not None:
            self.ready.append(held)
        self.held = kf


def has_detail(image: Image.Image) -> bool:
    """False for frames with (almost) no sharp edges: plain colours, gradients, blur.

    Such frames cannot show readable text, so OCR (the slowest step per keyframe) skips them.
    """
    grey = np.asarray(image.convert("L").resize((320, 180)), dtype=np.int16)
    across = (np.abs(np.diff(grey, axis=1)) > 40).mean()
    down = (np.abs(np.diff(grey, axis=0)) > 40).mean()
    return float(across + down) > DETAIL_EDGES


def _same_picture(a: _Frame, b: _Frame) -> bool:
    """Near-identical frames: small change overall and nowhere a large one (the 99th
    percentile of the 32x32 cells), so a new title on the same slide layout is kept."""
    diff = np.abs(a.sig - b.sig)
    return float(diff.mean()) < DUPLICATE_DIFF and float(np.percentile(diff, 99)) < DUPLICATE_PEAK


def _capture(frame: Any, size: tuple[int, int]) -> _Frame:
    image = frame.to_image(width=size[0], height=size[1])
    grey = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BILINEAR), np.float32)
    # Clearest = most detail and light: a frame still fading in scores lower than the full one.
    return _Frame(image, 0.0, grey, float(grey.std() + grey.mean() / 4))


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height, 1))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def open_video(path: Path) -> tuple[Any, VideoInfo]:
    """Open a video container, or raise IngestError saying what is wrong with it."""
    av, _ = require_video(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.InvalidDataError as exc:
        raise IngestError(
            str(path),
            f"not a readable video: the container is truncated or damaged ({_why(exc)})",
        ) from exc
    except av.error.FFmpegError as exc:
        raise IngestError(str(path), f"cannot open the video ({_why(exc)})") from exc
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    if video is None and audio is None:
        container.close()
        raise IngestError(str(path), "the file has no video or audio stream")
    duration = None
    if container.duration:
        duration = container.duration / av.time_base
    elif video is not None and video.duration and video.time_base:
        duration = float(video.duration * video.time_base)
    zero = container.start_time / av.time_base if container.start_time else 0.0
    info = VideoInfo(duration, zero, video is not None, audio is not None)
    if video is not None:
        ctx = video.codec_context
        if ctx is None or not ctx.codec:
            container.close()
            raise IngestError(str(path), "the video codec is not supported by this FFmpeg build")
        info.width, info.height, info.codec = ctx.width, ctx.height, ctx.codec.name
        if not info.width or not info.height:
            container.close()
            raise IngestError(str(path), f"the {info.codec} video stream has no frame size")
    return container, info


def _why(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def keyframe_groups(
    path: Path, container: Any, info: VideoInfo, ctx: ExtractContext, index: list[tuple[float, str]]
) -> Iterator[list[Unit]]:
    """Keyframe units, streamed as the video decodes; ``index`` collects (t_start, key)."""
    import av
    from scenedetect import ContentDetector, FrameTimecode, ThresholdDetector
    from scenedetect.common import Timecode
    from scenedetect.detector import FlashFilter

    settings = ctx.settings
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = stream.average_rate or stream.guessed_rate or 25
    time_base = stream.time_base
    detectors = [
        ContentDetector(
            threshold=settings.video_scene_threshold,
            min_scene_len=MIN_SCENE_S,
            filter_mode=FlashFilter.Mode.SUPPRESS,
        ),
        ThresholdDetector(threshold=FADE_THRESHOLD, min_scene_len=MIN_SCENE_S, fade_bias=0.0),
    ]
    detect_size = _fit(info.width, info.height, DETECT_WIDTH * max(info.width, info.height)
                       // max(info.width, 1))
    keep_size = _fit(info.width, info.height, FRAME_PX)
    tracker = _Tracker(interval=max(1.0, settings.video_keyframe_interval_s))
    title = title_words(path)
    t = 0.0
    last_brightness = 255.0
    last_report = -PROGRESS_EVERY_S
    decoded = 0
    started = time.perf_counter()
    ocr_s = 0.0

    def units_from(ready: list[_Keyframe]) -> Iterator[list[Unit]]:
        nonlocal ocr_s
        for kf in ready:
            key = f"kf{len(index)}"
            index.append((kf.t_start, key))
            t0 = time.perf_counter()
            ocr_text = ""
            if has_detail(kf.frame.image):
                ocr_text = lines_to_text(ocr_image(ctx.models.ocr, kf.frame.image))
            ocr_s += time.perf_counter() - t0
            ctx.stats["keyframes"] += 1
            yield [
                Unit(
                    key=key,
                    modality="keyframe",
                    text=f"{title}\n{ocr_text}".strip(),
                    image=kf.frame.image,
                    t_start=round(kf.t_start, 3),
                    t_end=round(kf.t_end, 3),
                    payload={
                        "title": path.name,
                        "time": time_range(kf.t_start, kf.t_end),
                        "frame_time": round(kf.frame.t, 3),
                        "scene_start": round(kf.scene_start, 3),
                        "keyframe_reason": kf.reason,
                        "ocr_text": ocr_text,
                        "width": kf.frame.image.width,
                        "height": kf.frame.image.height,
                    },
                )
            ]
        ready.clear()

    try:
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = max(0.0, float(frame.pts * time_base) - info.zero)
            decoded += 1
            small = frame.to_ndarray(format="bgr24", width=detect_size[0], height=detect_size[1])
            timecode = FrameTimecode(Timecode(pts=frame.pts, time_base=time_base), fps=rate)
            brightness = float(small.mean())
            # Content cuts into or out of black are fades: the threshold detector places those
            # (in the middle of the black, as PySceneDetect does).
            content, fades = detectors
            cuts = [max(0.0, c.seconds - info.zero) for c in fades.process_frame(timecode, small)]
            content_cuts = content.process_frame(timecode, small)
            if min(brightness, last_brightness) > FADE_THRESHOLD:
                cuts += [max(0.0, c.seconds - info.zero) for c in content_cuts]
            last_brightness = brightness

            def capture(frame: Any = frame, t: float = t) -> _Frame:
                captured = _capture(frame, keep_size)
                captured.t = t
                return captured

            for at in sorted(cuts):
                tracker.cut(min(at, t), capture, t)
            tracker.frame(capture, t)
            if tracker.ready:
                yield from units_from(tracker.ready)
            if t - last_report >= PROGRESS_EVERY_S:
                last_report = t
                ctx.progress("video", t, info.duration)
    except av.error.FFmpegError as exc:
        raise IngestError(
            str(path), f"the video stream is damaged at {clock(t)} ({_why(exc)})"
        ) from exc
    if decoded == 0:
        raise IngestError(
            str(path), f"no frame of the {info.codec} video stream could be decoded "
            "(the file is truncated or damaged)"
        )
    end = t + 1.0 / float(rate or 25)
    if info.duration and info.duration - end > max(2.0, 0.1 * info.duration):
        raise IngestError(
            str(path),
            f"the video is truncated: it declares {clock(info.duration)} but its frames end at "
            f"{clock(end)}",
        )
    tracker.finish(end)
    yield from units_from(tracker.ready)
    ctx.stats["scenes"] = tracker.scenes
    ctx.stats["frames"] = decoded
    ctx.stats["decode_s"] = round(time.perf_counter() - started - ocr_s, 3)
    ctx.stats["ocr_s"] = round(ocr_s, 3)
    ctx.stats["duration_s"] = round(max(end, ctx.stats.get("duration_s", 0.0)), 3)
    ctx.progress("video", end, end)


def _keyframe_at(index: list[tuple[float, str]]):
    """``t -> key`` of the keyframe showing at time ``t`` (for transcript thumbnails)."""

    def at(t: float) -> str | None:
        key = None
        for start, k in index:
            if start > t + 1e-6:
                break
            key = k
        return key

    return at


def iter_video(path: Path, ctx: ExtractContext) -> Iterator[list[Unit]]:
    """Registry extractor: keyframes, then transcript (or subtitle) chunks, then the clip."""
    container, info = open_video(path)
    index: list[tuple[float, str]] = []
    try:
        if info.has_video:
            yield from keyframe_groups(path, container, info, ctx, index)
    finally:
        container.close()
    if info.duration and not info.has_video:
        ctx.stats["duration_s"] = round(info.duration, 3)
    duration = float(ctx.stats.get("duration_s") or info.duration or 0.0)
    keyframe_at = _keyframe_at(index)
    max_chars = transcript_chars(ctx.settings.chunk_chars)
    opening: list[str] = []
    sidecar = sidecar_for(path)
    if sidecar is not None:
        cues = load_subtitles(sidecar)
        ctx.stats["transcript_segments"] = len(cues)
        ctx.stats["transcript_words"] = sum(len(c.text.split()) for c in cues)
        ctx.stats["subtitles"] = 1
        for group in subtitle_groups(cues, max_chars, path.name, keyframe_at):
            _remember(opening, group)
            yield group
    elif info.has_audio and ctx.settings.video_transcribe:
        yield from _speech_groups(path, info, ctx, duration, max_chars, keyframe_at, opening)
    transcript = " ".join(opening)[:CLIP_TEXT_CHARS]
    yield [
        Unit(
            key="clip",
            modality="clip",
            text=f"{title_words(path)}\n{transcript}".strip(),
            t_start=0.0,
            t_end=round(duration, 3),
            blob_of=index[len(index) // 2][1] if index else None,
            pool={"joint": ("keyframe",), "text": ("transcript",)},
            payload={
                "title": path.name,
                "time": time_range(0.0, duration),
                "keyframes": int(ctx.stats.get("keyframes", 0)),
                "transcript_segments": int(ctx.stats.get("transcript_segments", 0)),
                "width": info.width,
                "height": info.height,
                "codec": info.codec,
            },
        )
    ]


def companions(path: Path) -> list[Path]:
    """The sidecar subtitles, whose changes change the video's indexed version."""
    sidecar = sidecar_for(path)
    return [sidecar] if sidecar is not None else []


def _remember(opening: list[str], group: list[Unit]) -> None:
    if sum(len(t) for t in opening) < CLIP_TEXT_CHARS:
        opening += [u.text for u in group]


def _speech_groups(
    path: Path,
    info: VideoInfo,
    ctx: ExtractContext,
    duration: float,
    max_chars: int,
    keyframe_at: Any,
    opening: list[str],
) -> Iterator[list[Unit]]:
    from vistarag.agent.ingest.speech import transcribe

    try:
        import faster_whisper  # noqa: F401
    except ImportError as exc:
        raise IngestError(str(path), f"{INSTALL_HINT} (faster-whisper is missing)") from exc
    s = ctx.settings
    started = time.perf_counter()
    words = 0
    count = 0

    def counted(segments: Iterator[Any]) -> Iterator[Any]:
        nonlocal words, count
        for seg in segments:
            count += 1
            words += len(seg.text.split())
            yield seg

    segments = transcribe(
        path, s.whisper_model, s.whisper_threads, s.whisper_language, info.zero,
        on_progress=lambda done: ctx.progress("speech", done, duration or None),
    )
    for i, chunk in enumerate(merge_segments(counted(segments), max_chars)):
        group = [chunk_unit(chunk, f"tr{i}", "speech", path.name, keyframe_at(chunk[0].start))]
        _remember(opening, group)
        yield group
    ctx.stats["transcript_segments"] = count
    ctx.stats["transcript_words"] = words
    ctx.stats["speech_s"] = round(time.perf_counter() - started, 3)
