"""The run report: a versioned pydantic model written as report.json, read back by ``compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from vistarag.agent.errors import VistaRAGError

REPORT_SCHEMA_VERSION = 1
# Aggregate metrics where lower is better (everything else: higher is better).
LOWER_IS_BETTER = ("latency_p50_ms", "latency_p95_ms")


class CheckResult(BaseModel):
    """One expectation of a turn: what was expected and what happened."""

    name: str
    passed: bool
    expected: str = ""
    actual: str = ""


class RetrievedHit(BaseModel):
    rank: int
    relevant: bool | None = None
    score: float = 0.0
    modality: str = ""
    doc_id: str = ""
    source: str = ""
    where: str = ""
    page: int | None = None
    t_start: float | None = None
    t_end: float | None = None
    blob: str | None = None
    text: str = ""


class TurnReport(BaseModel):
    index: int
    text: str = ""
    images: list[str] = Field(default_factory=list)
    attachments: list[str] = Field(default_factory=list)
    passed: bool = True
    error: str | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    metrics: dict[str, float | None] = Field(default_factory=dict)
    recall_curve: list[float] = Field(default_factory=list)
    answer: str = ""
    retrieved: list[RetrievedHit] = Field(default_factory=list)
    citations: list[RetrievedHit] = Field(default_factory=list)
    trajectory: list[dict[str, Any]] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    latency_ms: float = 0.0
    path: str = ""
    synthesizer: str = ""
    reranker: str = ""
    modality: str = ""
    not_found: bool = False
    notices: list[str] = Field(default_factory=list)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]


class ConversationReport(BaseModel):
    name: str
    description: str = ""
    mode: str | None = None
    thread_id: str = ""
    skipped: str | None = Field(default=None, description="Why it did not run, if it did not.")
    error: str | None = Field(
        default=None, description="Why its answers are not the model's (model failed: ...)."
    )
    passed: bool = True
    turns: list[TurnReport] = Field(default_factory=list)


class ThresholdResult(BaseModel):
    metric: str
    threshold: float
    value: float | None
    passed: bool
    upper_bound: bool = False


class SuiteReport(BaseModel):
    name: str
    path: str
    description: str = ""
    kb: str
    settings: dict[str, Any] = Field(default_factory=dict)
    corpus: dict[str, Any] = Field(default_factory=dict)
    k: list[int] = Field(default_factory=list)
    aggregate: dict[str, float | None] = Field(default_factory=dict)
    recall_curve: list[float] = Field(default_factory=list)
    node_latency: dict[str, dict[str, float | None]] = Field(default_factory=dict)
    ran: dict[str, dict[str, int]] = Field(default_factory=dict)
    thresholds: list[ThresholdResult] = Field(default_factory=list)
    judge: dict[str, Any] = Field(default_factory=dict)  # {model, metrics} or {skipped: why}
    passed: bool = True
    seconds: float = 0.0
    conversations: list[ConversationReport] = Field(default_factory=list)

    def turns(self) -> list[tuple[ConversationReport, TurnReport]]:
        return [(c, t) for c in self.conversations for t in c.turns]


class RunReport(BaseModel):
    schema_version: int = REPORT_SCHEMA_VERSION
    created: str
    vistarag_version: str = ""
    passed: bool = True
    suites: list[SuiteReport] = Field(default_factory=list)

    def write(self, path: Path) -> Path:
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return path


def load_report(path: str | Path) -> RunReport:
    """A report.json (or a run folder holding one); a clear error for anything else."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise VistaRAGError(f"{path}: cannot read the report: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise VistaRAGError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != REPORT_SCHEMA_VERSION:
        raise VistaRAGError(
            f"{path}: report schema version {version!r}; this vistarag reads "
            f"version {REPORT_SCHEMA_VERSION}"
        )
    return RunReport.model_validate(data)
