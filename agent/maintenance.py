"""Knowledge-base maintenance: blob garbage collection and re-indexing with new models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vistarag.agent.engine import Engine
from vistarag.agent.errors import VistaRAGError
from vistarag.agent.index import KnowledgeBase, physical_collections
from vistarag.agent.ingest.pipeline import Ingestor, IngestReport


def referenced_blobs(engine: Engine) -> set[str]:
    """Blobs a point references in any knowledge base, builds still in progress included."""
    backend = engine.kb().backend
    refs: set[str] = set()
    for name in physical_collections(backend):
        base = KnowledgeBase(engine.settings, engine.settings.kb, backend, physical=name)
        for point in base.scroll(fields=["blob"]):
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


def sources_by_owner(kb: KnowledgeBase) -> dict[str, list[str]]:
    """Source files per owner, so a rebuild keeps each document with its owner."""
    found: dict[str, set[str]] = {}
    for p in kb.scroll(fields=["source", "owner"]):
        source = p.payload.get("source")
        if source:
            found.setdefault(p.payload.get("owner") or kb.settings.owner, set()).add(source)
    return {owner: sorted(paths) for owner, paths in sorted(found.items())}


@dataclass
class ReindexResult:
    """What a re-index did: the files rebuilt, sources gone from disk, and whether it swapped."""

    report: IngestReport
    missing: list[str]
    swapped: bool


def reindex(engine: Engine) -> ReindexResult:
    """Rebuild the knowledge base from its source files (those still on disk) with the models
    configured now.

    The rebuild goes into a new collection while the old one keeps serving; the knowledge base's
    alias moves to the new one only when every file is in. When a file fails, or none of the
    sources is left on disk, the new collection is dropped and the old one keeps serving
    (``swapped`` is False). Killed half-way, the old one still serves too (the half-built
    collection is removed by the next re-index or delete).
    """
    kb = engine.kb()
    if not kb.exists():
        raise VistaRAGError(f"no knowledge base named {kb.name!r} (see `vistarag kb list`)")
    kb.drop_stale_builds()
    by_owner = sources_by_owner(kb)
    all_sources = sorted({s for paths in by_owner.values() for s in paths})
    missing = [s for s in all_sources if not Path(s).is_file()]
    staging = kb.staging(engine.models.record())
    report = IngestReport()
    try:
        for owner, paths in by_owner.items():
            settings = engine.settings.model_copy(update={"owner": owner})
            ingestor = Ingestor(settings, engine.models, staging, engine.blobs)
            part = ingestor.ingest_paths([p for p in paths if Path(p).is_file()])
            report.results.extend(part.results)
            report.seconds += part.seconds
    except BaseException:
        staging.drop()
        raise
    if report.errors or (all_sources and not report.results):
        staging.drop()
        collect_garbage_blobs(engine)
        return ReindexResult(report, missing, swapped=False)
    kb.swap_to(staging)
    collect_garbage_blobs(engine)
    return ReindexResult(report, missing, swapped=True)
