"""Run eval suites: ingest the corpus, drive every conversation through ``run_turn``, score it.

Each conversation runs in its own thread id (follow-ups see their earlier turns), through the
same turn runner as the CLI and the UI. Conversations may run in parallel (``jobs``).
"""

from __future__ import annotations

import dataclasses
import glob
import importlib
import importlib.util
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vistarag.agent.errors import VistaRAGError
from vistarag.agent.settings import Settings
from vistarag.agent.types import Citation, Hit
from vistarag.evals import metrics as m
from vistarag.evals.report import (
    LOWER_IS_BETTER,
    CheckResult,
    ConversationReport,
    RetrievedHit,
    RunReport,
    SuiteReport,
    ThresholdResult,
    TurnReport,
)
from vistarag.evals.suite import Conversation, LoadedSuite, SuiteError, Turn

CURVE_K = 10  # recall@1..CURVE_K is plotted
ProgressFn = Callable[[str, int], None]  # (description, turns done) -> None


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-") or "suite"


def suite_settings(loaded: LoadedSuite, base: Settings) -> Settings:
    """The user's settings with the suite's overrides applied."""
    return base.model_copy(update=loaded.suite.settings.model_dump(exclude_none=True))


# ---- requirements --------------------------------------------------------------------------
def _no_chat_model(settings: Settings) -> str | None:
    """Why the agent path cannot run here (it plans with a tool-calling chat model), or None."""
    from vistarag.agent.llm import HOW_TO_CONFIGURE, choose_backend

    if choose_backend(settings)[0] == "extractive":
        return f"the agent path needs a chat model: {HOW_TO_CONFIGURE}"
    return None


def missing_requirement(conv: Conversation, engine: Any) -> str | None:
    """Why a conversation cannot run in this build, or None."""
    for need in conv.requires:
        if need == "video" and (
            importlib.util.find_spec("vistarag.agent.ingest.video") is None
            or importlib.util.find_spec("av") is None
        ):
            return "video ingestion is not available in this build (install the video extra)"
        if need == "agent" and (why := _no_chat_model(engine.settings)):
            return why
        if need == "joint" and engine.models.text_bridge:
            return "no joint image-text model is available (text-bridge mode)"
    if conv.mode == "agent" and (why := _no_chat_model(engine.settings)):
        return why
    return None


def model_failure(settings: Settings, result: Any) -> str | None:
    """Why a turn's answer came from the extractive fallback although a chat model is
    configured (an auth error, an unreachable server...), or None.

    Such an answer is the offline one: scoring it as the model's would pass a run whose model
    never answered.
    """
    from vistarag.agent.llm import choose_backend

    if settings.synthesizer == "extractive" or result.synthesizer != "extractive":
        return None
    backend, notice = choose_backend(settings)
    if settings.synthesizer == "auto" and backend == "extractive" and notice is None:
        return None  # offline by choice: no key or endpoint is set
    said = [n for n in result.notices if "extractive" in n]
    return (said[-1] if said else notice) or "the answer came from the extractive fallback"


# ---- corpus --------------------------------------------------------------------------------
def corpus_root(loaded: LoadedSuite, settings: Settings) -> Path:
    """Where corpus and turn paths resolve: the generated corpus, or the suite's folder."""
    gen = loaded.suite.corpus.generate
    if gen is None:
        root = (loaded.base_dir / (loaded.suite.corpus.root or ".")).resolve()
        if not root.is_dir():
            raise SuiteError(f"{loaded.path}: corpus root {root} is not a folder")
        return root
    module_name, func_name = gen.split(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise SuiteError(f"{loaded.path}: corpus.generate {gen!r}: {exc}") from None
    root = (settings.home / "eval-corpora" / _slug(loaded.name)).resolve()
    func(root)
    return root


def corpus_files(loaded: LoadedSuite, root: Path) -> tuple[list[Path], list[str]]:
    """Files named by the corpus paths and globs, and the patterns that matched nothing."""
    files: list[Path] = []
    missing: list[str] = []
    for pattern in loaded.suite.corpus.paths or ["."]:
        full = root / pattern
        matches = sorted(Path(p) for p in glob.glob(str(full), recursive=True))
        if not matches:
            missing.append(pattern)
        files.extend(p for p in matches if p not in files)
    return files, missing


def ingest_corpus(loaded: LoadedSuite, engine: Any, kb: str, root: Path,
                  on_file: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Ingest the corpus (unchanged files are skipped by content hash); a summary for the report."""
    files, missing = corpus_files(loaded, root)
    report = engine.ingestor(kb).ingest_paths(files, on_file=on_file)
    return {
        "root": str(root),
        "summary": report.summary(),
        "missing": missing,
        "errors": [f"{r.path}: {r.message}" for r in report.errors],
        "skipped": [f"{r.path}: {r.message}" for r in report.results if r.status == "skipped"],
    }


# ---- scoring one turn ----------------------------------------------------------------------
def _located(hit: Hit | Citation, rank: int, items: list[list[Any]] | None) -> RetrievedHit:
    text = hit.text if isinstance(hit, Hit) else hit.snippet
    return RetrievedHit(
        rank=rank, relevant=m.is_relevant(hit, items) if items else None,
        score=float(getattr(hit, "score", 0.0)), modality=hit.modality, doc_id=hit.doc_id,
        source=hit.source, where=hit.locator(), page=hit.page, t_start=hit.t_start,
        t_end=hit.t_end, blob=hit.blob, text=" ".join(text.split())[:300],
    )


def score_turn(turn: Turn, result: Any, latency_ms: float, ks: Sequence[int],
               default_k: int) -> tuple[list[CheckResult], dict[str, float | None], list[float]]:
    """Checks, per-turn metrics and the recall@1..CURVE_K curve of one turn's result."""
    expect = turn.expect
    checks: list[CheckResult] = []
    metrics: dict[str, float | None] = {"latency_ms": latency_ms}
    curve: list[float] = []
    sources: list[Hit] = list(result.sources)
    if expect.sources is not None:
        items = m.relevance_items(expect.sources)
        credits = m.item_ranks(sources, items)
        relevant = [c is not None or m.is_relevant(h, items) for c, h in zip(credits, sources,
                                                                             strict=True)]
        for k in ks:
            metrics[f"recall@{k}"] = m.recall_at_k(credits, len(items), k)
            metrics[f"ndcg@{k}"] = m.ndcg_at_k(credits, len(items), k)
        metrics["mrr"] = m.mrr(relevant)
        curve = [m.recall_at_k(credits, len(items), k) for k in range(1, CURVE_K + 1)]
        cit = m.citation_scores(result.citations, items)
        metrics["citation_precision"] = cit.precision
        metrics["citation_recall"] = cit.recall
        k = expect.sources.k or default_k
        found = m.recall_at_k(credits, len(items), k)
        wanted = [" or ".join(_spec_text(s) for s in alts) for alts in items]
        got = [h.locator() for h in sources[:k]] or ["nothing retrieved"]
        checks.append(CheckResult(name=f"sources@{k}", passed=found >= 1.0,
                                  expected="; ".join(wanted), actual="; ".join(got)))
    if expect.answer is not None:
        answer_results = m.answer_checks(result.answer, expect.answer)
        checks.extend(CheckResult(**dataclasses.asdict(c)) for c in answer_results)
        metrics["answer_checks"] = (
            sum(c.passed for c in answer_results) / len(answer_results) if answer_results else None
        )
    if expect.tools is not None:
        actual = [(t.name, dict(t.args)) for t in result.trajectory]
        ok = m.trajectory_match(actual, expect.tools)
        metrics["trajectory"] = 1.0 if ok else 0.0
        checks.append(CheckResult(
            name=f"tools ({expect.tools.match})", passed=ok,
            expected=", ".join(_call_text(c.name, c.args) for c in expect.tools.calls) or "none",
            actual=", ".join(_call_text(n, a) for n, a in actual) or "no tool calls",
        ))
    if expect.path is not None:
        checks.append(CheckResult(name="path", passed=result.path == expect.path,
                                  expected=expect.path, actual=result.path))
    if expect.not_found is not None:
        checks.append(CheckResult(name="not_found", passed=result.not_found == expect.not_found,
                                  expected=str(expect.not_found).lower(),
                                  actual=str(result.not_found).lower()))
    if expect.latency_ms is not None:
        checks.append(CheckResult(name="latency", passed=latency_ms <= expect.latency_ms,
                                  expected=f"<= {expect.latency_ms:.0f} ms",
                                  actual=f"{latency_ms:.0f} ms"))
    return checks, metrics, curve


def _spec_text(spec: Any) -> str:
    return " ".join(f"{k}={v}" for k, v in spec.model_dump(exclude_none=True).items())


def _call_text(name: str, args: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
    return f"{name}({shown})"


# ---- running -------------------------------------------------------------------------------
class SuiteRunner:
    """Runs one suite's conversations against one engine and graph."""

    def __init__(self, loaded: LoadedSuite, settings: Settings, kb: str, root: Path,
                 engine: Any, graph: Any, judge: Any = None) -> None:
        self.loaded, self.settings, self.kb, self.root = loaded, settings, kb, root
        self.engine, self.graph, self.judge = engine, graph, judge

    def _path(self, rel: str) -> str:
        path = Path(rel)
        return str(path if path.is_absolute() else (self.root / path))

    def _context(self, conv: Conversation) -> Any:
        from vistarag.graphs import VistaContext

        kwargs: dict[str, Any] = {"kb": self.kb}
        if conv.mode is not None:
            kwargs["mode"] = conv.mode
        return VistaContext(**kwargs)

    def run_conversation(
        self, conv: Conversation, on_turn: Callable[[], None]
    ) -> ConversationReport:
        from vistarag.graphs.runner import run_turn

        report = ConversationReport(name=conv.name, description=conv.description, mode=conv.mode)
        reason = missing_requirement(conv, self.engine)
        if reason:
            report.skipped = reason
            for index, turn in enumerate(conv.turns, 1):
                report.turns.append(TurnReport(index=index, text=turn.text, images=turn.images,
                                               attachments=turn.attachments, passed=False))
                on_turn()
            return report
        report.thread_id = f"eval-{_slug(self.loaded.name)}-{conv.name}-{uuid.uuid4().hex[:8]}"
        context = self._context(conv)
        suite = self.loaded.suite
        for index, turn in enumerate(conv.turns, 1):
            turn_report = TurnReport(index=index, text=turn.text, images=turn.images,
                                     attachments=turn.attachments,
                                     reranker=self.settings.reranker)
            started = time.perf_counter()
            try:
                result = run_turn(
                    self.graph, turn.text, images=[self._path(p) for p in turn.images],
                    attachments=[self._path(p) for p in turn.attachments],
                    thread_id=report.thread_id, context=context,
                )
            except Exception as exc:  # one broken turn must not stop the suite
                turn_report.error = f"{exc.__class__.__name__}: {exc}"
                turn_report.passed = False
                if turn.expect.sources is not None:  # a crashed turn found nothing
                    turn_report.metrics = {f"{name}@{k}": 0.0 for k in suite.k
                                           for name in ("recall", "ndcg")} | {"mrr": 0.0}
                turn_report.checks.append(CheckResult(name="error", passed=False,
                                                      expected="the turn runs",
                                                      actual=turn_report.error))
                report.turns.append(turn_report)
                on_turn()
                continue
            latency = (time.perf_counter() - started) * 1000
            checks, metrics, curve = score_turn(turn, result, latency, suite.k, max(suite.k))
            if failure := model_failure(self.settings, result):
                turn_report.error = f"model failed: {failure}"
                report.error = report.error or turn_report.error
                checks.append(CheckResult(name="error", passed=False,
                                          expected="an answer from the configured model",
                                          actual=turn_report.error))
            notices = list(result.notices)
            if self.judge is not None:
                try:
                    metrics |= self.judge.score(turn.text, result.answer,
                                                [h.text for h in result.sources])
                except Exception as exc:  # a judge that fails leaves the turn unjudged
                    notices.append(f"judge failed: {exc.__class__.__name__}: {exc}")
            items = m.relevance_items(turn.expect.sources) if turn.expect.sources else None
            turn_report = turn_report.model_copy(update={
                "checks": checks, "metrics": metrics, "recall_curve": curve,
                "passed": all(c.passed for c in checks), "answer": result.answer,
                "retrieved": [_located(h, i, items) for i, h in enumerate(result.sources, 1)],
                "citations": [_located(c, c.n, items) for c in result.citations],
                "trajectory": [t.model_dump(mode="json") for t in result.trajectory],
                "timings": dict(result.timings), "latency_ms": round(latency, 1),
                "path": result.path, "synthesizer": result.synthesizer,
                "modality": result.modality, "not_found": result.not_found,
                "notices": notices, "error": turn_report.error,
            })
            report.turns.append(turn_report)
            on_turn()
        report.passed = all(t.passed for t in report.turns)
        return report


def make_judge(settings: Settings, metrics: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    """The LLM judge for these metrics (None when none is asked for or it cannot run) and
    what the report says about it."""
    if not metrics:
        return None, {}
    from vistarag.evals.judge import Judge, JudgeUnavailable

    try:
        judge = Judge(settings, list(dict.fromkeys(metrics)))
    except JudgeUnavailable as exc:
        return None, {"skipped": str(exc), "metrics": []}
    return judge, {"model": judge.label, "metrics": list(judge.metrics)}


def warm_up(engine: Any) -> None:
    """Load the models before the first turn, so turn latencies measure turns, not loading."""
    engine.models.text_encoder  # noqa: B018
    engine.models.joint  # noqa: B018
    engine.models.ocr  # noqa: B018
    engine.reranker  # noqa: B018


def aggregate(report: SuiteReport, ks: Sequence[int]) -> None:
    """Fill the suite's aggregate metrics, latency per node and what ran."""
    ran_convs = [c for c in report.conversations if c.skipped is None]
    turns = [t for c in ran_convs for t in c.turns]
    agg: dict[str, float | None] = {}
    for k in ks:
        agg[f"recall@{k}"] = m.mean(t.metrics.get(f"recall@{k}") for t in turns)
        agg[f"ndcg@{k}"] = m.mean(t.metrics.get(f"ndcg@{k}") for t in turns)
    agg["mrr"] = m.mean(t.metrics.get("mrr") for t in turns)
    passed_checks = sum(c.passed for t in turns for c in t.checks if _is_answer_check(c.name))
    all_checks = sum(1 for t in turns for c in t.checks if _is_answer_check(c.name))
    agg["answer_checks"] = passed_checks / all_checks if all_checks else None
    agg["citation_precision"] = m.mean(t.metrics.get("citation_precision") for t in turns)
    agg["citation_recall"] = m.mean(t.metrics.get("citation_recall") for t in turns)
    agg["trajectory"] = m.mean(t.metrics.get("trajectory") for t in turns)
    for name in report.judge.get("metrics", []):
        agg[name] = m.mean(t.metrics.get(name) for t in turns)
    agg["turn_pass_rate"] = sum(t.passed for t in turns) / len(turns) if turns else None
    agg["conversation_pass_rate"] = (
        sum(c.passed for c in ran_convs) / len(ran_convs) if ran_convs else None
    )
    latencies = [t.latency_ms for t in turns if t.error is None]
    agg["latency_p50_ms"] = m.percentile(latencies, 50)
    agg["latency_p95_ms"] = m.percentile(latencies, 95)
    report.aggregate = {k: (round(v, 4) if v is not None else None) for k, v in agg.items()}
    curves = [t.recall_curve for t in turns if t.recall_curve]
    report.recall_curve = [round(sum(c[i] for c in curves) / len(curves), 4)
                           for i in range(CURVE_K)] if curves else []
    nodes: dict[str, list[float]] = {}
    for t in turns:
        for node, ms in t.timings.items():
            nodes.setdefault(node, []).append(ms)
    report.node_latency = {
        node: {"p50": m.percentile(v, 50), "p95": m.percentile(v, 95), "n": float(len(v))}
        for node, v in nodes.items()
    }
    report.ran = {
        "path": dict(Counter(t.path for t in turns if t.error is None)),
        "synthesizer": dict(Counter(t.synthesizer for t in turns if t.error is None)),
        "reranker": dict(Counter(t.reranker for t in turns if t.error is None)),
        "modality": dict(Counter(t.modality for t in turns if t.error is None)),
    }


def _is_answer_check(name: str) -> bool:
    return name in ("contains", "regex", "not_contains", "number")


def judge_thresholds(report: SuiteReport, thresholds: dict[str, float]) -> None:
    """Thresholds decide whether the suite passes; without any, every turn must pass."""
    results = []
    for metric, threshold in thresholds.items():
        value = report.aggregate.get(metric)
        upper = metric in LOWER_IS_BETTER
        ok = value is not None and (value <= threshold if upper else value >= threshold)
        results.append(ThresholdResult(metric=metric, threshold=threshold, value=value,
                                       passed=ok, upper_bound=upper))
    report.thresholds = results
    if thresholds:
        report.passed = all(r.passed for r in results)
    else:
        report.passed = all(c.passed for c in report.conversations)
    if any(c.error for c in report.conversations):  # whatever the thresholds say
        report.passed = False


def run_suite(
    loaded: LoadedSuite,
    base: Settings,
    *,
    kb: str | None = None,
    only: Sequence[str] = (),
    jobs: int = 1,
    on_progress: ProgressFn | None = None,
    engine_out: list[Any] | None = None,
    judge_metrics: Sequence[str] = (),
) -> SuiteReport:
    """Ingest the suite's corpus and run its conversations; the scored ``SuiteReport``."""
    from langgraph.checkpoint.memory import InMemorySaver

    from vistarag.agent.engine import Engine
    from vistarag.graphs import build_graph

    started = time.perf_counter()
    suite = loaded.suite
    settings = suite_settings(loaded, base)
    kb_name = kb or f"eval-{_slug(suite.name)}"
    conversations = [c for c in suite.conversations if not only or _selected(c.name, only)]
    if only and not conversations:
        names = ", ".join(c.name for c in suite.conversations)
        raise VistaRAGError(f"--only {', '.join(only)} matches no conversation of "
                            f"{suite.name!r} ({names})")
    engine = Engine(settings)
    if engine_out is not None:
        engine_out.append(engine)
    root = corpus_root(loaded, settings)
    def on_file(path: Path) -> None:
        if on_progress:
            on_progress(f"{suite.name}: ingesting {path.name}", 0)

    corpus = ingest_corpus(loaded, engine, kb_name, root, on_file)
    warm_up(engine)
    graph = build_graph(settings, checkpointer=InMemorySaver(), engine=engine)
    judge, judged = make_judge(settings, judge_metrics or suite.judge)
    runner = SuiteRunner(loaded, settings, kb_name, root, engine, graph, judge)
    done = 0

    def on_turn() -> None:
        nonlocal done
        done += 1
        if on_progress:
            on_progress(suite.name, done)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        convs = list(pool.map(lambda c: runner.run_conversation(c, on_turn), conversations))
    report = SuiteReport(
        name=suite.name, path=str(loaded.path), description=suite.description, kb=kb_name,
        settings={"kb": kb_name, "synthesizer": settings.synthesizer,
                  "reranker": settings.reranker, "joint_model": settings.joint_model,
                  "text_model": settings.text_model, "top_k": settings.top_k,
                  "top_n": settings.top_n, "text_bridge": engine.models.text_bridge,
                  **suite.settings.model_dump(exclude_none=True)},
        corpus=corpus, k=list(suite.k), conversations=convs, judge=judged,
    )
    aggregate(report, suite.k)
    judge_thresholds(report, suite.thresholds)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _selected(name: str, only: Sequence[str]) -> bool:
    import fnmatch

    return any(fnmatch.fnmatch(name, pattern) for pattern in only)


def count_turns(loaded: LoadedSuite, only: Sequence[str] = ()) -> int:
    return sum(len(c.turns) for c in loaded.suite.conversations
               if not only or _selected(c.name, only))


def new_run_report(suites: list[SuiteReport]) -> RunReport:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("vistarag")
    except PackageNotFoundError:
        ver = ""
    return RunReport(created=datetime.now(UTC).isoformat(timespec="seconds"),
                     vistarag_version=ver, passed=all(s.passed for s in suites), suites=suites)
