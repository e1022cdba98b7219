"""The graph's state, declared statically.

Images travel as blob references (``blob:<sha256>.<ext>``) or file paths, never as bytes: the
turn runner stores inline images at the input boundary, and ``detect_modality`` does the same for
anything else that arrives inline. Per-turn scratch is reset in one place (``new_turn``).
"""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

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
    """Conversation state: messages persist across turns; the rest describes the current turn."""

    messages: Annotated[list[AnyMessage], add_messages]
    # Turn inputs (consumed and cleared by detect_modality)
    question: str
    images: list[str]
    attachments: list[str]
    # The current turn
    modality: str
    path: str  # "direct" | "agent" | "video"
    query_text: str
    retrieval_text: str
    resolved_question: str  # a follow-up for another period, as a question of its own
    query_images: list[str]
    query_image_text: list[str]
    pending_files: list[str]
    doc_filter: list[str]
    page_hint: dict[str, Any] | None
    ingested: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    answer: str
    citations: list[dict[str, Any]]
    synthesizer: str
    not_found: bool
    notices: list[str]
    timings: Annotated[dict[str, float], merge_timings]
    trajectory: list[dict[str, Any]]


class OutputState(TypedDict, total=False):
    """What a caller gets back."""

    messages: list[AnyMessage]
    modality: str
    path: str
    answer: str
    citations: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    synthesizer: str
    not_found: bool
    notices: list[str]
    timings: dict[str, float]
    ingested: list[dict[str, Any]]
    trajectory: list[dict[str, Any]]


def new_turn() -> dict[str, Any]:
    """The per-turn fields at the start of a turn (inputs consumed, results cleared)."""
    return {
        "question": "", "images": [], "attachments": [],
        "path": "direct", "query_image_text": [], "pending_files": [], "doc_filter": [],
        "page_hint": None, "ingested": [], "sources": [], "answer": "", "citations": [],
        "synthesizer": "", "not_found": False, "notices": [], "timings": {RESET: 0.0},
        "trajectory": [],
    }
