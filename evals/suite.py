"""The eval suite format: a pydantic model loaded from YAML, with line numbers on every error.

A suite names a corpus to ingest, settings overrides, conversations of turns with expectations,
and thresholds that decide the exit code. ``suite.schema.json`` (package data) is generated from
these models (``vistarag eval schema``), so editors can validate suites as they are written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from vistarag.agent.errors import VistaRAGError

SCHEMA_VERSION = 1
Mode = Literal["auto", "direct", "agent"]
TrajectoryMode = Literal["strict", "unordered", "subset", "superset"]
Requirement = Literal["video", "agent", "joint"]
# Aggregate metrics a threshold may name; names ending in ``_ms`` are upper bounds.
THRESHOLD_PATTERN = re.compile(
    r"^((recall|ndcg)@\d+|mrr|answer_checks|citation_precision|citation_recall|trajectory"
    r"|turn_pass_rate|conversation_pass_rate|latency_p50_ms|latency_p95_ms"
    r"|faithfulness|answer_relevancy)$"
)
METRIC_NAMES = (
    "recall@K, ndcg@K, mrr, answer_checks, citation_precision, citation_recall, trajectory, "
    "turn_pass_rate, conversation_pass_rate, latency_p50_ms, latency_p95_ms"
)
# Settings a suite may override (the rest, like the data dir and API keys, stay the user's).
OVERRIDABLE_SETTINGS = (
    "joint_model", "text_model", "reranker", "synthesizer", "top_k", "top_n", "chunk_chars",
    "anthropic_model", "openai_model", "max_context_images", "max_tokens", "page_render_dpi",
    "device",
)


class SuiteError(VistaRAGError):
    """A suite file that cannot be used; the message names the file and the line."""


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str | int | float | dict) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceSpec(_Strict):
    """One relevant source: a retrieved hit matches when every field given matches."""

    document: str | None = Field(
        default=None,
        description="File name, path suffix or glob (e.g. 'report.pdf', 'pdfs/*.pdf'), or doc_id.",
    )
    page: int | None = Field(default=None, ge=1, description="1-based page.")
    pages: tuple[int, int] | None = Field(default=None, description="Inclusive page range.")
    time: tuple[float, float] | None = Field(
        default=None, description="Seconds [start, end]; a timed hit matches when it overlaps."
    )
    modality: list[str] | str | None = Field(
        default=None, description="text, image, page or keyframe (one or a list)."
    )

    @field_validator("modality", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _listify(value)

    @model_validator(mode="after")
    def _not_empty(self) -> SourceSpec:
        if not any(v is not None for v in self.model_dump().values()):
            raise ValueError("a source needs at least one of document, page, pages, time, modality")
        return self


class SourcesExpect(_Strict):
    """Relevant sources: every ``all_of`` source, and at least one of ``any_of``, within k."""

    any_of: list[SourceSpec] = Field(default_factory=list)
    all_of: list[SourceSpec] = Field(default_factory=list)
    k: int | None = Field(default=None, ge=1, description="Cut-off; default: the suite's k.")

    @model_validator(mode="after")
    def _not_empty(self) -> SourcesExpect:
        if not self.any_of and not self.all_of:
            raise ValueError("sources needs any_of or all_of")
        return self


class NumberCheck(_Strict):
    """A number the answer must state, within a tolerance."""

    value: float
    tolerance: float = Field(default=0.0, ge=0)
    relative: bool = Field(default=False, description="Tolerance as a fraction of the value.")


class AnswerExpect(_Strict):
    """Checks on the answer text (case-insensitive unless ``case_sensitive``)."""

    # One value or a list (a before-validator makes every one a list).
    contains: list[str] | str = Field(default_factory=list)
    regex: list[str] | str = Field(default_factory=list)
    not_contains: list[str] | str = Field(default_factory=list)
    numbers: list[NumberCheck | float] | NumberCheck | float = Field(
        default_factory=list, description="Numbers (or {value, tolerance, relative}) to state."
    )
    case_sensitive: bool = False

    @field_validator("contains", "regex", "not_contains", "numbers", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        value = _listify(value)
        return value

    @field_validator("numbers", mode="before")
    @classmethod
    def _bare_numbers(cls, value: Any) -> Any:
        return [{"value": v} if isinstance(v, int | float) else v for v in _listify(value) or []]

    @field_validator("regex", mode="after")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regex {pattern!r}: {exc}") from exc
        return value


class ToolCallSpec(_Strict):
    """An expected tool call: its name and a subset of its arguments."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class ToolsExpect(_Strict):
    """Expected tool calls, matched by agentevals' trajectory match evaluators."""

    match: TrajectoryMode = Field(
        default="strict",
        description="strict: these calls in this order; unordered: these calls in any order; "
        "subset: no call outside these; superset: at least these calls.",
    )
    calls: list[ToolCallSpec]


class Expect(_Strict):
    """What one turn must do."""

    sources: SourcesExpect | None = None
    answer: AnswerExpect | None = None
    tools: ToolsExpect | None = None
    path: Literal["direct", "agent"] | None = Field(
        default=None, description="Which graph path must have answered."
    )
    not_found: bool | None = Field(default=None, description="Must (not) answer 'not found'.")
    latency_ms: float | None = Field(default=None, gt=0, description="Budget for the turn.")


class Turn(_Strict):
    """One user turn: text, images and attachments (paths relative to the corpus root)."""

    text: str = ""
    images: list[str] | str = Field(default_factory=list)
    attachments: list[str] | str = Field(default_factory=list)
    expect: Expect = Field(default_factory=Expect)

    @field_validator("images", "attachments", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _listify(value)

    @model_validator(mode="after")
    def _has_input(self) -> Turn:
        if not self.text and not self.images and not self.attachments:
            raise ValueError("a turn needs text, images or attachments")
        return self


class Conversation(_Strict):
    """Turns run in order in one thread (follow-ups see the earlier turns)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    mode: Mode | None = Field(default=None, description="Graph path: auto, direct or agent.")
    requires: list[Requirement] = Field(
        default_factory=list,
        description="Skip (not fail) unless available: video ingestion, the agent path, "
        "a joint image-text model.",
    )
    turns: list[Turn] = Field(min_length=1)


class Corpus(_Strict):
    """Files to ingest: paths and globs relative to the root (the suite's folder by default).

    Turn images and attachments resolve against the same root.
    """

    root: str | None = Field(
        default=None, description="Folder the paths are relative to, relative to the suite file."
    )

    generate: str | None = Field(
        default=None,
        description="'module:function' writing a corpus into a folder it is given; the root is "
        "then that folder (under the data dir).",
    )
    paths: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_root(self) -> Corpus:
        if self.generate and self.root:
            raise ValueError("give corpus.root or corpus.generate, not both")
        return self

    @field_validator("generate")
    @classmethod
    def _module_function(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[\w.]+:\w+", value):
            raise ValueError("generate must be 'package.module:function'")
        return value


def _settings_overrides() -> type[BaseModel]:
    """A model of the overridable settings, typed and described like ``Settings`` itself."""
    from vistarag.agent.settings import Settings

    fields: dict[str, Any] = {}
    for name in OVERRIDABLE_SETTINGS:
        info = Settings.model_fields[name]
        fields[name] = (info.annotation | None, Field(default=None, description=info.description))
    return create_model("SettingsOverrides", __config__=ConfigDict(extra="forbid"), **fields)


SettingsOverrides = _settings_overrides()
MetricName = Annotated[str, StringConstraints(pattern=THRESHOLD_PATTERN.pattern)]


class Suite(_Strict):
    """An eval suite: corpus, settings, conversations and the thresholds that gate CI."""

    version: Literal[1] = SCHEMA_VERSION
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    corpus: Corpus = Field(default_factory=Corpus)
    settings: SettingsOverrides = Field(
        default_factory=lambda: SettingsOverrides(),
        description="Settings for this suite (the rest stay the user's).",
    )
    k: list[int] = Field(default=[1, 3, 5], description="Cut-offs for recall@k and nDCG@k.")
    thresholds: dict[MetricName, float] = Field(
        default_factory=dict,
        description="Aggregate metric -> minimum (maximum for *_ms), e.g. recall@5: 0.8. "
        "Without thresholds every turn must pass.",
    )
    judge: list[Literal["faithfulness", "answer_relevancy"]] = Field(
        default_factory=list,
        description="LLM-judged metrics (DeepEval) per turn, when a chat model is configured "
        "and the judge extra is installed; otherwise the report says why they did not run.",
    )
    conversations: list[Conversation] = Field(min_length=1)

    @field_validator("k")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if not value or any(k < 1 for k in value):
            raise ValueError("k must be a list of positive integers")
        return sorted(set(value))

    @model_validator(mode="after")
    def _unique_names(self) -> Suite:
        seen: set[str] = set()
        for conv in self.conversations:
            if conv.name in seen:
                raise ValueError(f"two conversations are named {conv.name!r}")
            seen.add(conv.name)
        return self


@dataclass
class LoadedSuite:
    """A validated suite and where it came from."""

    suite: Suite
    path: Path

    @property
    def name(self) -> str:
        return self.suite.name

    @cached_property
    def base_dir(self) -> Path:
        return self.path.parent.resolve()


# ---- loading with line numbers -----------------------------------------------------------------
def _node_at(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The deepest YAML node along a pydantic error location (a field's key, for fields)."""
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            pair = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if pair is None:
                return node
            if i == len(loc) - 1:
                return pair[0]
            node = pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "suite"


def format_errors(path: Path, root: yaml.Node | None, exc: ValidationError) -> str:
    """One line per problem: ``file:line: where: message``."""
    lines = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
        node = _node_at(root, loc)
        line = node.start_mark.line + 1 if node is not None else 1
        message = error["msg"].removeprefix("Value error, ")
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
            message = "unknown metric; use " + METRIC_NAMES
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        lines.append(f"{path}:{line}: {_where(loc)}: {message}")
    return "\n".join(lines)


def parse_suite(text: str, path: Path) -> Suite:
    """Validate a suite's YAML text; a ``SuiteError`` names the file and line of each problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise SuiteError(f"{path}:{line}: invalid YAML: {exc.problem or exc}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}:1: a suite is a mapping with name, corpus and conversations")
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        raise SuiteError(format_errors(path, root, exc)) from None


def load_suite(path: str | Path) -> LoadedSuite:
    """Read and validate a suite file (or a shipped suite by name, e.g. ``demo``)."""
    path = resolve_suite_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the suite: {exc.strerror or exc}") from None
    return LoadedSuite(parse_suite(text, path), path)


SUITES_DIR = Path(__file__).parent / "suites"


def resolve_suite_path(path: str | Path) -> Path:
    """A path as given, or the name of a shipped suite (``demo`` -> evals/suites/demo.yaml)."""
    given = Path(path)
    if given.exists() or given.suffix:
        return given
    shipped = SUITES_DIR / f"{given.name}.yaml"
    return shipped if shipped.is_file() else given


# ---- the published JSON Schema -------------------------------------------------------------------
SCHEMA_FILE = Path(__file__).parent / "suite.schema.json"


def suite_json_schema() -> dict[str, Any]:
    """The JSON Schema of the suite format, generated from the models."""
    schema = Suite.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


if __name__ == "__main__":  # regenerate the checked-in schema: python -m vistarag.evals.suite
    import json

    SCHEMA_FILE.write_text(json.dumps(suite_json_schema(), indent=2) + "\n", encoding="utf-8")
    print(SCHEMA_FILE)
