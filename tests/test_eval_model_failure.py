"""An eval whose configured model fails (HTTP 401) is an error, not a pass of the offline answer.

The synthesizer falls back to the extractive answer when the chat model fails; that answer can
satisfy the suite's checks, so before the fix `vistarag eval` printed PASSED for a run whose
model never answered. The loopback Anthropic server plays the model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.llm_servers import FakeLLMServer, Reply
from vistarag.agent.qdrant import close_all
from vistarag.ui.cli import app

SUITE = """\
version: 1
name: model-failure
corpus: {root: corpus, paths: ["*.md"]}
settings: {synthesizer: anthropic, top_k: 3}
k: [1, 3]
thresholds: {recall@3: 0.5, answer_checks: 0.5}
conversations:
  - name: lorry
    turns:
      - text: How often is each lorry inspected?
        expect:
          sources: {all_of: [{document: fleet.md}]}
          answer: {contains: "40,000"}
"""


@pytest.fixture
def suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, FakeLLMServer]]:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "fleet.md").write_text(
        "# Fleet\n\nEach lorry is inspected after 40,000 kilometres.\n", encoding="utf-8")
    (tmp_path / "suite.yaml").write_text(SUITE, encoding="utf-8")
    with FakeLLMServer("anthropic", answer="Each lorry is inspected after 40,000 km [1].") as model:
        monkeypatch.setenv("VISTARAG_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("VISTARAG_JOINT_MODEL", "none")
        monkeypatch.setenv("VISTARAG_CHECKPOINTER", "memory")
        monkeypatch.setenv("ANTHROPIC_API_KEY", "revoked-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", model.base_url)
        yield tmp_path / "suite.yaml", model
    close_all()


def run(suite: Path, report: Path) -> tuple[int, str, dict]:
    result = CliRunner().invoke(app, ["eval", str(suite), "--report", str(report)])
    data = json.loads((report / "report.json").read_text(encoding="utf-8"))
    return result.exit_code, result.output, data["suites"][0]


def test_a_model_refusing_with_401_marks_the_conversation_an_error(
    suite: tuple[Path, FakeLLMServer], tmp_path: Path
) -> None:
    path, model = suite
    model.queue(*[Reply(401) for _ in range(10)])
    code, output, report = run(path, tmp_path / "run-401")
    conv = report["conversations"][0]
    turn = conv["turns"][0]
    assert model.requests, "the model was never called"
    assert turn["synthesizer"] == "extractive" and "40,000" in turn["answer"]  # the fallback
    assert conv["error"].startswith("model failed: ") and "HTTP 401" in conv["error"], conv
    assert turn["error"] == conv["error"] and not turn["passed"] and not conv["passed"]
    assert not report["passed"] and code == 1, output
    assert "ERROR" in output and "model failed" in output and "PASSED" not in output
    md = (tmp_path / "run-401" / "report.md").read_text(encoding="utf-8")
    assert "**ERROR**: model failed" in md


def test_the_same_suite_passes_when_the_model_answers(
    suite: tuple[Path, FakeLLMServer], tmp_path: Path
) -> None:
    path, model = suite
    code, output, report = run(path, tmp_path / "run-ok")
    conv = report["conversations"][0]
    assert conv["error"] is None and conv["passed"], conv
    assert conv["turns"][0]["synthesizer"].startswith("anthropic:")
    assert report["passed"] and code == 0, output
