"""The graph's nodes: each is ``(state, runtime) -> partial update``, timed and reported.

``Nodes`` binds them to one Engine (settings, models, knowledge bases, blob store) and one
synthesizer; ``build_graph`` wires them.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Mapping
from functools import wraps
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from vistarag.agent.engine import Engine
from vistarag.agent.errors import VistaRAGError
from vistarag.agent.evidence import collapse
from vistarag.agent.index import QueryVectors
from vistarag.agent.query import EncodedQuery
from vistarag.agent.rerank import RerankQuery
from vistarag.agent.synth.base import SynthesisRequest, Synthesizer
from vistarag.agent.types import Hit
from vistarag.graphs.state import RESET, VistaContext, VistaState
from vistarag.graphs.turn import (
    BLOB_SCHEME,
    blob_refs,
    detect_modality,
    history,
    human_message,
    is_follow_up,
    last_human,
    message_parts,
    store_image_ref,
)

NodeFn = Callable[[VistaState, Runtime[VistaContext]], dict[str, Any]]
_NEXT_PAGE = re.compile(r"\bnext page\b|\bfollowing page\b|\bpage after\b", re.I)
_PREV_PAGE = re.compile(r"\bprevious page\b|\bpage before\b|\bprior page\b", re.I)


def _emit(event: dict[str, Any]) -> None:
    """Send a custom stream event; a no-op outside a graph run."""
    with contextlib.suppress(Exception):
        get_stream_writer()(event)


def timed(name: str) -> Callable[[NodeFn], NodeFn]:
    """Record the node's wall time in ``timings`` and emit start/end custom events."""

    def wrap(fn: NodeFn) -> NodeFn:
        @wraps(fn)
        def node(state: VistaState, runtime: Runtime[VistaContext]) -> dict[str, Any]:
            _emit({"type": "node_start", "node": name})
            started = time.perf_counter()
            update = fn(state, runtime)
            ms = round((time.perf_counter() - started) * 1000, 2)
            update["timings"] = {**(update.get("timings") or {}), name: ms}
            _emit({"type": "node_end", "node": name, "ms": ms})
            return update

        return node

    return wrap


def _hits(items: list[dict[str, Any]] | None) -> list[Hit]:
    return [Hit.model_validate(h) for h in items or []]


def _dump(hits: list[Hit]) -> list[dict[str, Any]]:
    return [h.model_dump(mode="json") for h in hits]


class Nodes:
    """The graph's nodes, bound to one engine and synthesizer."""

    def __init__(self, engine: Engine, synthesizer: Synthesizer) -> None:
        self.engine = engine
        self.synthesizer = synthesizer

    def _ctx(self, runtime: Runtime[VistaContext] | None) -> VistaContext:
        ctx = getattr(runtime, "context", None)
        return ctx if isinstance(ctx, VistaContext) else VistaContext()

    # ------------------------------------------------------------------------------------
    def detect_modality(self, state: VistaState, runtime: Runtime[VistaContext]) -> dict[str, Any]:
        """Read the pending turn, store its images as blobs, and say what kind of turn it is."""
        messages = list(state.get("messages") or [])
        pending = last_human(messages)
        msg_text, raw_images, files = message_parts(pending) if pending else ("", [], [])
        text = "\n".join(t for t in [msg_text, state.get("question") or ""] if t).strip()
        raw_images = [*raw_images, *(state.get("images") or [])]
        files = [*files, *(state.get("attachments") or [])]
        refs: list[str] = []
        notices: list[str] = []
        for ref in raw_images:
            try:
                refs.append(self._image_blob(store_image_ref(ref, self.engine.blobs)))
            except (VistaRAGError, OSError, ValueError) as exc:
                notices.append(f"could not read image {ref[:80]}: {exc}")
        retrieval_text, doc_filter, page_hint = self._follow_up(text, messages, pending, state)
        update: dict[str, Any] = {
            "question": "", "images": [], "attachments": [],
            "modality": detect_modality(text, refs, files),
            "query_text": text, "retrieval_text": retrieval_text,
            "query_images": refs, "query_image_text": [], "query_vectors": {},
            "pending_files": files, "doc_filter": doc_filter, "page_hint": page_hint,
            "ingested": [], "hits": [], "reranked": [], "answer": "", "citations": [],
            "synthesizer": "", "notices": notices, "timings": {RESET: 0.0},
        }
        # Keep the conversation's human message in step: inputs folded in, images as blob refs.
        message = human_message(text, refs, files)
        if pending is not None:
            message.id = pending.id
        if pending is None or message.content != pending.content:
            update["messages"] = [message]
        return update

    @staticmethod
    def _follow_up(
        text: str, messages: list, pending: Any, state: VistaState
    ) -> tuple[str, list[str], dict[str, Any] | None]:
        """A follow-up searches with the previous question too; "next page" targets that page."""
        if not is_follow_up(text):
            return text, [], None
        prior = history([m for m in messages if m is not pending])
        previous = [h["content"] for h in prior if h["role"] == "user"]
        retrieval_text = f"{previous[-1]}\n{text}" if previous else text
        cited = [c for c in state.get("citations") or [] if c.get("page")]
        step = 1 if _NEXT_PAGE.search(text) else -1 if _PREV_PAGE.search(text) else 0
        if not cited or not step:
            return retrieval_text, [], None
        hint = {"doc_id": cited[0]["doc_id"], "page": int(cited[0]["page"]) + step}
        return retrieval_text, [hint["doc_id"]], hint

    def _image_blob(self, ref: str) -> str:
        """Every query image becomes a blob ref (checked like an ingested image)."""
        if ref.startswith(BLOB_SCHEME):
            if not self.engine.blobs.exists(ref.removeprefix(BLOB_SCHEME)):
                raise VistaRAGError(f"unknown image reference {ref}")
            return ref
        image = self.engine.load_query_image(Path(ref))
        return BLOB_SCHEME + self.engine.blobs.put_image(image, max_side=2048)

    # ------------------------------------------------------------------------------------
    def ingest_attachments(
        self, state: VistaState, runtime: Runtime[VistaContext]
    ) -> dict[str, Any]:
        """Documents attached to the turn go into the knowledge base first; search them."""
        ctx = self._ctx(runtime)
        ingestor = self.engine.ingestor(ctx.kb)
        results, doc_ids, notices = [], [], list(state.get("notices") or [])
        for path in state.get("pending_files") or []:
            result = ingestor.ingest_file(Path(path))
            results.append({"path": result.path, "status": result.status, "doc_id": result.doc_id,
                            "points": result.points, "message": result.message})
            _emit({"type": "ingested", **results[-1]})
            if result.doc_id and result.status in ("added", "replaced", "unchanged"):
                doc_ids.append(result.doc_id)
            else:
                notices.append(f"{Path(path).name}: {result.message or result.status}")
        return {"ingested": results, "doc_filter": doc_ids or state.get("doc_filter") or [],
                "pending_files": [], "notices": notices}

    def encode_query(self, state: VistaState, runtime: Runtime[VistaContext]) -> dict[str, Any]:
        """Text into the text and joint spaces; images into the joint space plus their OCR text."""
        images = [self.engine.blobs.open_image(ref)
                  for ref in blob_refs(state.get("query_images") or [])]
        encoded = self.engine.encode(state.get("retrieval_text") or "", images)
        return {"query_vectors": encoded.vectors.to_json(),
                "query_image_text": encoded.image_text}

    def _encoded(self, state: VistaState) -> EncodedQuery:
        return EncodedQuery(
            vectors=QueryVectors.from_json(state.get("query_vectors")),
            text=state.get("retrieval_text") or "",
            image_text=list(state.get("query_image_text") or []),
        )

    def retrieve(self, state: VistaState, runtime: Runtime[VistaContext]) -> dict[str, Any]:
        """Top-N candidates from Qdrant, fused over every named vector."""
        ctx = self._ctx(runtime)
        try:
            hits = self.engine.retrieve(
                self._encoded(state), kb=ctx.kb, limit=ctx.top_n,
                modality=ctx.modality, doc_ids=state.get("doc_filter") or None,
            )
        except VistaRAGError as exc:
            return {"hits": [], "notices": [*(state.get("notices") or []), str(exc)]}
        return {"hits": _dump(hits)}

    def rerank(self, state: VistaState, runtime: Runtime[VistaContext]) -> dict[str, Any]:
        """Top-N -> top-k; a "next page" follow-up puts that page first."""
        ctx = self._ctx(runtime)
        query = self._encoded(state)
        k = ctx.top_k or self.engine.settings.top_k
        hits = self.engine.reranker.rerank(
            RerankQuery(
                text=query.rerank_text, image_refs=blob_refs(state.get("query_images") or [])
            ),
            _hits(state.get("hits")),
            top_k=len(state.get("hits") or []),
        )
        hits = collapse(hits)[:k]  # k distinct pieces of evidence
        hint = state.get("page_hint")
        if hint:
            hits.sort(key=lambda h: not (h.doc_id == hint["doc_id"] and h.page == hint["page"]))
        return {"reranked": _dump(hits), "sources": _dump(hits)}

    def synthesize(self, state: VistaState, runtime: Runtime[VistaContext]) -> dict[str, Any]:
        """The VLM (or the extractive synthesizer) answers with [n] citations, streaming tokens."""
        request = SynthesisRequest(
            question=state.get("query_text") or "",
            hits=_hits(state.get("reranked")),
            user_images=blob_refs(state.get("query_images") or []),
            user_image_text=list(state.get("query_image_text") or []),
            history=history(list(state.get("messages") or [])),
        )
        result = self.synthesizer.synthesize(
            request, on_token=lambda t: _emit({"type": "token", "text": t})
        )
        notices = list(state.get("notices") or [])
        if result.notice:
            notices.append(result.notice)
        citations = [c.model_dump(mode="json") for c in result.citations]
        message = AIMessage(
            content=result.answer,
            response_metadata={"citations": citations, "synthesizer": result.synthesizer},
        )
        return {"answer": result.answer, "citations": citations, "synthesizer": result.synthesizer,
                "notices": notices, "messages": [message]}

    def not_found(self, state: VistaState, runtime: Runtime[VistaContext]) -> dict[str, Any]:
        """Nothing retrieved and no image in the turn: say so, invent nothing."""
        kb = self._ctx(runtime).kb or self.engine.settings.kb
        answer = (
            f"I could not find anything about this in your documents (knowledge base {kb!r}). "
            "Add documents with `vistarag ingest PATH` or attach them to your question."
        )
        _emit({"type": "token", "text": answer})
        return {"answer": answer, "citations": [], "synthesizer": "none",
                "messages": [AIMessage(content=answer, response_metadata={"citations": []})]}


# ---- routing (no I/O) ------------------------------------------------------------------------
# Typed as Mapping, not VistaState: the compiled graph's schema carries reducers bound to its blob
# store, and LangGraph would read a VistaState annotation as a second, conflicting schema.
def route_after_detect(state: Mapping[str, Any]) -> str:
    return "ingest_attachments" if state.get("pending_files") else "encode_query"


def route_after_rerank(state: Mapping[str, Any]) -> str:
    if state.get("reranked") or state.get("query_images"):
        return "synthesize"
    return "not_found"
