"""Knowledge-base maintenance: blob garbage collection and re-indexing with new models."""

from __future__ import annotations

from pathlib import Path

from vistarag.agent.engine import Engine
from vistarag.agent.errors import VistaRAGError
from vistarag.agent.index import KnowledgeBase, list_knowledge_bases
from vistarag.agent.ingest.pipeline import IngestReport


def referenced_blobs(engine: Engine) -> set[str]:
    refs: set[str] = set()
    for name in list_knowledge_bases(engine.kb().client):
        for point in engine.kb(name).scroll(fields=["blob"]):
            if point.payload.get("blob"):
                refs.add(point.payload["blob"])
    return refs


def collect_garbage_blobs(engine: Engine) -> int:
    """Delete blobs that no point of any knowledge base references; returns how many."""
    live = referenced_blobs(engine)
    dead = engine.blobs.all_refs() - live
    for ref in dead:
        engine.blobs.delete(ref)
    return len(dead)


def sources(kb: KnowledgeBase) -> list[str]:
    """Every source file recorded in a knowledge base."""
    found = {p.payload.get("source") for p in kb.scroll(fields=["source"])}
    return sorted(s for s in found if s)


def reindex(engine: Engine) -> tuple[IngestReport, list[str]]:
    """Drop and rebuild the knowledge base from its source files (those still on disk)."""
    kb = engine.kb()
    if not kb.exists():
        raise VistaRAGError(f"no knowledge base named {kb.name!r} (see `vistarag kb list`)")
    all_sources = sources(kb)
    present = [s for s in all_sources if Path(s).is_file()]
    missing = [s for s in all_sources if not Path(s).is_file()]
    kb.drop()
    report = engine.ingestor().ingest_paths(present)
    collect_garbage_blobs(engine)
    return report, missing
