"""Which path answers a turn, and the graph's conditional edges (no I/O here)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Questions that need several lookups: comparisons, "and also", several documents or years.
_SEVERAL = re.compile(
    r"\b(compare[sd]?|comparison|versus|vs\.?|differ(?:s|ence|ent)?|both|each of|"
    r"respectively|as well as|and also|change[sd]? (?:from|between)|between .{2,60} and)\b",
    re.I,
)
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
_MOMENT = re.compile(r"\b(when (?:does|did|do|is|was)|at what (?:time|point|moment))\b", re.I)
_SEEN_OR_SAID = re.compile(
    r"\b(appears?|shows?|shown|showing|displays?|displayed|says?|said|mentions?|mentioned|"
    r"talks?|speaks?|presents?|presenter|speaker)\b", re.I,
)
_IN_VIDEO = re.compile(r"\b(which (?:moment|minute|part of the video)|where in the "
                       r"(?:video|clip|recording))\b", re.I)


def needs_several_lookups(text: str) -> bool:
    """Comparisons, "and also" questions, or questions naming two or more distinct years."""
    return bool(_SEVERAL.search(text)) or len(set(_YEAR.findall(text))) >= 2


def is_video_question(text: str, modality: str) -> bool:
    """A video turn, or a question about the moment something is shown or said."""
    return (modality == "video" or bool(_IN_VIDEO.search(text))
            or bool(_MOMENT.search(text) and _SEEN_OR_SAID.search(text)))


def choose_path(
    text: str, modality: str, mode: str, has_tool_model: bool
) -> tuple[str, str | None]:
    """``direct``, ``agent`` or ``video`` (offline video search), and a notice if the asked
    mode cannot be honoured."""
    video = is_video_question(text, modality)
    offline = "video" if video else "direct"
    if mode == "direct":
        return "direct", None
    if mode == "agent":
        if has_tool_model:
            return "agent", None
        return offline, "the agent path needs a tool-calling chat model; answering directly"
    if has_tool_model and (video or needs_several_lookups(text)):
        return "agent", None
    return offline, None


def route_after_detect(state: Mapping[str, Any]) -> str:
    if state.get("pending_files"):
        return "ingest_attachments"
    return route_to_path(state)


def route_to_path(state: Mapping[str, Any]) -> str:
    return "agent" if state.get("path") == "agent" else "search"


def route_after_search(state: Mapping[str, Any]) -> str:
    if state.get("sources") or state.get("query_images"):
        return "synthesize"
    return "not_found"
