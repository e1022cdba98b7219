"""``vistarag eval``: run suites, print the suite JSON Schema, compare two runs.

``vistarag eval SUITE.yaml...`` is short for ``vistarag eval run SUITE.yaml...``.
Exit codes: 0 every suite passed its thresholds, 1 a suite failed (or compare found a
regression), 2 the suite or the command line is invalid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vistarag.agent.errors import VistaRAGError
from vistarag.ui.cli_help import Command, Group

err = Console(stderr=True, soft_wrap=True)
out = Console()


class _RunByDefault(Group):
    """A group whose first argument, when not a subcommand, goes to ``run``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(
    cls=_RunByDefault, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Run scripted eval conversations (YAML suites) and gate CI on their metrics. "
    "`vistarag eval SUITE.yaml...` is short for `vistarag eval run SUITE.yaml...`.",
)


def _fail(message: str) -> None:
    for line in message.splitlines():
        err.print(f"[red]error:[/red] {escape(line)}")
    raise typer.Exit(2)


@eval_app.command("run", cls=Command)
def run(
    suites: Annotated[list[str], typer.Argument(metavar="SUITE",
        help="Suite files (or a shipped suite: demo).")],
    report: Annotated[
        Path, typer.Option("--report", metavar="DIR",
            help="Folder for report.json/.md/.html and junit.xml.")
    ] = Path("eval-report"),
    kb: Annotated[
        str | None, typer.Option("--kb", metavar="NAME",
            help="Knowledge base (default: eval-SUITENAME).")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", metavar="GLOB",
            help="Run only these conversations (globs).")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", metavar="N", min=1,
        help="Conversations at once.")] = 1,
    judge: Annotated[bool, typer.Option(
        "--judge", help="Also score faithfulness and answer relevancy with the configured chat "
        "model (DeepEval; needs vistarag\\[judge]).",
    )] = False,
) -> None:
    """Ingest each suite's corpus, run its conversations, score them, write the reports."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from vistarag.agent.settings import Settings
    from vistarag.evals.judge import JUDGE_METRICS
    from vistarag.evals.runner import count_turns, new_run_report, run_suite
    from vistarag.evals.suite import load_suite

    try:
        loaded = [load_suite(s) for s in suites]
    except VistaRAGError as exc:
        _fail(str(exc))
    only = only or []
    total = sum(count_turns(s, only) for s in loaded)
    settings = Settings()
    results = []
    engines: list[Any] = []
    with Progress(TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.description}"), console=err) as bar:
        task = bar.add_task("", total=total)
        done_before = 0
        for suite in loaded:
            def progress(desc: str, done: int, base: int = done_before) -> None:
                bar.update(task, completed=base + done, description=escape(desc))

            try:
                results.append(run_suite(
                    suite, settings, kb=kb, only=only, jobs=jobs, on_progress=progress,
                    engine_out=engines, judge_metrics=JUDGE_METRICS if judge else (),
                ))
            except VistaRAGError as exc:
                _fail(str(exc))
            done_before += count_turns(suite, only)
    run_report = new_run_report(results)
    paths = write_reports(run_report, report, engines)
    for suite in results:
        _print_summary(suite)
    err.print("reports: " + ", ".join(escape(str(p)) for p in paths))
    raise typer.Exit(0 if run_report.passed else 1)


def write_reports(run_report: Any, folder: Path, engines: list[Any] = ()) -> list[Path]:
    """report.json, report.md, report.html and junit.xml in ``folder``."""
    from vistarag.evals.html import write_html
    from vistarag.evals.writers import write_junit, write_markdown

    folder.mkdir(parents=True, exist_ok=True)

    def blob_path(ref: str) -> Path | None:
        for engine in engines:
            try:
                path = engine.blobs.path(ref.removeprefix("blob:"))
            except ValueError:
                return None
            if path.is_file():
                return path
        return None

    return [
        run_report.write(folder / "report.json"),
        write_markdown(run_report, folder / "report.md"),
        write_html(run_report, folder / "report.html", blob_path),
        write_junit(run_report, folder / "junit.xml"),
    ]


def _print_summary(suite: Any) -> None:
    table = Table(title=f"{suite.name}: {'PASSED' if suite.passed else 'FAILED'}")
    for col in ("metric", "value", "threshold"):
        table.add_column(col)
    limits = {t.metric: t for t in suite.thresholds}
    for metric, value in suite.aggregate.items():
        shown = "–" if value is None else (f"{value:.0f}" if metric.endswith("_ms")
                                           else f"{value:.3f}")
        limit = limits.get(metric)
        mark = ""
        if limit:
            colour = "green" if limit.passed else "red"
            mark = f"[{colour}]{'<=' if limit.upper_bound else '>='} {limit.threshold:g}[/]"
        table.add_row(metric, shown, mark)
    out.print(table)
    for conv, turn in suite.turns():
        if conv.skipped is None and not turn.passed:
            failed = "; ".join(f"{c.name}: expected {c.expected}, got {c.actual}"
                               for c in turn.failures)
            err.print(f"[red]FAIL[/red] {escape(conv.name)} turn {turn.index}: "
                      f"{escape(failed[:400])}")
    for conv in suite.conversations:
        if conv.error:
            err.print(f"[red]ERROR[/red] {escape(conv.name)}: {escape(conv.error[:400])}")
        if conv.skipped:
            err.print(f"[yellow]skipped[/yellow] {escape(conv.name)}: {escape(conv.skipped)}")
    if suite.judge.get("skipped"):
        err.print(f"[yellow]not judged[/yellow]: {escape(suite.judge['skipped'])}")


@eval_app.command("schema", cls=Command)
def schema() -> None:
    """Print the JSON Schema of the suite format (for editors: yaml-language-server)."""
    from importlib.resources import files

    print(files("vistarag.evals").joinpath("suite.schema.json").read_text(encoding="utf-8"),
          end="")


@eval_app.command("compare", cls=Command)
def compare(
    run_a: Annotated[Path, typer.Argument(metavar="RUN_A",
        help="Baseline run (folder or report.json).")],
    run_b: Annotated[Path, typer.Argument(metavar="RUN_B",
        help="New run (folder or report.json).")],
    tolerance: Annotated[
        float, typer.Option("--tolerance", metavar="X",
            help="Allowed drop of a rate metric (absolute).")
    ] = 0.02,
    latency_tolerance: Annotated[
        float, typer.Option("--latency-tolerance", metavar="X",
            help="Allowed latency growth (relative).")
    ] = 0.5,
    ignore_latency: Annotated[
        bool, typer.Option("--ignore-latency", help="Do not compare latencies.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the changes as JSON.")] = False,
) -> None:
    """What got better or worse from RUN_A to RUN_B; exit 1 on a regression."""
    from dataclasses import asdict

    from vistarag.evals.compare import compare_runs
    from vistarag.evals.report import load_report

    try:
        a, b = load_report(run_a), load_report(run_b)
    except VistaRAGError as exc:
        _fail(str(exc))
    changes = compare_runs(a, b, tolerance, None if ignore_latency else latency_tolerance)
    regressions = [c for c in changes if c.regression]
    if as_json:
        print(json.dumps([asdict(c) for c in changes], indent=2))
    else:
        table = Table(title=f"{run_a} -> {run_b}")
        for col in ("suite", "what", "before", "after", "change", ""):
            table.add_column(col, overflow="fold")
        for c in changes:
            verdict = ("[red]worse[/red]" if c.regression
                       else "[green]better[/green]" if c.improvement else "")
            table.add_row(c.suite, c.key, _show(c.before), _show(c.after), c.note, verdict)
        out.print(table if changes else "no differences")
    improved = sum(c.improvement for c in changes)
    err.print(f"{len(regressions)} regressions, {improved} improvements "
              f"(tolerance {tolerance:g}"
              + ("" if ignore_latency else f", latency +{latency_tolerance:.0%}") + ")")
    raise typer.Exit(1 if regressions else 0)


def _show(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "–" if value is None else str(value)
