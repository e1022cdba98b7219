"""The one search path: a ``SearchRequest`` in, reranked hits with timings out.

The graph, the CLI ``search``, ``VistaRetriever`` and both LangChain tools call
``Engine.search(SearchRequest(...))``, so a retrieval behaviour changes in one place.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vistarag.agent.types import Hit

BLOB_SCHEME = "blob:"


class PageHint(BaseModel):
    """Put this page of this document first (a "next page" follow-up)."""

    doc_id: str
    page: int


class SearchRequest(BaseModel):
    """What to look for, where, and how many.

    ``images`` are file paths, ``blob:`` references or PIL images; every one is stored in the
    blob store so a multimodal reranker (and the synthesizer) can see it. ``owner``/``kb`` of
    ``None`` mean the settings' defaults.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    text: str = ""
    images: list[str | Path | Image.Image] = Field(default_factory=list)
    kb: str | None = None
    owner: str | None = None
    doc_ids: list[str] | None = None
    modality: list[str] | None = None
    page_hint: PageHint | None = None
    top_n: int | None = None
    top_k: int | None = None

    @field_validator("modality", mode="before")
    @classmethod
    def _split_modalities(cls, value: Any) -> Any:
        """Accept ``"keyframe,transcript"`` as well as a list."""
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            value = [m.strip() for v in value for m in str(v).split(",") if m.strip()] or None
        return value


class SearchResult(BaseModel):
    """Reranked hits, what the query images say (OCR), their blob refs, and per-stage ms."""

    hits: list[Hit] = Field(default_factory=list)
    image_refs: list[str] = Field(default_factory=list)
    image_text: list[str] = Field(default_factory=list)
    candidates: int = 0
    timings: dict[str, float] = Field(default_factory=dict)

    @property
    def ms(self) -> float:
        return round(sum(self.timings.values()), 2)


@contextmanager
def timer(timings: dict[str, float], name: str) -> Iterator[None]:
    """Add the block's wall time in ms to ``timings[name]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round(timings.get(name, 0.0) + (time.perf_counter() - started) * 1000, 2)


def put_first(hits: list[Hit], hint: PageHint | None) -> list[Hit]:
    """The hinted page's hits first, the rest in their order."""
    if hint is None:
        return hits
    return sorted(hits, key=lambda h: not (h.doc_id == hint.doc_id and h.page == hint.page))
