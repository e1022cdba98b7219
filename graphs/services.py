"""What the nodes work with, built once per compiled graph: engine, synthesizer, defaults."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from vistarag.agent.engine import Engine
from vistarag.agent.synth.chat import ChatSynthesizer
from vistarag.graphs.context import VistaContext

_by_graph: weakref.WeakKeyDictionary[Any, Services] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Services:
    """The engine (settings, models, knowledge bases, blobs), the synthesizer (chat model or
    extractive) and the context defaults, shared by every node of one graph."""

    engine: Engine
    synthesizer: ChatSynthesizer
    defaults: VistaContext

    @property
    def has_tool_model(self) -> bool:
        return self.synthesizer.choice.model is not None


def register(graph: Any, services: Services) -> None:
    _by_graph[graph] = services


def services_of(graph: Any) -> Services | None:
    """The services a graph was built with (``None`` for graphs built elsewhere)."""
    try:
        return _by_graph.get(graph)
    except TypeError:
        return None
