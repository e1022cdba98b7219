"""What the nodes work with, built once per compiled graph: engine, synthesizer, defaults."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from vistarag.agent.engine import Engine
from vistarag.agent.llm import configured_models, make_chat_model
from vistarag.agent.synth.chat import ChatSynthesizer
from vistarag.graphs.context import VistaContext

_by_graph: weakref.WeakKeyDictionary[Any, Services] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Services:
    """The engine (settings, models, knowledge bases, blobs), the synthesizer (chat model or
    extractive) and the context defaults, shared by every node of one graph. A turn may pick
    another configured chat model (``VistaContext.model``): made on first use, then kept."""

    engine: Engine
    synthesizer: ChatSynthesizer
    defaults: VistaContext
    _picked: dict[str, ChatSynthesizer] = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def synthesizer_for(self, model: str | None) -> ChatSynthesizer:
        """The synthesizer of the configured model ``model`` (a backend key); the graph's own
        for ``None``, its own key, or a model that is not configured."""
        if not model or model == self.synthesizer.choice.backend:
            return self.synthesizer
        settings = self.engine.settings
        if model not in {m.key for m in configured_models(settings)}:
            return self.synthesizer
        with self._lock:
            if model not in self._picked:
                choice = make_chat_model(settings, model)  # type: ignore[arg-type]
                self._picked[model] = ChatSynthesizer(choice, self.engine.blobs, settings)
            return self._picked[model]


def register(graph: Any, services: Services) -> None:
    _by_graph[graph] = services


def services_of(graph: Any) -> Services | None:
    """The services a graph was built with (``None`` for graphs built elsewhere)."""
    try:
        return _by_graph.get(graph)
    except TypeError:
        return None
