"""``vistarag ask --image`` (issue 22 item 1): the image is the question's image, never added to
the knowledge base; ``--add`` adds it too, after the answer (which so never cites it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fixtures_media import SCREENSHOT_LINES, make_screenshot
from vistarag.agent.qdrant import close_all
from vistarag.ui.cli import app

NOTES = ("Proxy troubleshooting. Error code QX-4471 means the proxy certificate expired. "
         "Renew it with certtool renew on the proxy host.")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VISTARAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VISTARAG_JOINT_MODEL", "none")
    monkeypatch.setenv("VISTARAG_SYNTHESIZER", "extractive")
    runner = CliRunner()

    def run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args))

    notes = tmp_path / "proxy_notes.md"
    notes.write_text(NOTES, encoding="utf-8")
    assert run("ingest", str(notes)).exit_code == 0
    yield run
    close_all()


def sources(cli, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The file names a search for ``text`` finds."""
    result = cli("search", text, "--json", "-k", "10")
    assert result.exit_code == 0, result.output
    return [Path(h["source"]).name for h in json.loads(result.stdout)]


def test_an_image_with_a_question_is_only_the_query(cli, tmp_path: Path) -> None:
    """Answered from the knowledge base with the image's text; afterwards the knowledge base
    holds what it held before: a search for the image's words finds only the notes."""
    shot = make_screenshot(tmp_path / "network.png", SCREENSHOT_LINES)
    result = cli("ask", "What does this error mean?", "--image", str(shot), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["modality"] == "text+image" and data["added"] == []
    assert "QX-4471 means the proxy certificate expired" in data["answer"]
    assert [Path(c["source"]).name for c in data["citations"]] == ["proxy_notes.md"]
    assert sources(cli, "Network Settings proxy.internal:3128") == ["proxy_notes.md"]


def test_add_puts_the_image_into_the_knowledge_base_after_the_answer(
    cli, tmp_path: Path
) -> None:
    """With --add: the same answer (the image is not among its sources), then the image is
    in the knowledge base, found by its words; asking again finds it unchanged."""
    shot = make_screenshot(tmp_path / "network.png", SCREENSHOT_LINES)
    result = cli("ask", "What does this error mean?", "--image", str(shot), "--add")
    assert result.exit_code == 0, result.output
    assert "QX-4471 means the proxy certificate expired" in result.stdout
    assert "network.png" not in result.stdout  # not cited: added after the answer
    assert "added to knowledge base 'default': network.png: added" in result.stderr
    assert "network.png" in sources(cli, "Network Settings proxy.internal:3128")
    again = cli("ask", "What does this error mean?", "--image", str(shot), "--add", "--json")
    assert json.loads(again.stdout)["added"][0]["status"] == "unchanged"


def test_add_needs_an_image(cli) -> None:
    result = cli("ask", "What does this error mean?", "--add")
    assert result.exit_code == 2
    assert "--add adds the --image files" in result.stderr
