"""Per-call options of a turn (LangGraph runtime context) with real defaults from Settings.

Pass ``context=VistaContext(kb="docs", owner="alice", top_k=5)`` to ``graph.invoke`` /
``run_turn``; fields left ``None`` take the graph's settings (``resolve``). ``model`` picks which
configured chat model answers (``"anthropic"``, ``"openai"``, ``"extractive"``: the keys of
``agent.llm.configured_models``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

from vistarag.agent.settings import Settings

Mode = Literal["auto", "direct", "agent"]


@dataclass(frozen=True)
class VistaContext:
    """Knowledge base, owner, result sizes, modality filter, path and answer model for one
    call.

    ``mode``: ``auto`` routes questions that need several lookups (comparisons, "and also",
    several documents) and video questions to the tool-calling agent when a chat model is
    configured; ``direct`` always takes the single-search pipeline; ``agent`` always the agent.
    """

    kb: str | None = None
    owner: str | None = None
    top_k: int | None = None
    top_n: int | None = None
    modality: list[str] | None = None
    mode: Mode | None = None
    model: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> VistaContext:
        return cls(kb=settings.kb, owner=settings.owner, top_k=settings.top_k,
                   top_n=settings.top_n, modality=None, mode="auto")


def resolve(context: VistaContext | None, defaults: VistaContext) -> VistaContext:
    """``context`` with every unset field taken from ``defaults``."""
    if context is None:
        return defaults
    given = {f.name: getattr(context, f.name) for f in fields(context)}
    return replace(defaults, **{k: v for k, v in given.items() if v is not None})
