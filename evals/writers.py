"""report.md (summary table, each failure with expected vs actual) and JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from vistarag.evals.report import RunReport, SuiteReport


def _fmt(value: float | None, metric: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if metric.endswith("_ms") else f"{value:.3f}"


def _cell(text: str, limit: int = 240) -> str:
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def suite_markdown(suite: SuiteReport) -> list[str]:
    status = "PASSED" if suite.passed else "FAILED"
    turns = suite.turns()
    ran = [t for c, t in turns if c.skipped is None]
    lines = [
        f"## {suite.name}: {status}",
        "",
        f"{suite.description}".strip(),
        "",
        f"Knowledge base `{suite.kb}`; {len(ran)} turns in "
        f"{sum(c.skipped is None for c in suite.conversations)} conversations "
        f"({sum(c.skipped is not None for c in suite.conversations)} skipped) in "
        f"{suite.seconds:.1f} s. Synthesizer {suite.settings.get('synthesizer')}, reranker "
        f"{suite.settings.get('reranker')}, text-bridge {suite.settings.get('text_bridge')}.",
        "",
        "| metric | value | threshold |",
        "| --- | --- | --- |",
    ]
    limits = {t.metric: t for t in suite.thresholds}
    for metric, value in suite.aggregate.items():
        limit = limits.get(metric)
        mark = ""
        if limit is not None:
            op = "<=" if limit.upper_bound else ">="
            mark = f"{op} {limit.threshold:g} {'ok' if limit.passed else '**FAILED**'}"
        lines.append(f"| {metric} | {_fmt(value, metric)} | {mark} |")
    lines += ["", "| conversation | turns | result |", "| --- | --- | --- |"]
    for conv in suite.conversations:
        result = (f"skipped: {conv.skipped}" if conv.skipped
                  else f"**ERROR**: {conv.error}" if conv.error
                  else "pass" if conv.passed else "**FAIL**")
        passed = "–" if conv.skipped else sum(t.passed for t in conv.turns)
        lines.append(f"| {conv.name} | {passed}/{len(conv.turns)} | {_cell(result)} |")
    if suite.node_latency:
        lines += ["", "| node | p50 ms | p95 ms |", "| --- | --- | --- |"]
        for node, stats in suite.node_latency.items():
            lines.append(f"| {node} | {_fmt(stats.get('p50'), '_ms')} | "
                         f"{_fmt(stats.get('p95'), '_ms')} |")
    ran_parts = [f"{key}: " + ", ".join(f"{k} ×{v}" for k, v in counts.items())
                 for key, counts in suite.ran.items() if counts]
    if ran_parts:
        lines += ["", "What ran: " + "; ".join(ran_parts) + "."]
    corpus = suite.corpus
    missing = [f"{p}: matched no file" for p in corpus.get("missing", [])]
    problems = corpus.get("errors", []) + missing
    if problems:
        lines += ["", "Corpus problems:", *[f"- {_cell(p, 400)}" for p in problems]]
    failures = [(c, t) for c, t in turns if c.skipped is None and not t.passed]
    if failures:
        lines += ["", "### Failures", ""]
    for conv, turn in failures:
        lines.append(f"#### {conv.name} turn {turn.index}: {_cell(turn.text, 160)}")
        lines += ["", "| check | expected | actual |", "| --- | --- | --- |"]
        for check in turn.failures:
            lines.append(f"| {check.name} | {_cell(check.expected)} | {_cell(check.actual)} |")
        lines += ["", f"Answer ({turn.synthesizer or 'no synthesizer'}, path {turn.path}): "
                  f"{_cell(turn.answer, 400) or '(none)'}", ""]
    return lines


def write_markdown(run: RunReport, path: Path) -> Path:
    lines = [f"# VistaRAG eval report: {'PASSED' if run.passed else 'FAILED'}", "",
             f"Created {run.created}; vistarag {run.vistarag_version or '(dev)'}.", ""]
    for suite in run.suites:
        lines += suite_markdown(suite) + [""]
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path


def write_junit(run: RunReport, path: Path) -> Path:
    """One <testsuite> per suite, one <testcase> per turn; thresholds are test cases too."""
    root = ET.Element("testsuites", name="vistarag-eval")
    for suite in run.suites:
        cases = suite.turns()
        el = ET.SubElement(root, "testsuite", name=suite.name, time=f"{suite.seconds:.2f}")
        n_fail = n_skip = n_tests = 0
        for conv, turn in cases:
            n_tests += 1
            case = ET.SubElement(el, "testcase", classname=f"{suite.name}.{conv.name}",
                                 name=f"turn {turn.index}: {_cell(turn.text, 80)}",
                                 time=f"{turn.latency_ms / 1000:.3f}")
            if conv.skipped:
                n_skip += 1
                ET.SubElement(case, "skipped", message=conv.skipped)
            elif turn.error:
                n_fail += 1
                ET.SubElement(case, "error", message=turn.error).text = turn.error
            elif not turn.passed:
                n_fail += 1
                detail = "\n".join(f"{c.name}: expected {c.expected}; got {c.actual}"
                                   for c in turn.failures)
                ET.SubElement(case, "failure",
                              message=", ".join(c.name for c in turn.failures)).text = detail
        for limit in suite.thresholds:
            n_tests += 1
            case = ET.SubElement(el, "testcase", classname=f"{suite.name}.thresholds",
                                 name=limit.metric)
            if not limit.passed:
                n_fail += 1
                op = "<=" if limit.upper_bound else ">="
                ET.SubElement(case, "failure", message=(
                    f"{limit.metric} = {_fmt(limit.value, limit.metric)}, "
                    f"needs {op} {limit.threshold:g}"))
        el.set("tests", str(n_tests))
        el.set("failures", str(n_fail))
        el.set("skipped", str(n_skip))
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
