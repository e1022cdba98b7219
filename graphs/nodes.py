"""The direct path's nodes: plain functions ``(state, runtime, *, services) -> partial update``.

``build_graph`` binds ``services`` (engine, synthesizer, context defaults) once; ``runtime``
carries the per-call ``VistaContext``. One turn, top to bottom:

detect_modality -> [ingest_attachments] -> search -> synthesize | not_found
                                        \\-> agent   (graphs/agent.py)
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from vistarag.agent.errors import VistaRAGError
from vistarag.agent.search import PageHint, SearchRequest
from vistarag.agent.synth.base import SynthesisRequest
from vistarag.agent.types import Hit, plural
from vistarag.graphs.context import VistaContext, resolve
from vistarag.graphs.routing import choose_path
from vistarag.graphs.services import Services
from vistarag.graphs.state import VistaState, new_turn
from vistarag.graphs.turn import (
    blob_refs,
    follow_up,
    history,
    human_message,
    last_human,
    message_parts,
    other_period,
    store_image_ref,
)
from vistarag.graphs.turn import (
    detect_modality as modality_of,
)

Node = Callable[..., dict[str, Any]]


def emit(event: dict[str, Any]) -> None:
    """Send a custom stream event; a no-op outside a graph run."""
    with contextlib.suppress(Exception):
        get_stream_writer()(event)


def timed(name: str, fn: Node, services: Services) -> Node:
    """Bind ``services``; record the node's wall time in ``timings``; emit start/end events
    (the end event carries a one-line summary of what the node did)."""
    bound = partial(fn, services=services)
    wants_config = "config" in inspect.signature(fn).parameters

    def node(
        state: VistaState, runtime: Runtime[VistaContext], config: RunnableConfig
    ) -> dict[str, Any]:
        emit({"type": "node_start", "node": name})
        started = time.perf_counter()
        update = bound(state, runtime, config) if wants_config else bound(state, runtime)
        ms = round((time.perf_counter() - started) * 1000, 2)
        update["timings"] = {**(update.get("timings") or {}), name: ms}
        emit({"type": "node_end", "node": name, "ms": ms, "summary": update.pop("_summary", "")})
        return update

    node.__name__ = name
    node.__doc__ = fn.__doc__
    return node


def context_of(runtime: Runtime[VistaContext] | None, services: Services) -> VistaContext:
    return resolve(getattr(runtime, "context", None), services.defaults)


def hits_of(items: list[dict[str, Any]] | None) -> list[Hit]:
    return [Hit.model_validate(h) for h in items or []]


def dump(hits: list[Hit]) -> list[dict[str, Any]]:
    return [h.model_dump(mode="json") for h in hits]


# ---- nodes --------------------------------------------------------------------------------------
def detect_modality(
    state: VistaState, runtime: Runtime[VistaContext], *, services: Services
) -> dict[str, Any]:
    """Read the pending turn (message and input keys), store its images as blobs, resolve a
    follow-up, say what kind of turn it is and which path answers it; reset per-turn state."""
    ctx = context_of(runtime, services)
    engine = services.engine
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
            refs.append(engine.image_ref(store_image_ref(ref, engine.blobs)))
        except (VistaRAGError, OSError, ValueError) as exc:
            notices.append(f"could not read image {ref[:80]}: {exc}")
    prior = history([m for m in messages if m is not pending])
    resolved = other_period(text, prior)  # "and the year before?": a question of its own
    retrieval_text, hint = (
        (resolved, None) if resolved else follow_up(text, prior, state.get("citations") or [])
    )
    modality = modality_of(text, refs, files)
    tool_model = services.synthesizer_for(ctx.model).choice.model is not None
    path, notice = choose_path(text, modality, ctx.mode or "auto", tool_model)
    if notice:
        notices.append(notice)
    update: dict[str, Any] = {
        **new_turn(),
        "modality": modality, "path": path, "query_text": text,
        "retrieval_text": retrieval_text, "query_images": refs, "pending_files": files,
        "resolved_question": resolved,
        "doc_filter": [hint["doc_id"]] if hint else [], "page_hint": hint, "notices": notices,
        "_summary": f"{modality} question, {path} path",
    }
    # Keep the conversation's human message in step: inputs folded in, images as blob refs.
    message = human_message(text, refs, files)
    if pending is not None:
        message.id = pending.id
    if pending is None or message.content != pending.content:
        update["messages"] = [message]
    return update


def ingest_attachments(
    state: VistaState, runtime: Runtime[VistaContext], *, services: Services
) -> dict[str, Any]:
    """Documents attached to the turn go into the knowledge base (as the caller's owner) first;
    the turn then searches them."""
    ctx = context_of(runtime, services)
    ingestor = services.engine.ingestor(ctx.kb, owner=ctx.owner)
    results, doc_ids, notices = [], [], list(state.get("notices") or [])
    for path in state.get("pending_files") or []:
        result = ingestor.ingest_file(Path(path))
        results.append({"path": result.path, "status": result.status, "doc_id": result.doc_id,
                        "points": result.points, "message": result.message})
        emit({"type": "ingested", **results[-1]})
        if result.doc_id and result.status in ("added", "replaced", "unchanged"):
            doc_ids.append(result.doc_id)
        else:
            notices.append(f"{Path(path).name}: {result.message or result.status}")
    return {"ingested": results, "doc_filter": doc_ids or state.get("doc_filter") or [],
            "pending_files": [], "notices": notices,
            "_summary": f"{plural(len(doc_ids), 'file')} ingested"}


def search(
    state: VistaState, runtime: Runtime[VistaContext], *, services: Services
) -> dict[str, Any]:
    """The one search path: encode, retrieve (owner, kb, modality, documents), rerank.

    On the offline video path the same search runs through the ``search_video_keyframes`` tool,
    and the call is recorded in the trajectory.
    """
    ctx = context_of(runtime, services)
    notices = list(state.get("notices") or [])
    if state.get("path") == "video":
        return _video_search(state, ctx, services, notices)
    hint = state.get("page_hint")
    request = SearchRequest(
        text=state.get("retrieval_text") or "", images=list(state.get("query_images") or []),
        kb=ctx.kb, owner=ctx.owner, modality=ctx.modality, top_n=ctx.top_n, top_k=ctx.top_k,
        doc_ids=state.get("doc_filter") or None, page_hint=PageHint(**hint) if hint else None,
    )
    try:
        result = services.engine.search(request)
    except VistaRAGError as exc:
        return {"sources": [], "notices": [*notices, str(exc)], "_summary": "search failed"}
    reranker = services.engine.settings.reranker
    return {
        "sources": dump(result.hits), "query_image_text": result.image_text,
        "timings": result.timings,
        "_summary": f"{plural(len(result.hits), 'hit')} of {result.candidates} candidates, "
                    f"{reranker} reranker",
    }


def _video_search(
    state: VistaState, ctx: VistaContext, services: Services, notices: list[str]
) -> dict[str, Any]:
    from vistarag.tools.search_tools import KeyframeSearchTool

    tool = KeyframeSearchTool(engine=services.engine, kb=ctx.kb, owner=ctx.owner)
    args = {"query": state.get("retrieval_text") or "", "k": ctx.top_k or 5}
    started = time.perf_counter()
    message = tool.invoke({"type": "tool_call", "id": "video-1", "name": tool.name,
                           "args": args})
    ms = round((time.perf_counter() - started) * 1000, 2)
    hits = hits_of(message.artifact)
    call = {"name": tool.name, "args": args, "hits": len(hits), "ms": ms}
    emit({"type": "tool", **call, "summary": f"{len(hits)} moments"})
    return {"sources": dump(hits), "trajectory": [call],
            "_summary": f"{plural(len(hits), 'moment')} from the videos"}


def synthesize(
    state: VistaState, runtime: Runtime[VistaContext], config: RunnableConfig, *,
    services: Services,
) -> dict[str, Any]:
    """The chat model (or the extractive answer) answers with ``[n]`` citations; its tokens
    stream through LangGraph's ``messages`` stream mode."""
    request = SynthesisRequest(
        question=state.get("query_text") or "",
        search_text=state.get("resolved_question") or "",
        hits=hits_of(state.get("sources")),
        user_images=blob_refs(state.get("query_images") or []),
        user_image_text=list(state.get("query_image_text") or []),
        history=history(list(state.get("messages") or [])),
    )
    synthesizer = services.synthesizer_for(context_of(runtime, services).model)
    result = synthesizer.synthesize(request, config)
    notices = list(state.get("notices") or [])
    if result.notice:
        notices.append(result.notice)
    return answer_update(result.answer, [c.model_dump(mode="json") for c in result.citations],
                         result.synthesizer, notices)


def answer_update(
    answer: str, citations: list[dict[str, Any]], synthesizer: str, notices: list[str]
) -> dict[str, Any]:
    """State update for a final answer: fields and the conversation's AI message."""
    message = AIMessage(
        content=answer,
        response_metadata={"citations": citations, "synthesizer": synthesizer},
    )
    return {"answer": answer, "citations": citations, "synthesizer": synthesizer,
            "notices": notices, "messages": [message], "_summary": synthesizer}


def not_found(
    state: VistaState, runtime: Runtime[VistaContext], *, services: Services
) -> dict[str, Any]:
    """Nothing retrieved and no image in the turn: say so, invent nothing."""
    kb = context_of(runtime, services).kb
    answer = (
        f"I could not find anything about this in your documents (knowledge base {kb!r}). "
        "Add documents with `vistarag ingest PATH` or attach them to your question."
    )
    emit({"type": "token", "text": answer})
    update = answer_update(answer, [], "none", list(state.get("notices") or []))
    return {**update, "not_found": True, "_summary": "nothing found"}
