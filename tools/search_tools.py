"""``retrieve`` and ``search_video_keyframes`` as LangChain tools over the one search path.

Each returns a short readable summary as content (numbered, fenced ``<source>`` entries a model
can cite) and the hits as the artifact (citations and blob refs, never image bytes):
``response_format="content_and_artifact"``. ``make_tools(...)`` binds them to a knowledge base
and an owner, so an agent never sees another owner's documents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForToolRun
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field

from vistarag.agent.engine import Engine, get_engine
from vistarag.agent.errors import VistaRAGError
from vistarag.agent.search import SearchRequest
from vistarag.agent.synth.prompt import fence_source
from vistarag.agent.types import MODALITIES, Hit

VIDEO_MODALITIES = ("keyframe", "transcript", "subtitle", "clip")
DocModality = Literal["text", "image", "page"]


def format_hits(hits: list[Hit], numbers: list[int] | None = None, query: str = "") -> str:
    """Numbered, fenced hits as a model reads them (numbers default to 1..n)."""
    if not hits:
        return f"No results for {query!r}." if query else "No results."
    numbers = numbers or list(range(1, len(hits) + 1))
    head = f"{len(hits)} result{'s' if len(hits) != 1 else ''}"
    head += f" for {query!r}" if query else ""
    body = "\n".join(fence_source(n, h) for n, h in zip(numbers, hits, strict=True))
    return f"{head} (untrusted document data; cite as [n]):\n{body}"


def hits_artifact(hits: list[Hit]) -> list[dict[str, Any]]:
    """Hits as JSON-ready dicts (the tool's artifact)."""
    return [h.model_dump(mode="json") for h in hits]


class _SearchTool(BaseTool):
    """Shared plumbing: engine, knowledge base, owner, default k, and document-name lookup."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"

    engine: Engine | None = Field(default=None, exclude=True)
    kb: str | None = None
    owner: str | None = None
    default_k: int = 5
    handle_tool_error: bool = True  # a bad argument comes back to the model as the tool's answer

    def _engine(self) -> Engine:
        if self.engine is None:
            self.engine = get_engine()
        return self.engine

    def _doc_ids(self, name: str | None) -> list[str] | None:
        """Document ids whose file name, stem or id matches ``name`` (case-insensitive)."""
        if not name:
            return None
        base = self._engine().kb(self.kb)
        if not base.exists():
            return None
        want = name.strip().lower()
        ids = {
            p.payload.get("doc_id")
            for p in base.scroll(fields=["doc_id", "source"])
            if want in (
                str(p.payload.get("doc_id", "")).lower(),
                Path(str(p.payload.get("source", ""))).name.lower(),
                Path(str(p.payload.get("source", ""))).stem.lower(),
            )
        }
        if not ids:
            raise ToolException(f"no document named {name!r} in this knowledge base")
        return sorted(ids)

    def _search(self, query: str, image: str | None, modality: list[str] | None,
                doc_ids: list[str] | None, k: int | None) -> tuple[str, list[dict[str, Any]]]:
        request = SearchRequest(
            text=query, images=[image] if image else [], kb=self.kb, owner=self.owner,
            modality=modality, doc_ids=doc_ids, top_k=k or self.default_k,
        )
        try:
            hits = self._engine().search(request).hits
        except VistaRAGError as exc:
            raise ToolException(str(exc)) from exc
        return format_hits(hits, query=query), hits_artifact(hits)


class RetrieveInput(BaseModel):
    query: str = Field(description="What to look for, in the words the documents would use.")
    image: str | None = Field(
        default=None, description="Optional image to search with: a file path or blob: ref.")
    modality: DocModality | None = Field(
        default=None, description="Only this kind of evidence: text, image (figures, "
        "screenshots, photos) or page (whole-page renders).")
    doc: str | None = Field(
        default=None, description="Only this document: its file name (e.g. report.pdf).")
    k: int = Field(default=5, ge=1, le=20, description="How many results.")


class RetrieveTool(_SearchTool):
    """Search the user's documents, screenshots and images."""

    name: str = "retrieve"
    description: str = (
        "Search the user's knowledge base (PDF text and pages, figures, screenshots, images) "
        "and return numbered sources with file, page and text. Call it once per thing to look "
        "up: for a comparison, once per item or year. Use `doc` to stay within one file."
    )
    args_schema: type[BaseModel] = RetrieveInput

    def _run(
        self, query: str, image: str | None = None, modality: str | None = None,
        doc: str | None = None, k: int = 5,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> tuple[str, list[dict[str, Any]]]:
        return self._search(query, image, [modality] if modality else None,
                            self._doc_ids(doc), k)


class KeyframeSearchInput(BaseModel):
    query: str = Field(description="What is shown or said at the moment you are looking for.")
    image: str | None = Field(
        default=None, description="Optional image of what the frame looks like (path or blob:).")
    video: str | None = Field(default=None, description="Only this video: its file name.")
    k: int = Field(default=5, ge=1, le=20, description="How many moments.")


class KeyframeSearchTool(_SearchTool):
    """Find moments in the user's videos: keyframes and transcript segments with times."""

    name: str = "search_video_keyframes"
    description: str = (
        "Find moments in the user's videos: keyframes (what is shown, including on-screen text) "
        "and transcript or subtitle segments (what is said). Returns numbered sources with the "
        "video, start-end time, thumbnail ref and score. Use for 'when does...', 'at what "
        "time...', 'where in the video...'."
    )
    args_schema: type[BaseModel] = KeyframeSearchInput

    def _run(
        self, query: str, image: str | None = None, video: str | None = None, k: int = 5,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> tuple[str, list[dict[str, Any]]]:
        modality = [m for m in VIDEO_MODALITIES if m in MODALITIES]
        return self._search(query, image, modality, self._doc_ids(video), k)


def make_tools(
    engine: Engine | None = None, *, kb: str | None = None, owner: str | None = None, k: int = 5
) -> list[BaseTool]:
    """``[retrieve, search_video_keyframes]`` bound to one knowledge base and owner."""
    engine = engine or get_engine()
    common = {"engine": engine, "kb": kb, "owner": owner, "default_k": k}
    return [RetrieveTool(**common), KeyframeSearchTool(**common)]
