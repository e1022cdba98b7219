"""Suite files: validation errors name the file and line; the published schema is current."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from vistarag.evals.suite import (
    SCHEMA_FILE,
    SUITES_DIR,
    SuiteError,
    load_suite,
    parse_suite,
    suite_json_schema,
)
from vistarag.ui.cli import app

GOOD = """\
name: mini
corpus:
  paths: [docs/*.pdf]
settings:
  synthesizer: extractive
thresholds:
  recall@5: 0.8
conversations:
  - name: one
    turns:
      - text: How often are lorries inspected?
        expect:
          sources: {all_of: [{document: report.pdf, page: 2}]}
          answer: {contains: "40,000", numbers: [40000]}
"""


def errors_of(text: str) -> str:
    with pytest.raises(SuiteError) as info:
        parse_suite(text, Path("suite.yaml"))
    return str(info.value)


def test_a_good_suite_loads() -> None:
    suite = parse_suite(GOOD, Path("suite.yaml"))
    turn = suite.conversations[0].turns[0]
    assert turn.expect.answer.contains == ["40,000"]
    assert turn.expect.answer.numbers[0].value == 40000
    assert suite.k == [1, 3, 5]


def test_unknown_field_names_its_line() -> None:
    text = GOOD.replace("          answer:", "          answr:")
    assert "suite.yaml:14: conversations[0].turns[0].expect.answr: unknown field" in errors_of(text)


def test_bad_values_name_their_lines() -> None:
    text = GOOD.replace("page: 2", "page: 0").replace('numbers: [40000]', "regex: '(unclosed'")
    message = errors_of(text)
    assert "suite.yaml:13: conversations[0].turns[0].expect.sources.all_of[0].page:" in message
    assert "suite.yaml:14: conversations[0].turns[0].expect.answer.regex: invalid regex" in message


def test_unknown_setting_threshold_and_missing_turn_input() -> None:
    text = (GOOD.replace("synthesizer: extractive", "synthesiser: extractive")
            .replace("recall@5", "recal@5")
            .replace("text: How often are lorries inspected?", "images: []"))
    message = errors_of(text)
    assert "suite.yaml:5: settings.synthesiser: unknown field" in message
    assert "suite.yaml:7: thresholds.recal@5: unknown metric; use recall@K" in message
    assert "suite.yaml:11: conversations[0].turns[0]: a turn needs text" in message


def test_bad_setting_value_and_yaml_syntax() -> None:
    assert "suite.yaml:5: settings.synthesizer: Input should be 'auto'" in errors_of(
        GOOD.replace("extractive", "gpt-9"))
    assert errors_of("name: x\nconversations: [\n  - a: 1\n").startswith("suite.yaml:")
    assert "a suite is a mapping" in errors_of("- just\n- a list\n")


def test_missing_suite_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="nothere.yaml: cannot read the suite"):
        load_suite(tmp_path / "nothere.yaml")


def test_published_schema_is_current_and_validates_the_shipped_suites() -> None:
    published = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert published == suite_json_schema(), "run: python -m vistarag.evals.suite"
    shipped = sorted(SUITES_DIR.glob("*.yaml"))
    assert {p.name for p in shipped} >= {"demo.yaml", "shared_data.yaml"}
    for path in shipped:
        jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), published)
        load_suite(path)  # and the pydantic model accepts it
    assert len(load_suite("shared_data").suite.conversations) >= 12
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "conversations": [{"name": "c", "turns": [
            {"text": "q", "expect": {"answr": {}}}]}]}, published)


def test_eval_schema_command_prints_the_schema() -> None:
    result = CliRunner().invoke(app, ["eval", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "Suite"


def test_eval_of_an_invalid_suite_exits_2_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("    turns:", "    turnz:"), encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", str(bad), "--report", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert f"{bad}:10: conversations[0].turnz: unknown field" in result.stderr
    assert f"{bad}:9: conversations[0].turns: Field required" in result.stderr
