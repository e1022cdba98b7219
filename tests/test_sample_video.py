"""The sample corpus always has its narrated video, H.264 + AAC in MP4 (what browsers play)."""

from __future__ import annotations

import functools
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vistarag.evals import sample_corpus
from vistarag.evals.sample_corpus import (
    SAMPLE_VIDEO,
    VIDEO_CODECS,
    SampleMediaError,
    make_eval_corpus,
    make_video,
    video_codecs,
)

pytest.importorskip("av")


def test_the_shipped_video_is_small_h264_and_aac():
    assert SAMPLE_VIDEO.is_file(), f"{SAMPLE_VIDEO} is missing: run --regenerate-video"
    assert SAMPLE_VIDEO.stat().st_size < 1_000_000
    assert video_codecs(SAMPLE_VIDEO) == VIDEO_CODECS == ("h264", "aac")


def test_the_eval_corpus_contains_the_video(tmp_path):
    files = make_eval_corpus(tmp_path)
    video = tmp_path / "safety_briefing.mp4"
    assert video in files and video_codecs(video) == ("h264", "aac")
    assert video.read_bytes() == SAMPLE_VIDEO.read_bytes()  # same bytes: the ingest cache holds


def test_an_older_mpeg4_sample_is_replaced(tmp_path):
    import av
    import numpy as np

    old = tmp_path / "safety_briefing.mp4"
    with av.open(str(old), "w") as out:  # what the generator used to write
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    assert video_codecs(old) == ("mpeg4",)
    assert video_codecs(make_video(old)) == ("h264", "aac")


def test_without_the_shipped_copy_or_espeak_it_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(sample_corpus, "SAMPLE_VIDEO", tmp_path / "absent.mp4")
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng on it
    with pytest.raises(SampleMediaError, match="espeak-ng is not installed"):
        make_video(tmp_path / "safety_briefing.mp4")
    assert sample_corpus.main([str(tmp_path / "corpus")]) == 1


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_the_generator_encodes_h264_and_aac_with_the_narration(tmp_path):
    pytest.importorskip("faster_whisper")
    from vistarag.agent.engine import Engine
    from vistarag.agent.qdrant import close_all
    from vistarag.agent.settings import Settings

    video = sample_corpus.generate_video(tmp_path / "media" / "safety_briefing.mp4")
    assert video_codecs(video) == ("h264", "aac")
    engine = Engine(Settings(home=tmp_path / "home", joint_model="none",
                             synthesizer="extractive", _env_file=None))
    try:
        report = engine.ingestor().ingest_paths([SAMPLE_VIDEO.parent])  # the shipped copy
        hits = engine.find("what should you wear in the yard", k=3, modality=["transcript"])
    finally:
        close_all()
    assert report.results[0].keyframes == len(sample_corpus.VIDEO_SLIDES)  # a scene per slide
    assert hits and "vest" in hits[0].text.lower(), [h.text for h in hits]


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium package")
def test_chromium_shows_the_picture_not_an_audio_only_player():
    sync_api = pytest.importorskip("playwright.sync_api")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(SAMPLE_VIDEO.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    src = f"http://127.0.0.1:{server.server_address[1]}/{SAMPLE_VIDEO.name}"
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = browser.new_page()
            page.set_content(f'<video id="v" src="{src}" preload="auto" muted></video>')
            page.wait_for_function("document.getElementById('v').readyState >= 1",
                                   timeout=30_000)
            video = page.evaluate("""() => { const v = document.getElementById('v');
                return {w: v.videoWidth, h: v.videoHeight, d: v.duration, error: v.error}; }""")
            browser.close()
    finally:
        server.shutdown()
    assert video == {"w": 640, "h": 360, "d": pytest.approx(8.0, abs=0.2), "error": None}
