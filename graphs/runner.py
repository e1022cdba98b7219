"""One turn, for every front end: ``run_turn`` / ``stream_turn`` / ``astream_turn``.

The CLI, the Chainlit UI, the eval runner and embedding apps all drive a turn through here. A
turn streams ``TurnEvent`` objects (tokens, node steps, tool calls, ingestion) and ends with a
typed ``TurnResult`` (answer, citations, sources, trajectory, timings, notices). It works with
or without a checkpointer: the result is read from the stream, never from ``get_state``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import AIMessageChunk, HumanMessage
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, Field

from vistarag.agent.citations import Renumberer, numbering_for
from vistarag.agent.types import Citation, Hit
from vistarag.graphs.context import VistaContext
from vistarag.graphs.services import services_of
from vistarag.graphs.turn import store_image_ref, without_inline_images

ANSWER_NODES = frozenset({"synthesize", "agent", "not_found"})


@dataclass(frozen=True)
class TurnEvent:
    """Something that happened during a turn, in order.

    ``kind``:
    - ``token``: ``text`` is the next piece of the answer;
    - ``step``: a graph node started (``status="start"``) or ended (``"end"``, with ``ms`` and a
      one-line ``summary``);
    - ``tool``: a tool call on the agent path ended (``name``, ``args``, ``hits``, ``ms``);
    - ``ingest``: an attached file was ingested (``data`` holds path, status, points, message);
    - ``notice``: something the user should know (``text``).
    """

    kind: Literal["token", "step", "tool", "ingest", "notice"]
    text: str = ""
    name: str = ""
    status: str = ""
    ms: float | None = None
    summary: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class ToolCallRecord(BaseModel):
    """One tool call on the agent path, as evals read it."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    hits: int = 0
    ms: float = 0.0
    error: str | None = None


class TurnResult(BaseModel):
    """What a turn returns to its caller."""

    thread_id: str
    answer: str = ""
    citations: list[Citation] = Field(default_factory=list)
    sources: list[Hit] = Field(default_factory=list)
    trajectory: list[ToolCallRecord] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    notices: list[str] = Field(default_factory=list)
    synthesizer: str = ""
    modality: str = ""
    path: str = "direct"
    not_found: bool = False
    ingested: list[dict[str, Any]] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


EventHandler = Callable[[TurnEvent], None]


def turn_input(
    graph: CompiledStateGraph, text: str = "", images: Sequence[str | Path] = (),
    attachments: Sequence[str | Path] = (), message: HumanMessage | None = None,
) -> dict[str, Any]:
    """The graph input for one user turn. This is the input boundary: inline images (data URLs,
    base64 blocks in ``message``) are stored as blobs here, so no checkpoint holds image bytes.
    """
    services = services_of(graph)
    refs = [str(p) for p in images]
    if services is not None:
        refs = [store_image_ref(ref, services.engine.blobs) for ref in refs]
        message = without_inline_images(message, services.engine.blobs) if message else None
    data: dict[str, Any] = {"question": text, "images": refs,
                            "attachments": [str(p) for p in attachments]}
    if message is not None:
        data["messages"] = [message]
    return data


def _config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


def result_from_state(thread_id: str, state: dict[str, Any]) -> TurnResult:
    """A ``TurnResult`` from the graph's output values."""
    return TurnResult(
        thread_id=thread_id,
        answer=state.get("answer") or "",
        citations=[Citation.model_validate(c) for c in state.get("citations") or []],
        sources=[Hit.model_validate(h) for h in state.get("sources") or []],
        trajectory=[ToolCallRecord.model_validate(t) for t in state.get("trajectory") or []],
        timings=dict(state.get("timings") or {}),
        notices=list(state.get("notices") or []),
        synthesizer=state.get("synthesizer") or "",
        modality=state.get("modality") or "",
        path=state.get("path") or "direct",
        not_found=bool(state.get("not_found")),
        ingested=list(state.get("ingested") or []),
    )


STREAM_MODES = ["messages", "custom", "values"]


def _events(mode: str, chunk: Any) -> Iterator[TurnEvent]:
    """Translate one LangGraph stream part into turn events."""
    if mode == "messages":
        message, meta = chunk
        if isinstance(message, AIMessageChunk) and meta.get("langgraph_node") in ANSWER_NODES:
            text = message.text  # str content, or the text blocks of a list (Anthropic)
            if text:
                yield TurnEvent("token", text=text)
        return
    if mode != "custom" or not isinstance(chunk, dict):
        return
    kind = chunk.get("type")
    if kind == "node_start":
        yield TurnEvent("step", name=chunk["node"], status="start")
    elif kind == "node_end":
        yield TurnEvent("step", name=chunk["node"], status="end", ms=chunk.get("ms"),
                        summary=chunk.get("summary", ""))
    elif kind == "tool":
        yield TurnEvent("tool", name=chunk.get("name", ""), ms=chunk.get("ms"),
                        summary=chunk.get("summary", ""), data=chunk)
    elif kind == "ingested":
        yield TurnEvent("ingest", name=Path(chunk.get("path", "")).name, status=chunk["status"],
                        data=chunk)
    elif kind == "token":
        yield TurnEvent("token", text=chunk.get("text", ""))


class _AnswerTokens:
    """The answer's tokens with their citation markers renumbered as they stream ([3] first
    shows as [1]), the same numbers the final answer gets (``citations.renumber``)."""

    def __init__(self) -> None:
        self.numbering: Renumberer | None = None

    def events(self, event: TurnEvent, values: dict[str, Any]) -> Iterator[TurnEvent]:
        if event.kind != "token":
            yield event
            return
        if self.numbering is None:  # the sources the answer cites are known by now (direct
            # path); on the agent path they arrive with the answer, so nothing is dropped
            sources = [Hit.model_validate(h) for h in values.get("sources") or []]
            self.numbering = numbering_for(sources) if sources else Renumberer()
        text = self.numbering.feed(event.text)
        if text:
            yield TurnEvent("token", text=text)

    def flush(self) -> Iterator[TurnEvent]:
        text = self.numbering.flush() if self.numbering else ""
        if text:
            yield TurnEvent("token", text=text)


def stream_turn(
    graph: CompiledStateGraph,
    text: str = "",
    *,
    images: Sequence[str | Path] = (),
    attachments: Sequence[str | Path] = (),
    thread_id: str | None = None,
    context: VistaContext | None = None,
    message: HumanMessage | None = None,
) -> Iterator[TurnEvent | TurnResult]:
    """Run one turn, yielding ``TurnEvent`` objects, then the ``TurnResult`` last.

    The turn is ``text`` with ``images`` (paths, ``blob:`` refs, data URLs) and ``attachments``
    (documents to ingest first), or a ready ``message`` (a HumanMessage with content blocks).
    """
    thread_id = thread_id or f"turn-{uuid.uuid4().hex[:12]}"
    values: dict[str, Any] = {}
    tokens = _AnswerTokens()
    for mode, chunk in graph.stream(
        turn_input(graph, text, images, attachments, message), _config(thread_id),
        context=context or VistaContext(), stream_mode=STREAM_MODES,
    ):
        if mode == "values":
            values = chunk
            continue
        for event in _events(mode, chunk):
            yield from tokens.events(event, values)
    yield from tokens.flush()
    yield result_from_state(thread_id, values)


async def astream_turn(
    graph: CompiledStateGraph,
    text: str = "",
    *,
    images: Sequence[str | Path] = (),
    attachments: Sequence[str | Path] = (),
    thread_id: str | None = None,
    context: VistaContext | None = None,
    message: HumanMessage | None = None,
) -> AsyncIterator[TurnEvent | TurnResult]:
    """``stream_turn`` for async callers (Chainlit): the graph runs without blocking the loop."""
    thread_id = thread_id or f"turn-{uuid.uuid4().hex[:12]}"
    values: dict[str, Any] = {}
    tokens = _AnswerTokens()
    async for mode, chunk in graph.astream(
        turn_input(graph, text, images, attachments, message), _config(thread_id),
        context=context or VistaContext(), stream_mode=STREAM_MODES,
    ):
        if mode == "values":
            values = chunk
            continue
        for event in _events(mode, chunk):
            for renumbered in tokens.events(event, values):
                yield renumbered
    for event in tokens.flush():
        yield event
    yield result_from_state(thread_id, values)


def run_turn(
    graph: CompiledStateGraph,
    text: str = "",
    *,
    images: Sequence[str | Path] = (),
    attachments: Sequence[str | Path] = (),
    thread_id: str | None = None,
    context: VistaContext | None = None,
    message: HumanMessage | None = None,
    on_event: EventHandler | None = None,
) -> TurnResult:
    """Run one turn to its end; ``on_event`` sees every event as it happens."""
    result: TurnResult | None = None
    for item in stream_turn(graph, text, images=images, attachments=attachments,
                            thread_id=thread_id, context=context, message=message):
        if isinstance(item, TurnResult):
            result = item
        elif on_event is not None:
            on_event(item)
    assert result is not None
    return result
