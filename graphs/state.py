"""The graph's state and runtime context.

Images travel as blob references (``blob:<sha256>.<ext>``) or file paths, never as bytes, so
checkpoints stay small and safe to store.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, Any, get_type_hints

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from vistarag.agent.blobs import BlobStore
from vistarag.graphs.turn import store_image_ref, without_inline_images

RESET = "__reset__"


def merge_timings(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer for per-node timings; an update holding ``RESET`` starts a new turn's timings."""
    if right is None:
        return dict(left or {})
    if RESET in right:
        return {k: v for k, v in right.items() if k != RESET}
    return {**(left or {}), **right}


class TurnInput(TypedDict, total=False):
    """What a caller may send for one turn (besides or instead of a HumanMessage)."""

    messages: list[AnyMessage]
    question: str
    images: list[str]
    attachments: list[str]


class VistaState(TypedDict, total=False):
    """Conversation state: messages persist across turns, the rest describes the current turn."""

    messages: Annotated[list[AnyMessage], add_messages]
    # Turn inputs (consumed and cleared by detect_modality)
    question: str
    images: list[str]
    attachments: list[str]
    # The current turn
    modality: str
    query_text: str
    retrieval_text: str
    query_images: list[str]
    query_image_text: list[str]
    query_vectors: dict[str, list[Any]]
    pending_files: list[str]
    doc_filter: list[str]
    page_hint: dict[str, Any] | None
    ingested: list[dict[str, Any]]
    hits: list[dict[str, Any]]
    reranked: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    answer: str
    citations: list[dict[str, Any]]
    synthesizer: str
    notices: list[str]
    timings: Annotated[dict[str, float], merge_timings]
    trajectory: Annotated[list[dict[str, Any]], operator.add]


class OutputState(TypedDict, total=False):
    """What a caller gets back."""

    messages: list[AnyMessage]
    modality: str
    answer: str
    citations: list[dict[str, Any]]
    hits: list[dict[str, Any]]
    reranked: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    synthesizer: str
    notices: list[str]
    timings: dict[str, float]
    ingested: list[dict[str, Any]]
    trajectory: list[dict[str, Any]]


@dataclass
class VistaContext:
    """Per-call overrides, passed as ``graph.invoke(..., context=VistaContext(kb="docs"))``."""

    kb: str | None = None
    top_k: int | None = None
    top_n: int | None = None
    modality: list[str] | None = None
    owner: str | None = None


def state_schema(blobs: BlobStore) -> type:
    """``VistaState`` whose reducers store inline images as blobs before anything is saved."""

    def messages_reducer(left: list[AnyMessage], right: Any) -> list[AnyMessage]:
        return add_messages(left, without_inline_images(right, blobs))

    def images_reducer(_: list[str] | None, right: list[str] | None) -> list[str]:
        return [store_image_ref(ref, blobs) for ref in right or []]

    fields = get_type_hints(VistaState, include_extras=True)
    fields["messages"] = Annotated[list[AnyMessage], messages_reducer]
    fields["images"] = Annotated[list[str], images_reducer]
    return TypedDict("VistaState", fields, total=False)  # type: ignore[operator]
