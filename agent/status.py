"""What ``vistarag status`` reports, read without loading any model.

Whether the joint model is available is decided from disk (a local directory or the Hugging Face
cache), so the answer takes milliseconds; loading it stays with the first search or ingest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vistarag.agent.index import (
    HNSW_MIN_POINTS,
    IndexBackend,
    KnowledgeBase,
    list_knowledge_bases,
)
from vistarag.agent.settings import Settings

OFF = {"", "none", "off"}


def joint_model_status(spec: str) -> tuple[bool, str]:
    """(available, why) for a joint model spec, from disk only."""
    if spec.strip().lower() in OFF:
        return False, "switched off (VISTARAG_JOINT_MODEL=none): text-bridge mode"
    if Path(spec).expanduser().exists():
        return True, "local directory"
    from huggingface_hub import try_to_load_from_cache

    repo = spec if "/" in spec else f"sentence-transformers/{spec}"
    if isinstance(try_to_load_from_cache(repo, "config.json"), str) or isinstance(
        try_to_load_from_cache(repo, "modules.json"), str
    ):
        return True, "in the Hugging Face cache"
    offline = any(
        os.environ.get(k, "").lower() in {"1", "true", "yes", "on"}
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
    if offline:
        return False, "not on disk and HF_HUB_OFFLINE is set: text-bridge mode"
    return False, "not on disk: downloaded on first use if the hub is reachable, else text-bridge"


def search_mode(state: dict[str, Any]) -> str:
    """How a knowledge base is searched now: exactly, through HNSW, or exactly while a build
    runs (``index_state`` of the index backend)."""
    points, indexed = int(state.get("points") or 0), int(state.get("indexed_points") or 0)
    if state.get("building"):
        return (f"exact while the HNSW index is built in the background ({state['building']}, "
                f"{state.get('build_seconds', 0):.0f} s so far)")
    if indexed:
        newer = max(0, points - indexed)
        return f"HNSW over {indexed:,} points" + (f", {newer:,} newer scanned" if newer else "")
    if points >= HNSW_MIN_POINTS:
        return "exact (not indexed yet: the next ingest builds the HNSW index)"
    return f"exact (under {HNSW_MIN_POINTS:,} points)"


def gather_status(settings: Settings, backend: IndexBackend) -> dict[str, Any]:
    """Data dir, index location, knowledge bases with point counts, and the models configured."""
    available, why = joint_model_status(settings.joint_model)
    kbs = []
    for name in list_knowledge_bases(backend):
        kb = KnowledgeBase(settings, name, backend)
        meta = kb.metadata()
        joint = meta.get("joint_model") or "?"
        kbs.append({
            "name": name,
            "points": kb.count(),
            "text_model": meta.get("text_model"),
            "joint_model": joint,
            "text_bridge": not meta.get("joint_dim"),
            "search": "as the Qdrant server indexes it" if settings.qdrant_url
            else search_mode(kb.index_state()),
        })
    index = settings.qdrant_url or f"embedded Qdrant Edge in {settings.qdrant_dir / 'edge'}"
    held = getattr(backend, "holder", None)  # a RemoteBackend: another process holds the index
    if held is not None:
        index += f", used through the process that holds it (pid {held.pid}: {held.command})"
    return {
        "home": str(settings.home),
        "index": index,
        "held_by": {"pid": held.pid, "command": held.command} if held is not None else None,
        "knowledge_bases": kbs,
        "models": {
            "text_model": settings.text_model,
            "text_backend": settings.text_backend,
            "joint_model": settings.joint_model,
            "joint_available": available,
            "joint_status": why,
            "reranker": settings.reranker,
            "synthesizer": settings.synthesizer,
        },
        "text_bridge": not available,
    }
