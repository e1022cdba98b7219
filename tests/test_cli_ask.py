"""``vistarag ask``: streamed answer and sources, --json, --image, --attach, --thread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fixtures_media import SCREENSHOT_LINES, make_pdf, make_screenshot
from vistarag.agent.qdrant import close_all
from vistarag.ui.cli import app


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VISTARAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VISTARAG_JOINT_MODEL", "none")
    runner = CliRunner()

    def run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args))

    yield run
    close_all()


def test_ask_json_with_an_attachment_then_a_follow_up_in_the_same_thread(cli, tmp_path) -> None:
    pdf = make_pdf(tmp_path / "report.pdf")
    first = cli("ask", "How often is each lorry inspected?", "--attach", str(pdf),
                "--thread", "t-1", "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert {"answer", "citations", "hits", "timings", "synthesizer"} <= set(data)
    assert data["synthesizer"] == "extractive" and "40,000" in data["answer"]
    assert data["citations"][0]["page"] == 2 and data["citations"][0]["source"] == str(pdf)
    assert "ingest_attachments" in data["timings"]
    follow = json.loads(cli("ask", "and the next page?", "--thread", "t-1", "--json").stdout)
    assert follow["citations"][0]["page"] == 3
    assert "INV-20931" in follow["answer"]


def test_ask_streams_the_answer_then_the_sources(cli, tmp_path) -> None:
    pdf = make_pdf(tmp_path / "report.pdf")
    assert cli("ingest", str(pdf)).exit_code == 0
    result = cli("ask", "What is the invoice number?")
    assert result.exit_code == 0, result.output
    answer_at = result.stdout.index("INV-20931")
    assert result.stdout.index("sources") > answer_at
    assert "report.pdf p.3" in result.stdout


def test_ask_about_a_screenshot_with_an_empty_knowledge_base(cli, tmp_path) -> None:
    shot = make_screenshot(tmp_path / "shot.png", SCREENSHOT_LINES)
    result = cli("ask", "What does this error mean?", "--image", str(shot), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["modality"] == "text+image" and "QX-4471" in data["answer"]


def test_ask_needs_a_question_or_an_image(cli) -> None:
    result = cli("ask")
    assert result.exit_code == 2
    assert "give a question" in result.stderr
