"""The same corpus, the same queries, two backends: Qdrant Edge and a ``QdrantClient``.

The server backend is exercised on qdrant-client's local mode (``QdrantClient(path=...)``),
which runs the same qdrant-client calls the server backend sends to ``QDRANT_URL``. Both must
return the same points with the same fused (RRF) scores for every query and filter.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient

from vistarag.agent.index import (
    KnowledgeBase,
    PointRecord,
    QueryVectors,
    SearchFilters,
    field_filter,
    point_id,
)
from vistarag.agent.index.edge import EdgeBackend
from vistarag.agent.index.server import ServerBackend
from vistarag.agent.settings import Settings
from vistarag.agent.sparse import LEXICAL_VECTOR, document_vector, query_vector

RECORD = {"text_model": "t", "text_dim": 24, "joint_model": "j", "joint_dim": 12}
WORDS = [
    "invoice", "revenue", "router", "certificate", "depot", "lorry", "brake", "tyre", "audit",
    "cash", "lease", "bond",
]


def corpus(n: int = 300, seed: int = 7) -> list[PointRecord]:
    """Clustered vectors (like real embeddings), joint vectors on a third, a lexical vector."""
    rng = np.random.default_rng(seed)
    centres_t = rng.normal(size=(6, 24))
    centres_j = rng.normal(size=(6, 12))
    points = []
    for i in range(n):
        c = i % 6
        text = centres_t[c] + 0.35 * rng.normal(size=24)
        vectors: dict = {"text": (text / np.linalg.norm(text)).tolist()}
        if i % 3 == 0:
            joint = centres_j[c] + 0.35 * rng.normal(size=12)
            vectors["joint"] = (joint / np.linalg.norm(joint)).tolist()
        words = " ".join(rng.choice(WORDS, size=int(rng.integers(3, 9))))
        lexical = document_vector(f"{words} code-{i % 17}")
        # a little noise on term weights: no two documents tie on one query (engines may break
        # ties either way, and a tie at a prefetch's cut-off changes what gets fused)
        lexical.values = [v * (1 + 0.01 * rng.random()) for v in lexical.values]
        vectors[LEXICAL_VECTOR] = lexical
        payload = {
            "doc_id": f"d{i % 10}", "modality": ["text", "image", "page"][i % 3],
            "owner": "alice" if i % 4 else "bob", "text": words, "page": i % 5,
            "source": f"/data/d{i % 10}.pdf", "content_hash": f"h{i % 10}", "blob": None,
            "complete": i % 5 == 0,
        }
        points.append(PointRecord(point_id(f"d{i % 10}", f"h{i % 10}", str(i)), vectors, payload))
    return points


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> tuple[KnowledgeBase, KnowledgeBase]:
    root = tmp_path_factory.mktemp("backends")
    settings = Settings(home=root / "home", joint_model="none", _env_file=None)
    edge = EdgeBackend(root / "edge", hold_lock=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = ServerBackend(QdrantClient(path=str(root / "local")))
    made = filled(settings, edge, local)
    yield made[0], made[1]
    edge.close()
    local.close()


def filled(settings: Settings, *backends: Any) -> list[KnowledgeBase]:
    """Knowledge base "same" with the corpus, on each backend."""
    made = []
    for backend in backends:
        kb = KnowledgeBase(settings, "same", backend)
        kb.ensure(RECORD, owner="alice")
        kb.upsert(corpus(), batch=64)
        made.append(kb)
    return made


def ranking(hits) -> tuple[list[float], list[tuple[float, str]]]:  # type: ignore[no-untyped-def]
    """Every score best first, and (score, id) of the hits that beat the last one.

    Ties are ordered by id, since engines may order them either way; hits tied with the last
    one may be cut at the limit differently, so their ids are not compared (their scores are).
    """
    scored = sorted(((round(h.score, 5), h.id) for h in hits), key=lambda t: (-t[0], t[1]))
    last = scored[-1][0] if scored else 0.0
    return [s for s, _ in scored], [t for t in scored if t[0] > last]


def queries() -> list[tuple[QueryVectors, SearchFilters | None]]:
    rng = np.random.default_rng(11)
    out = []
    for i in range(8):
        t = rng.normal(size=24)
        j = rng.normal(size=12)
        q = QueryVectors(
            text=[(t / np.linalg.norm(t)).astype(np.float32)],
            joint=[(j / np.linalg.norm(j)).astype(np.float32)] if i % 2 else [],
            lexical=[query_vector(f"{WORDS[i]} code-{i}")],
        )
        flt = [None, SearchFilters(owner="alice"), SearchFilters(owner="bob", modality=["text"]),
               SearchFilters(owner="alice", doc_ids=["d1", "d2", "d3"])][i % 4]
        out.append((q, flt))
    return out


@pytest.mark.parametrize("case", range(8))
def test_same_ranking_on_both_backends(bases, case: int) -> None:  # type: ignore[no-untyped-def]
    edge, local = bases
    query, flt = queries()[case]
    got_edge = edge.search(query, limit=10, filters=flt)
    got_local = local.search(query, limit=10, filters=flt)
    assert got_edge and ranking(got_edge) == ranking(got_local)
    dense_local = {h.id: h.extra["dense"] for h in got_local}
    for hit in got_edge:  # the cosines handed to rerankers are the same too
        if hit.id in dense_local:
            assert hit.extra["dense"] == pytest.approx(dense_local[hit.id], abs=1e-5)
    if flt and flt.owner:
        assert {h.owner for h in got_edge} == {flt.owner}


def test_single_space_and_lexical_only_queries_agree(bases) -> None:  # type: ignore[no-untyped-def]
    edge, local = bases
    q = corpus()[5].vectors["text"]
    text_only = QueryVectors(text=[np.asarray(q, dtype=np.float32)])
    assert ranking(edge.search(text_only, 10)) == ranking(local.search(text_only, 10))
    lexical = QueryVectors(lexical=[query_vector("certificate code-3")])
    assert ranking(edge.search(lexical, 10)) == ranking(local.search(lexical, 10))


def test_counts_scrolls_and_retrieves_agree(bases) -> None:  # type: ignore[no-untyped-def]
    for kb in bases:
        assert kb.count() == 300
        assert kb.count(field_filter(owner="bob")) == 75
        # a bool match (Edge 0.9.0 reads a Python bool as an int unless translated)
        assert kb.count(field_filter(complete=True)) == 60
        assert kb.count(field_filter(complete=False, owner="bob")) == 60
        assert len(list(kb.scroll(field_filter(doc_id="d3"), fields=["doc_id"]))) == 30
        assert kb.doc_versions("d4") == {"h4"}
    ids = {p.id for p in bases[0].scroll(field_filter(modality="page"), fields=False)}
    assert ids == {p.id for p in bases[1].scroll(field_filter(modality="page"), fields=False)}
    (one,) = bases[0].retrieve([next(iter(ids))], with_vectors=True)
    (two,) = bases[1].retrieve([one.id], with_vectors=True)
    assert one.payload == two.payload and set(one.vector) == set(two.vector)
    assert one.vector["text"] == pytest.approx(two.vector["text"], abs=1e-6)
