"""`vistarag eval` end to end: the demo suite passes; a broken expectation fails it with a
readable report; `compare` flags the planted regression. One ingest for the whole module."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vistarag.agent.qdrant import close_all
from vistarag.evals.suite import SUITES_DIR
from vistarag.ui.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("evals")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VISTARAG_HOME", str(root / "home"))
        mp.setenv("VISTARAG_JOINT_MODEL", "none")  # text-bridge: the same everywhere
        mp.setenv("VISTARAG_CHECKPOINTER", "memory")
        yield root
    close_all()


def invoke(*args: str):
    return CliRunner().invoke(app, ["eval", *args])


@pytest.fixture(scope="module")
def good_run(env: Path) -> Path:
    report = env / "run-a"
    result = invoke("demo", "--report", str(report), "--jobs", "2")
    assert result.exit_code == 0, result.output
    return report


@pytest.fixture(scope="module")
def broken_run(env: Path, good_run: Path) -> tuple[Path, object]:
    text = (SUITES_DIR / "demo.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "sources: {all_of: [{document: zephyr_report.pdf, page: 2}]}\n"
        "          answer: {contains: \"40,000\", numbers: [40000]}",
        "sources: {all_of: [{document: missing_manual.pdf, page: 2}]}\n"
        "          answer: {contains: \"50,000\", numbers: [40000]}", 1)
    suite = env / "broken.yaml"
    suite.write_text(text, encoding="utf-8")
    report = env / "run-b"
    result = invoke(str(suite), "--report", str(report), "--only", "lorry-*")
    return report, result


def test_demo_suite_passes_and_writes_every_report(good_run: Path) -> None:
    data = json.loads((good_run / "report.json").read_text(encoding="utf-8"))
    assert data["schema_version"] == 1 and data["passed"]
    suite = data["suites"][0]
    assert suite["aggregate"]["recall@5"] >= 0.9
    assert suite["aggregate"]["mrr"] >= 0.8
    assert {t["metric"] for t in suite["thresholds"]} >= {"recall@5", "answer_checks"}
    assert all(t["passed"] for t in suite["thresholds"])
    assert suite["ran"]["synthesizer"] == {"extractive": sum(suite["ran"]["path"].values())}
    assert {"encode_query", "retrieve", "rerank", "synthesize"} <= set(suite["node_latency"])
    assert len(suite["recall_curve"]) == 10
    assert suite["corpus"]["summary"]["errors"] == 0
    convs = {c["name"]: c for c in suite["conversations"]}
    lorry = convs["lorry-inspection"]
    assert lorry["passed"] and len(lorry["turns"]) == 2  # the follow-up ran in the same thread
    assert lorry["turns"][1]["retrieved"][0]["where"].startswith("zephyr_report.pdf p.2")
    assert convs["scanned-invoice"]["passed"]  # OCR of a scanned page
    assert convs["screenshot-error"]["turns"][0]["modality"] == "text+image"
    assert convs["agent-compare"]["skipped"] or convs["agent-compare"]["turns"][0]["path"]
    # JUnit: one case per turn plus one per threshold
    tree = ET.parse(good_run / "junit.xml").getroot()
    cases = tree.findall("./testsuite/testcase")
    assert len(cases) == sum(len(c["turns"]) for c in suite["conversations"]) + len(
        suite["thresholds"])
    # report.html is self-contained: inline SVG plots, nothing loaded from elsewhere
    html = (good_run / "report.html").read_text(encoding="utf-8")
    assert html.count("<svg") >= 3
    assert not re.search(r'(src|href)="(https?:|//|file:)', html)
    md = (good_run / "report.md").read_text(encoding="utf-8")
    assert "| recall@5 | 1.000 | >= 0.9 ok |" in md


def test_broken_expectation_fails_with_a_readable_report(broken_run) -> None:
    report, result = broken_run
    assert result.exit_code == 1, result.output
    assert "FAIL lorry-inspection turn 1" in result.stderr
    md = (report / "report.md").read_text(encoding="utf-8")
    assert "## demo: FAILED" in md
    assert "#### lorry-inspection turn 1: How often is each lorry inspected?" in md
    assert re.search(r"\| sources@5 \| document=missing_manual.pdf page=2 \| "
                     r"zephyr_report.pdf p.2", md)
    assert "| contains | '50,000' | " in md
    assert "recall@5 | 0.500 | >= 0.9 **FAILED**" in md
    html = (report / "report.html").read_text(encoding="utf-8")
    assert "Failed turns" in html and "data:image/png;base64," in html  # retrieved thumbnails
    junit = ET.parse(report / "junit.xml").getroot()
    failures = junit.findall(".//failure")
    assert any("missing_manual.pdf" in (f.text or "") for f in failures)


def test_compare_flags_the_planted_regression(good_run: Path, broken_run) -> None:
    broken, _ = broken_run
    result = invoke("compare", str(good_run), str(broken), "--ignore-latency")
    assert result.exit_code == 1, result.output
    assert "lorry-inspection#1" in result.stdout and "worse" in result.stdout
    data = json.loads(invoke("compare", str(good_run), str(broken), "--ignore-latency",
                             "--json").stdout)
    regressions = {(c["scope"], c["key"]) for c in data if c["regression"]}
    assert ("turn", "lorry-inspection#1") in regressions
    assert ("metric", "recall@5") in regressions
    assert ("turn", "lorry-inspection#2") not in regressions  # still passes
    same = invoke("compare", str(good_run), str(good_run / "report.json"))
    assert same.exit_code == 0, same.output
    assert "0 regressions" in same.stderr


def test_compare_rejects_a_file_that_is_not_a_report(tmp_path: Path, good_run: Path) -> None:
    junk = tmp_path / "report.json"
    junk.write_text('{"schema_version": 99}', encoding="utf-8")
    result = invoke("compare", str(good_run), str(junk))
    assert result.exit_code == 2
    assert "report schema version 99" in result.stderr


@pytest.fixture()
def loopback_model(env: Path):
    """The hosted-model path: the loopback Anthropic server plans with scripted tool calls."""
    from tests.llm_servers import FakeLLMServer

    answer = "Rotterdam delivered 97.5% on time [1]; Q4 revenue was 530 kEUR [2]."
    with FakeLLMServer("anthropic", answer=answer) as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANTHROPIC_API_KEY", "test-key")
        mp.setenv("ANTHROPIC_BASE_URL", server.base_url)
        mp.setenv("VISTARAG_LLM_MAX_RETRIES", "0")
        yield server


def _agent_suite(env: Path, calls: str, match: str) -> Path:
    """The demo suite cut to its agent conversation, with the VLM instead of extractive."""
    text = (SUITES_DIR / "demo.yaml").read_text(encoding="utf-8")
    text = text.replace("  synthesizer: extractive ", "  synthesizer: anthropic ", 1)
    text = text.replace("  answer_checks: 0.7\n", "", 1)  # this conversation has none
    text = text.replace("            match: superset\n            calls: [{name: retrieve}]",
                        f"            match: {match}\n            calls: {calls}", 1)
    suite = env / f"agent-{match}.yaml"
    suite.write_text(text, encoding="utf-8")
    return suite


def _plan(server) -> None:  # noqa: ANN001
    from tests.llm_servers import Reply

    server.queue(
        Reply(tool_calls=[("retrieve", {"query": "on-time delivery rate Rotterdam", "k": 3})]),
        Reply(tool_calls=[("retrieve", {"query": "revenue by quarter Q4 chart", "k": 3})]),
    )


def test_agent_conversation_runs_on_the_hosted_model_and_scores_its_tools(
    env: Path, good_run: Path, loopback_model
) -> None:
    """With a chat model configured the agent conversation runs (no skip): its trajectory is
    matched by agentevals, its sources and path are scored like any turn."""
    expected = ('[{name: retrieve, args: {query: on-time delivery rate Rotterdam}}, '
                '{name: retrieve}]')
    _plan(loopback_model)
    report = env / "run-agent"
    result = invoke(str(_agent_suite(env, expected, "strict")), "--report", str(report),
                    "--only", "agent-compare")
    data = json.loads((report / "report.json").read_text(encoding="utf-8"))
    conv = data["suites"][0]["conversations"][0]
    turn = conv["turns"][0]
    assert not conv["skipped"], conv["skipped"]
    assert turn["path"] == "agent" and turn["synthesizer"].startswith("anthropic:")
    assert [t["name"] for t in turn["trajectory"]] == ["retrieve", "retrieve"]
    checks = {c["name"]: c for c in turn["checks"]}
    assert checks["tools (strict)"]["passed"], checks
    assert checks["path"]["passed"] and turn["metrics"]["trajectory"] == 1.0
    assert checks["sources@5"]["passed"], checks["sources@5"]
    assert turn["answer"].startswith("Rotterdam delivered 97.5% on time")
    assert result.exit_code == 0, result.output

    # The same run against a trajectory it did not take fails, saying what it called.
    _plan(loopback_model)
    wrong = env / "run-agent-wrong"
    failed = invoke(str(_agent_suite(env, "[{name: search_video_keyframes}]", "strict")),
                    "--report", str(wrong), "--only", "agent-compare")
    assert failed.exit_code == 1, failed.output
    md = (wrong / "report.md").read_text(encoding="utf-8")
    assert re.search(r"\| tools \(strict\) \| search_video_keyframes\(\) \| "
                     r"retrieve\(query='on-time delivery rate Rotterdam'", md), md


# Per turn: faithfulness (truths, claims, verdicts), then answer relevancy (statements, verdicts).
JUDGE_REPLIES = [
    {"truths": ["Each lorry is inspected every 40,000 kilometres."]},
    {"claims": ["Lorries are inspected after 40,000 km.", "Inspections are free of charge."]},
    {"verdicts": [{"verdict": "yes"}, {"verdict": "no", "reason": "not in the context"}]},
    {"statements": ["Each lorry is inspected after 40,000 km."]},
    {"verdicts": [{"verdict": "yes"}]},
]


def test_judge_scores_faithfulness_and_relevancy_with_the_hosted_model(
    env: Path, good_run: Path, loopback_model
) -> None:
    """``--judge``: DeepEval's metrics run on the configured chat model (here the loopback
    Anthropic API through the official SDK), per turn and aggregated, gateable."""
    from tests.llm_servers import Reply

    pytest.importorskip("deepeval")
    for _ in range(2):  # the two turns of lorry-inspection
        loopback_model.queue(*(Reply(text=json.dumps(r)) for r in JUDGE_REPLIES))
    report = env / "run-judged"
    result = invoke("demo", "--report", str(report), "--only", "lorry-inspection", "--judge")
    assert result.exit_code == 0, result.output
    suite = json.loads((report / "report.json").read_text(encoding="utf-8"))["suites"][0]
    assert suite["judge"]["metrics"] == ["faithfulness", "answer_relevancy"]
    assert suite["judge"]["model"].startswith("anthropic:")
    turns = suite["conversations"][0]["turns"]
    assert [t["metrics"]["faithfulness"] for t in turns] == [0.5, 0.5]
    assert [t["metrics"]["answer_relevancy"] for t in turns] == [1.0, 1.0]
    assert suite["aggregate"]["faithfulness"] == 0.5
    assert suite["aggregate"]["answer_relevancy"] == 1.0
    # What the judge was shown: the turn's answer and the evidence it was given.
    prompts = [json.dumps(b["messages"]) for b in loopback_model.bodies]
    assert len(prompts) == 10
    assert "40,000" in prompts[0]  # the evidence, for the truths
    assert turns[0]["answer"][:40] in prompts[1].replace("\\n", "\n")  # the answer, for claims
    assert "| faithfulness | 0.500 |" in (report / "report.md").read_text(encoding="utf-8")


def test_judge_without_a_chat_model_says_why(
    env: Path, good_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    result = invoke("demo", "--report", str(tmp_path / "r"), "--only", "lorry-inspection",
                    "--judge")
    assert result.exit_code == 0, result.output
    assert "not judged" in result.stderr and "needs a chat model" in result.stderr
    suite = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))["suites"][0]
    assert "faithfulness" not in suite["aggregate"] and suite["judge"]["skipped"]
