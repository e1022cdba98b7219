"""A spoken moment is cited at its time, not hidden behind its video's whole-clip point.

Real components: a clip generated with espeak-ng + PyAV, the repository's shared test video,
faster-whisper tiny.en, MiniLM, the reranker and embedded Qdrant; both ingestion orders.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vistarag.agent.evidence import collapse
from vistarag.agent.types import Hit

SHARED_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "testvideo.mp4"
SENTENCE = "The harbour crane lifts forty containers every hour."
QUERY = "how many containers does the crane lift"


def hit(id_: str, modality: str, score: float, doc: str = "crane", t: tuple = (None, None)) -> Hit:
    return Hit(id=id_, score=score, modality=modality, doc_id=doc, source=f"/v/{doc}.mp4",
               text=f"{modality} {id_}", t_start=t[0], t_end=t[1])


def test_collapse_shows_the_moment_inside_a_clip_at_the_clips_score():
    hits = [hit("c", "clip", 2.0, t=(0.0, 10.0)), hit("s", "transcript", 1.5, t=(3.6, 6.9)),
            hit("k", "keyframe", 0.2, t=(0.0, 10.0)), hit("o", "clip", 1.0, "other", (0.0, 24.0))]
    kept = collapse(hits)
    assert [h.id for h in kept] == ["s", "o"]
    assert kept[0].score == 2.0 and (kept[0].t_start, kept[0].t_end) == (3.6, 6.9)
    assert kept[0].extra["modalities"] == ["clip", "transcript", "keyframe"]
    assert set(kept[0].extra["merged"]) == {"c", "k"}


def test_collapse_keeps_the_moment_when_it_scores_above_its_clip():
    kept = collapse([hit("s", "transcript", 2.5, t=(3.6, 6.9)), hit("c", "clip", 2.0, t=(0, 10))])
    assert [h.id for h in kept] == ["s"] and kept[0].extra["modalities"] == ["transcript", "clip"]


def test_a_clip_alone_still_answers_which_video():
    kept = collapse([hit("c", "clip", 2.0, t=(0.0, 10.0)), hit("o", "clip", 1.0, "other")])
    assert [h.id for h in kept] == ["c", "o"]


# ---- end to end: two videos, both orders ----------------------------------------------------


@pytest.fixture(scope="module")
def crane(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("av")
    pytest.importorskip("faster_whisper")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is needed to generate the spoken clip (apt-get install espeak-ng)")
    if not SHARED_VIDEO.is_file():
        pytest.skip(f"{SHARED_VIDEO} is not here (the shared test data lives beside the repo)")
    from vistarag.evals.video_samples import Scene, slide, speech_track, write_video

    path = tmp_path_factory.mktemp("crane") / "crane.mp4"
    size = (640, 360)
    return write_video(path, [Scene(0, 10, slide(["Harbour operations"], size))], size, fps=5,
                       audio=speech_track(10, [(4.0, SENTENCE)]))


@pytest.fixture(scope="module", params=["talk-first", "clip-first"])
def home(request: pytest.FixtureRequest, crane: Path, tmp_path_factory: pytest.TempPathFactory):
    from vistarag.agent.engine import Engine
    from vistarag.agent.qdrant import close_all
    from vistarag.agent.settings import Settings

    home = tmp_path_factory.mktemp(request.param)
    settings = Settings(home=home, joint_model="none", synthesizer="extractive",
                        checkpointer="memory", _env_file=None)
    engine = Engine(settings)
    order = [SHARED_VIDEO, crane] if request.param == "talk-first" else [crane, SHARED_VIDEO]
    for path in order:
        report = engine.ingestor().ingest_paths([path])
        assert all(r.status == "added" for r in report.results), report.results
    yield home, engine
    close_all()


def test_the_spoken_moment_is_the_top_hit(home):
    _, engine = home
    hits = engine.find(QUERY, k=5)
    top = hits[0]
    assert top.source.endswith("crane.mp4"), [h.locator() for h in hits]
    assert top.modality == "transcript", [h.locator() for h in hits]
    assert top.t_start == pytest.approx(4.0, abs=1.0) and top.t_end < 9.0, top.locator()
    assert "container" in top.text.lower()
    assert top.locator().startswith("crane.mp4 @ 00:0") and top.locator() != "crane.mp4 @ 00:00"


def test_which_video_still_finds_the_clip(home):
    _, engine = home
    hits = engine.find("which video is about a harbour crane", k=2, modality=["clip"])
    assert hits[0].source.endswith("crane.mp4") and hits[0].modality == "clip"


def test_search_prints_the_moment(home):
    from vistarag.ui.cli import app

    path, _ = home
    env = {"VISTARAG_HOME": str(path), "VISTARAG_JOINT_MODEL": "none", "VISTARAG_KB": None,
           "VISTARAG_QDRANT_URL": None, "COLUMNS": "400"}
    result = CliRunner().invoke(app, ["search", QUERY, "-k", "3"], env=env)
    assert result.exit_code == 0, result.output
    first = next(line for line in result.output.splitlines() if "crane.mp4" in line)
    assert "@ 00:03-00:06" in first or "@ 00:04-00:0" in first, result.output
    assert "transcript" in first, result.output
