"""Every command's help reads naturally: value names (PATH, NAME, GLOB), no type labels such
as ``<bool>`` or ``<list[str]>``, flags without a value, brackets in help text kept."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from vistarag.ui.cli import app

_TYPE_LABEL = re.compile(r"<(?:bool|str|int|float|path|list\[[^\]]*\]|[a-z]+ range)>")


def _command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(command, path: list[str]) -> None:  # type: ignore[no-untyped-def]
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(root, [])
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "vistarag")
def test_help_shows_value_names_not_type_labels(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert not _TYPE_LABEL.search(result.output), result.output


def test_help_names_option_values_and_keeps_brackets() -> None:
    runner = CliRunner()
    search = runner.invoke(app, ["search", "--help"], terminal_width=100).output
    assert re.search(r"--where\s+KEY=VALUE", search)
    assert re.search(r"--doc\s+DOC", search)
    assert re.search(r"--json\s+Print JSON", search)  # a flag: no value after it
    run = runner.invoke(app, ["eval", "run", "--help"], terminal_width=100).output
    assert "vistarag[judge]" in run  # not eaten as rich markup
