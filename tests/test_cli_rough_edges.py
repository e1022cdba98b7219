"""What the command line prints: one thread hint, headings without Markdown, citations without
stray spaces, help that names videos, a status that says when answers are extractive."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.llm_servers import text_hit
from vistarag.agent.citations import Renumberer
from vistarag.agent.qdrant import close_all
from vistarag.agent.synth import ExtractiveSynthesizer, SynthesisRequest
from vistarag.agent.synth.extractive import plain
from vistarag.ui.cli import app

HEADING = "The Evolution of the Word Processor"
ESSAY = f"""## {HEADING}

The first dedicated word processors appeared in the early 1970s. The Wang 1200 stored typed
pages on cassette tapes, so a secretary could correct a letter without retyping it.
"""
NO_KEYS = {"ANTHROPIC_API_KEY": None, "ANTHROPIC_BASE_URL": None, "OPENAI_API_KEY": None,
           "OPENAI_BASE_URL": None, "VISTARAG_OPENAI_BASE_URL": None,
           "VISTARAG_SYNTHESIZER": None}


def cli_env(home: Path) -> dict[str, str | None]:
    return {"VISTARAG_HOME": str(home), "VISTARAG_JOINT_MODEL": "none", "VISTARAG_KB": None,
            "VISTARAG_QDRANT_URL": None, "COLUMNS": "400", **NO_KEYS}


def test_plain_drops_markdown_heading_and_emphasis_marks():
    assert plain(f"## {HEADING}") == HEADING
    assert plain("# **Bold** and `code` ##") == "Bold and code"
    assert plain("C# tips for issue #12") == "C# tips for issue #12"


def test_extractive_names_the_document_without_markdown_markers():
    hit = text_hit(1, ESSAY, doc="essay", page=None)
    hit.extra["doc"] = {"title": f"## {HEADING}"}
    result = ExtractiveSynthesizer().synthesize(
        SynthesisRequest(question="Which word processor stored pages on cassette tapes?",
                         hits=[hit]))
    assert f"(from {HEADING})" in result.answer, result.answer
    assert "#" not in result.answer, result.answer


def test_not_found_lists_places_without_boxes_or_stray_spaces():
    hits = [text_hit(n, "Quarterly revenue rose.", doc=f"d{n}", page=3) for n in (1, 2, 3)]
    for hit in hits:
        hit.bbox = [72.0, 80.0, 540.0, 200.0]
        hit.extra["rerank"] = {"cross_encoder": -11.0}  # judged: nothing answers
    request = SynthesisRequest(question="Who painted the Mona Lisa?", hits=hits)
    synth = ExtractiveSynthesizer()
    answer = synth.synthesize(request).answer
    assert "d1.pdf p.3, [2] d2.pdf p.3, [3] d3.pdf p.3." in answer, answer
    streamed = Renumberer(limit=len(hits))  # what the CLI and the chat print as it streams
    raw = synth.answer_text(request)
    shown = "".join(streamed.feed(piece) for piece in re.split(r"(?<= )", raw))
    assert shown + streamed.flush() == answer


@pytest.mark.parametrize("pieces", [["see [9]. and [2], then [7] end"],
                                    list("see [9]. and [2], then [7] end")])
def test_a_dropped_marker_takes_the_spaces_before_it(pieces):
    numbering = Renumberer(limit=3)
    shown = "".join(numbering.feed(p) for p in pieces) + numbering.flush()
    assert shown == "see. and [1], then end"


def test_help_names_videos(tmp_path):
    runner = CliRunner()
    top = runner.invoke(app, ["--help"], env=cli_env(tmp_path))
    assert top.exit_code == 0 and "videos" in top.output, top.output
    ingest = runner.invoke(app, ["ingest", "--help"], env=cli_env(tmp_path))
    assert ingest.exit_code == 0, ingest.output
    assert "videos" in ingest.output and "mp4" in ingest.output, ingest.output


def test_status_says_answers_are_extractive_until_a_key_is_set(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["status"], env=cli_env(tmp_path))
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if "synthesizer" in ln)
    assert "auto: answers are extractive" in line and "ANTHROPIC_API_KEY" in line, line
    env = {**cli_env(tmp_path), "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    line = next(ln for ln in runner.invoke(app, ["status"], env=env).output.splitlines()
                if "synthesizer" in ln)
    assert "auto: openai:" in line and "extractive" not in line, line


def test_ask_names_the_thread_once_and_the_heading_plainly(tmp_path):
    essay = tmp_path / "word_processors.md"
    essay.write_text(ESSAY, encoding="utf-8")
    runner = CliRunner()
    env = cli_env(tmp_path / "home")
    try:
        assert runner.invoke(app, ["ingest", str(essay)], env=env).exit_code == 0
        result = runner.invoke(
            app, ["ask", "Which word processor stored pages on cassette tapes?",
                  "--thread", "turn-x"], env=env)
    finally:
        close_all()
    assert result.exit_code == 0, result.output
    assert "Wang 1200" in result.stdout
    assert "## " not in result.stdout, result.stdout
    assert result.stderr.count("turn-x") == 1, result.stderr
    assert "follow up with --thread turn-x" in result.stderr


def test_a_video_line_counts_in_words_that_agree_with_the_number() -> None:
    from vistarag.agent.ingest.pipeline import FileResult
    from vistarag.ui.cli import _video_line

    one = FileResult("talk.mp4", "added", by_modality={"keyframe": 1},
                     stats={"duration_s": 8.0, "transcript_segments": 1})
    line = _video_line(one)
    assert "1 keyframe," in line and "1 transcript segment (speech)" in line
    many = FileResult("talk.mp4", "added", by_modality={"keyframe": 3}, stats={"duration_s": 8.0})
    assert "3 keyframes, 0 transcript segments" in _video_line(many)
