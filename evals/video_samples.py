"""Generated videos with known content, for the video tests and the video benchmark.

Everything is drawn with PIL and encoded with PyAV; speech is Debian's ``espeak-ng`` reading
known sentences into a WAV that is placed at known times in the audio track.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vistarag.evals.sample_corpus import font

AUDIO_RATE = 16_000
Painter = Callable[[float], Image.Image]


@dataclass(frozen=True)
class Scene:
    """``start``-``end`` seconds drawn by ``paint(t_in_scene)``."""

    start: float
    end: float
    paint: Painter


def solid(color: str, size: tuple[int, int]) -> Painter:
    image = Image.new("RGB", size, color)
    return lambda _t: image


def shapes(bg: str, size: tuple[int, int]) -> Painter:
    """Circles and a rectangle that drift slowly (motion, but one scene)."""

    def paint(t: float) -> Image.Image:
        image = Image.new("RGB", size, bg)
        draw = ImageDraw.Draw(image)
        w, h = size
        dx = int(6 * t)
        draw.ellipse((w * 0.1 + dx, h * 0.2, w * 0.35 + dx, h * 0.65), fill="yellow")
        draw.rectangle((w * 0.55, h * 0.3 - dx, w * 0.9, h * 0.8 - dx), fill="white")
        return image

    return paint


def slide(lines: Sequence[str], size: tuple[int, int], bg: str = "white") -> Painter:
    """Big black text on a plain background (a slide)."""
    image = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(image)
    font_size = max(18, size[1] // 9)
    y = size[1] // 6
    for line in lines:
        draw.text((size[0] // 12, y), line, fill="black", font=font(font_size))
        y += int(font_size * 1.5)
    return lambda _t: image


def faded(paint: Painter, start: float, end: float, fade_in: float, fade_out: float) -> Painter:
    """``paint`` with a fade from black over ``fade_in`` s and to black over ``fade_out`` s."""
    length = end - start

    def out(t: float) -> Image.Image:
        level = 1.0
        if fade_in and t < fade_in:
            level = t / fade_in
        if fade_out and t > length - fade_out:
            level = min(level, max(0.0, (length - t) / fade_out))
        image = paint(t)
        return image if level >= 1.0 else Image.eval(image, lambda v: int(v * level))

    return out


def speak(text: str, rate_wpm: int = 160) -> np.ndarray:
    """``espeak-ng`` speech for ``text`` as 16 kHz mono float32."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run([exe, "-s", str(rate_wpm), "-w", str(wav), text], check=True)
        with wave.open(str(wav)) as w:
            rate = w.getframerate()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    samples = data.astype(np.float32) / 32768.0
    n = int(len(samples) * AUDIO_RATE / rate)
    return np.interp(np.linspace(0, len(samples) - 1, n), np.arange(len(samples)), samples).astype(
        np.float32
    )


def speech_track(duration: float, sentences: Sequence[tuple[float, str]]) -> np.ndarray:
    """Silence of ``duration`` seconds with each sentence spoken from its start time."""
    track = np.zeros(int(duration * AUDIO_RATE), dtype=np.float32)
    for start, text in sentences:
        voice = speak(text)
        at = int(start * AUDIO_RATE)
        end = min(len(track), at + len(voice))
        track[at:end] += voice[: end - at]
    return track


def write_video(
    path: Path,
    scenes: Sequence[Scene],
    size: tuple[int, int] = (640, 360),
    fps: int = 15,
    audio: np.ndarray | None = None,
    frame_times: Sequence[float] | None = None,
    faststart: bool = False,
    preset: str = "ultrafast",
) -> Path:
    """Encode scenes (H.264; AAC audio if given). ``frame_times`` makes a variable-rate file.

    ``preset`` is libx264's speed/size trade-off (``slow`` for files that are shipped).
    """
    import av

    duration = max(s.end for s in scenes)
    times = list(frame_times) if frame_times is not None else [
        i / fps for i in range(int(round(duration * fps)))
    ]
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": preset, "crf": "23"}
        ms = Fraction(1, 1000)
        stream.codec_context.time_base = ms
        audio_stream = None
        if audio is not None:
            audio_stream = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        for t in times:
            scene = next((s for s in scenes if s.start <= t < s.end), scenes[-1])
            frame = av.VideoFrame.from_image(scene.paint(t - scene.start).resize(size))
            frame.pts = int(round(t * 1000))
            frame.time_base = ms
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if audio_stream is not None and audio is not None:
            pcm = audio.astype(np.float32).reshape(1, -1)
            step = 1024
            for i in range(0, pcm.shape[1], step):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(pcm[:, i : i + step]), format="flt", layout="mono"
                )
                frame.sample_rate = AUDIO_RATE
                frame.pts = i
                for packet in audio_stream.encode(frame):
                    out.mux(packet)
            for packet in audio_stream.encode():
                out.mux(packet)
    return path


def talk(path: Path, minutes: float = 10.0, slide_s: float = 30.0, speech: bool = True,
         size: tuple[int, int] = (1280, 720), fps: int = 25) -> Path:
    """A generated talk: a new slide every ``slide_s`` s, one spoken sentence per slide."""
    duration = minutes * 60
    scenes = []
    sentences = []
    for i in range(int(duration // slide_s)):
        start = i * slide_s
        topic = TALK_TOPICS[i % len(TALK_TOPICS)]
        scenes.append(Scene(start, start + slide_s,
                            slide([f"Part {i + 1}: {topic}", "Key figures and next steps"], size)))
        sentences.append((start + 2.0, f"In part {i + 1} we look at {topic}."))
        sentences.append((start + 12.0, f"The team measured {topic} again this month."))
    audio = speech_track(duration, sentences) if speech else None
    return write_video(path, scenes, size=size, fps=fps, audio=audio)


TALK_TOPICS = [
    "revenue growth", "customer churn", "the database migration", "hiring plans",
    "security incidents", "the mobile release", "cloud costs", "support tickets",
    "the product roadmap", "quarterly targets",
]
