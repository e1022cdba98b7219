"""The chat's settings panel: knowledge base, result count, modalities, attachments, and the
model that answers (each configured chat model by name, or the extractive answer).

A user's choice is kept in the Chainlit session and in the thread's metadata (``chat_settings``,
which Chainlit restores on resume), and every turn runs with it (``VistaContext``). The
evidence routes check every knowledge base, so citations from any chosen one open.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainlit.input_widget import InputWidget, Select, Slider, Switch

from vistarag.agent.engine import Engine
from vistarag.agent.index import list_knowledge_bases
from vistarag.agent.llm import ModelOption
from vistarag.graphs import VistaContext
from vistarag.ui.web.routes import Access

log = logging.getLogger("vistarag.ui")

MODALITIES: dict[str, list[str] | None] = {
    "all": None,
    "text": ["text"],
    "images": ["image", "page"],
    "video": ["keyframe", "transcript", "clip"],
}
MODALITY_LABELS = {"all": "Everything", "text": "Text passages", "images": "Images and pages",
                   "video": "Video moments"}
MAX_K = 20


@dataclass(frozen=True)
class ChatPrefs:
    """One chat's settings."""

    kb: str
    top_k: int
    modality: str = "all"
    add_attachments: bool = False
    model: str = ""
    """The answer model's key (``agent.llm.configured_models``); "" for the graph's default."""

    @classmethod
    def from_values(
        cls, values: dict[str, Any] | None, defaults: ChatPrefs, models: Collection[str] = ()
    ) -> ChatPrefs:
        """Settings from the panel's values (or a thread's saved ones); bad values -> defaults.
        ``models``: the model keys on offer (a model no longer configured -> the default)."""
        values = values or {}
        kb = str(values.get("kb") or defaults.kb).strip() or defaults.kb
        try:
            top_k = min(MAX_K, max(1, int(float(values.get("top_k", defaults.top_k)))))
        except (TypeError, ValueError):
            top_k = defaults.top_k
        modality = str(values.get("modality") or defaults.modality)
        if modality not in MODALITIES:
            modality = defaults.modality
        add = values.get("add_attachments", defaults.add_attachments)
        model = str(values.get("model") or defaults.model)
        if models and model not in models:
            model = defaults.model
        return cls(kb=kb, top_k=top_k, modality=modality, add_attachments=bool(add),
                   model=model)

    def values(self) -> dict[str, Any]:
        return {"kb": self.kb, "top_k": self.top_k, "modality": self.modality,
                "add_attachments": self.add_attachments, "model": self.model}

    def context(self, owner: str) -> VistaContext:
        """The turn's runtime context."""
        return VistaContext(kb=self.kb, owner=owner, top_k=self.top_k,
                            modality=MODALITIES[self.modality], model=self.model or None)

    def describe(self, models: Sequence[ModelOption] = ()) -> str:
        """``knowledge base 'docs', 5 results, everything, answered by gpt-4o-mini (OpenAI)``."""
        names = {m.key: m.name for m in models}
        return (f"knowledge base {self.kb!r}, {self.top_k} results, "
                f"{MODALITY_LABELS[self.modality].lower()}"
                + (", attachments added to it" if self.add_attachments else "")
                + (f", answered by {names[self.model]}" if self.model in names else ""))


def knowledge_bases(engine: Engine, current: str) -> list[str]:
    """The knowledge bases that exist, and the current one (it may not exist yet)."""
    try:
        names = list_knowledge_bases(engine.kb(current).backend)
    except Exception as exc:  # an unreachable server must not keep the chat from opening
        log.warning("could not list the knowledge bases (%s); the settings panel offers only "
                    "%r: check the index (`vistarag status`)", exc, current)
        names = []
    return sorted({*names, current})


def widgets(
    prefs: ChatPrefs, kbs: list[str], models: Sequence[ModelOption] = ()
) -> list[InputWidget]:
    """The settings panel, showing ``prefs``; the answer-model picker when ``models`` are
    given."""
    panel: list[InputWidget] = [
        Select(id="kb", label="Knowledge base", values=kbs, initial_value=prefs.kb,
               description="Where answers come from, and where added files go."),
        Slider(id="top_k", label="Sources per answer (k)", initial=prefs.top_k, min=1,
               max=MAX_K, step=1),
        Select(id="modality", label="Search in", items={v: k for k, v in MODALITY_LABELS.items()},
               initial_value=prefs.modality),
        Switch(id="add_attachments", label="Add attachments to the knowledge base",
               initial=prefs.add_attachments,
               description="Off: an image sent with a question is only the question's image."),
    ]
    if models:
        panel.insert(1, Select(
            id="model", label="Answer model", items={m.name: m.key for m in models},
            initial_value=prefs.model or models[0].key,
            description="Which model writes the answer. Extractive quotes your documents "
                        "without a language model."))
    return panel


@dataclass
class AllKbAccess(Access):
    """``Access`` over every knowledge base: a citation from any chosen one opens."""

    def _each(self) -> list[Access]:
        names = knowledge_bases(self.engine, self.kb)
        return [Access(self.engine, n, self.storage, self.owner_of)
                for n in [self.kb, *[n for n in names if n != self.kb]]]

    def source_of(self, doc_id: str, owner: str) -> Path | None:
        for access in self._each():
            found = access.source_of(doc_id, owner)
            if found is not None:
                return found
        return None

    def owns_blob(self, ref: str, owner: str) -> bool:
        return any(access.owns_blob(ref, owner) for access in self._each())
