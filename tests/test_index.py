"""The knowledge base over embedded Qdrant: collections, RRF search, filters, model checks."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vistarag.agent.engine import Engine
from vistarag.agent.errors import KnowledgeBaseNotFound, ModelMismatchError, VistaRAGError
from vistarag.agent.index import (
    COLLECTION_PREFIX,
    CollectionSpec,
    KnowledgeBase,
    PointRecord,
    QueryVectors,
    SearchFilters,
    collection_name,
    field_filter,
    list_knowledge_bases,
    point_id,
)
from vistarag.agent.qdrant import close_all
from vistarag.agent.settings import Settings
from vistarag.agent.sparse import LEXICAL_SCHEME, LEXICAL_VECTOR, document_vector, query_vector
from vistarag.ui.cli import app

RECORD = {"text_model": "text-a", "text_dim": 8, "joint_model": "joint-a", "joint_dim": 4}


def unit(dim: int, i: int, mix: float = 0.0, j: int | None = None) -> np.ndarray:
    """A unit vector along axis i, optionally tilted towards axis j."""
    v = np.zeros(dim, dtype=np.float32)
    v[i] = 1.0
    if j is not None:
        v[j] = mix
    return v / np.linalg.norm(v)


def record(
    pid: str,
    doc: str,
    modality: str,
    text: np.ndarray | None,
    joint: np.ndarray | None = None,
    owner: str = "local",
    **payload,
) -> PointRecord:
    vectors = {}
    if text is not None:
        vectors["text"] = text.tolist()
    if joint is not None:
        vectors["joint"] = joint.tolist()
    body = {
        "doc_id": doc,
        "modality": modality,
        "owner": owner,
        "source": f"/data/{doc}",
        "text": pid,
        "content_hash": f"h-{doc}",
        "blob": None,
        "page": None,
        **payload,
    }
    return PointRecord(point_id(doc, f"h-{doc}", pid), vectors, body)


@pytest.fixture
def kb(settings: Settings) -> KnowledgeBase:
    base = KnowledgeBase(settings, "synthetic")
    base.ensure(RECORD)
    base.upsert(
        [
            # 'both' is the best match in each space; the others lead in at most one
            record("both", "d1", "image", unit(8, 0, 0.1, 1), unit(4, 0, 0.1, 1)),
            record("text-only", "d1", "text", unit(8, 0, 0.3, 2), page=2),
            record("joint-only", "d2", "keyframe", None, unit(4, 0, 0.3, 2)),
            record("far", "d2", "page", unit(8, 5), unit(4, 3), page=1),
            record("other-owner", "d3", "text", unit(8, 0), owner="someone-else"),
        ]
    )
    return base


def texts(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.text for h in hits]


# ---- names and ids ---------------------------------------------------------------------------


def test_collection_names() -> None:
    assert collection_name("team-docs_2.0") == COLLECTION_PREFIX + "team-docs_2.0"
    for bad in ["", "-x", "a/b", "a b", "../etc", "x" * 65, "é"]:
        with pytest.raises(VistaRAGError, match="invalid knowledge base name"):
            collection_name(bad)


def test_point_ids_are_deterministic_uuids() -> None:
    a = point_id("d1", "hash", "p1-t0")
    assert a == point_id("d1", "hash", "p1-t0")
    assert uuid.UUID(a).version == 5
    assert (
        len(
            {
                a,
                point_id("d1", "hash", "p1-t1"),
                point_id("d1", "hash2", "p1-t0"),
                point_id("d2", "hash", "p1-t0"),
            }
        )
        == 4
    )


# ---- lifecycle -------------------------------------------------------------------------------


def test_missing_knowledge_base(settings: Settings) -> None:
    base = KnowledgeBase(settings, "nothing-here")
    assert not base.exists() and not base.drop()
    with pytest.raises(KnowledgeBaseNotFound, match="vistarag ingest PATH --kb nothing-here"):
        base.metadata()
    assert Engine(settings).find("anything", kb="nothing-here") == []


def test_ensure_records_models_and_creates_named_vectors(kb: KnowledgeBase) -> None:
    meta = kb.metadata()
    assert {k: meta[k] for k in RECORD} == RECORD
    assert meta["kb"] == "synthetic" and meta["schema_version"] == 1
    assert meta["lexical"] == LEXICAL_SCHEME
    # dense text and joint spaces, plus the sparse BM25-style lexical vector
    assert kb.vector_names() == {"text", "joint", LEXICAL_VECTOR}
    kb.ensure(dict(RECORD))  # same models: fine
    assert kb.count() == 5


def test_text_only_record_has_no_joint_vector(settings: Settings) -> None:
    base = KnowledgeBase(settings, "text-only")
    base.ensure({**RECORD, "joint_model": "none (text-bridge)", "joint_dim": 0})
    assert base.vector_names() == {"text", LEXICAL_VECTOR}
    base.upsert([record("t", "d1", "text", unit(8, 1))])
    # a joint query vector has nothing to search here; the text one still works
    assert base.search(QueryVectors(joint=[unit(4, 0)]), limit=5) == []
    hits = base.search(QueryVectors(text=[unit(8, 1)], joint=[unit(4, 0)]), limit=5)
    assert texts(hits) == ["t"] and set(hits[0].extra["dense"]) == {"text"}


def test_other_models_raise_a_mismatch_naming_the_fix(kb: KnowledgeBase) -> None:
    with pytest.raises(ModelMismatchError) as info:
        kb.ensure({**RECORD, "joint_model": "joint-b"})
    msg = str(info.value)
    assert "'joint-a'" in msg and "'joint-b'" in msg and "text_model" not in msg
    assert "vistarag kb reindex synthetic" in msg and "VISTARAG_JOINT_MODEL" in msg
    with pytest.raises(ModelMismatchError, match="text_model: built with 'text-a'"):
        kb.check_models({**RECORD, "text_model": "text-b"})


def test_list_knowledge_bases_only_lists_ours(kb: KnowledgeBase, settings: Settings) -> None:
    KnowledgeBase(settings, "alpha").ensure(RECORD)
    kb.backend.create_collection("not-ours", CollectionSpec({"v": 2}, (), {}))
    assert list_knowledge_bases(kb.backend) == ["alpha", "synthetic"]
    assert KnowledgeBase(settings, "alpha").drop()
    assert list_knowledge_bases(kb.backend) == ["synthetic"]


# ---- search ----------------------------------------------------------------------------------


def test_single_space_search_ranks_by_cosine(kb: KnowledgeBase) -> None:
    q = unit(8, 0)
    hits = kb.search(QueryVectors(text=[q]), limit=3)
    assert texts(hits) == ["other-owner", "both", "text-only"]
    for hit in hits:
        assert hit.extra["dense"]["text"] == pytest.approx(hit.score, abs=1e-5)
    assert hits[1].extra["dense"]["text"] == pytest.approx(float(q @ unit(8, 0, 0.1, 1)), abs=1e-5)
    joint = kb.search(QueryVectors(joint=[unit(4, 0)]), limit=2)
    assert texts(joint) == ["both", "joint-only"]


def test_rrf_fuses_spaces(kb: KnowledgeBase) -> None:
    query = QueryVectors(text=[unit(8, 0)], joint=[unit(4, 0)])
    hits = kb.search(query, limit=5, filters=SearchFilters(owner="local"))
    names = texts(hits)
    # reciprocal rank fusion: first in both spaces wins; 'far' is only third by cosine in each
    # space but is found by both, so it beats the points found by one space only
    assert names[0] == "both" and names[1] == "far"
    assert set(names[2:]) == {"text-only", "joint-only"} and len(names) == 4
    dense = {h.text: h.extra["dense"] for h in hits}
    assert dense["far"]["text"] < dense["text-only"]["text"]
    assert dense["far"]["joint"] < dense["joint-only"]["joint"]
    both = hits[0]
    assert set(both.extra["dense"]) == {"text", "joint"}
    assert both.extra["dense"]["joint"] == pytest.approx(
        float(unit(4, 0) @ unit(4, 0, 0.1, 1)), abs=1e-5
    )
    assert set(hits[2].extra["dense"]) | set(hits[3].extra["dense"]) == {"text", "joint"}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # several vectors per space (a composed query) fuse too
    composed = QueryVectors(text=[unit(8, 5), unit(8, 0)])
    assert set(texts(kb.search(composed, limit=2))) == {"far", "other-owner"}


def test_lexical_sparse_vector_finds_exact_codes(settings: Settings) -> None:
    base = KnowledgeBase(settings, "lexical")
    base.ensure(RECORD)
    docs = {
        "qx4471": "Error code QX-4471 on the proxy: the certificate expired.",
        "qx5520": "Error code QX-5520 on the gateway: the certificate was revoked.",
        "revenue": "Quarterly revenue rose fourteen percent in Rotterdam.",
    }
    points = []
    for i, (name, text) in enumerate(docs.items()):
        point = record(name, f"d{i}", "text", unit(8, i))
        point.vectors[LEXICAL_VECTOR] = document_vector(text)
        points.append(point)
    base.upsert(points)
    code = query_vector("QX-4471")
    # the whole code ranks first; 'QX-5520' only shares the identifier part 'qx'
    assert texts(base.search(QueryVectors(lexical=[code]), limit=3)) == ["qx4471", "qx5520"]
    # fused with a dense vector pointing at another document: the exact code still wins
    fused = base.search(QueryVectors(text=[unit(8, 2)], lexical=[code]), limit=3)
    assert texts(fused)[0] == "qx4471" and set(texts(fused)) == set(docs)
    assert set(fused[0].extra["dense"]) == {"text"}  # sparse scores are not cosines
    shared = base.search(QueryVectors(lexical=[query_vector("certificate error code")]), limit=3)
    assert set(texts(shared)) == {"qx4471", "qx5520"}  # no shared term: not a candidate


def test_filters(kb: KnowledgeBase) -> None:
    query = QueryVectors(text=[unit(8, 0)], joint=[unit(4, 0)])

    def names(**kw) -> set[str]:  # type: ignore[no-untyped-def]
        return set(texts(kb.search(query, limit=10, filters=SearchFilters(**kw))))

    assert names(owner="local") == {"both", "text-only", "joint-only", "far"}
    assert names(owner="someone-else") == {"other-owner"}
    assert names(modality=["text"]) == {"text-only", "other-owner"}
    assert names(modality=["image", "keyframe"], owner="local") == {"both", "joint-only"}
    assert names(doc_ids=["d2"]) == {"joint-only", "far"}
    assert names(doc_ids=["d1"], modality=["text"]) == {"text-only"}
    assert names(doc_ids=["nope"]) == set()
    assert kb.search(QueryVectors(), limit=5) == []


def test_hits_carry_the_payload(kb: KnowledgeBase) -> None:
    (hit,) = kb.search(
        QueryVectors(text=[unit(8, 0, 0.3, 2)]),
        limit=1,
        filters=SearchFilters(modality=["text"], owner="local"),
    )
    assert (hit.text, hit.doc_id, hit.modality, hit.page) == ("text-only", "d1", "text", 2)
    assert hit.source == "/data/d1" and hit.owner == "local" and hit.content_hash == "h-d1"
    assert hit.id == point_id("d1", "h-d1", "text-only")


def test_counts_versions_deletes_and_stats(kb: KnowledgeBase) -> None:
    assert kb.count(field_filter(doc_id="d1")) == 2
    assert kb.doc_versions("d2") == {"h-d2"} and kb.doc_versions("none") == set()
    stats = kb.stats()
    assert stats["points"] == 5 and stats["documents"] == 3
    assert stats["by_modality"] == {"image": 1, "text": 2, "keyframe": 1, "page": 1}
    assert (stats["text_model"], stats["joint_model"]) == ("text-a", "joint-a")
    kb.delete_points(field_filter(doc_id="d2", modality="page"))
    assert kb.count(field_filter(doc_id="d2")) == 1 and kb.count() == 4
    assert len(list(kb.scroll(limit=2))) == 2


def test_upsert_is_idempotent_and_batched(settings: Settings) -> None:
    base = KnowledgeBase(settings, "many")
    base.ensure(RECORD)
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(700, 8)).astype(np.float32)
    points = [
        record(f"p{i}", f"d{i % 7}", "text", v / np.linalg.norm(v)) for i, v in enumerate(vecs)
    ]
    base.upsert(points, batch=256)
    base.upsert(points[:300], batch=64)  # same ids: overwritten, not duplicated
    assert base.count() == 700
    assert len(list(base.scroll(field_filter(doc_id="d3")))) == 100  # scroll pages past 512
    assert len(list(base.scroll())) == 700


# ---- real models: a knowledge base built with other models -----------------------------------


def test_model_mismatch_then_cli_reindex(
    settings: Settings, joint_settings: Settings, tiny_clip_dir: Path, tmp_path: Path
) -> None:
    assert settings.home == joint_settings.home  # one data dir, two model configurations
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n\nThe loading dock opens at 6 am.\n")
    manual = tmp_path / "manual.txt"
    manual.write_text("Reset the router by holding the button for ten seconds.")
    gone = tmp_path / "old.txt"
    gone.write_text("This file will be moved away before the re-index.")
    built = Engine(settings).ingestor().ingest_paths([notes, manual, gone])
    assert built.count("added") == 3
    gone.unlink()

    joint = Engine(joint_settings)
    with pytest.raises(ModelMismatchError) as info:
        joint.find("loading dock")
    msg = str(info.value)
    assert "vistarag kb reindex default" in msg
    assert "none (text-bridge)" in msg and str(tiny_clip_dir) in msg
    refused = joint.ingestor().ingest_file(notes)
    assert refused.status == "error" and "vistarag kb reindex" in refused.message

    env = {
        "VISTARAG_HOME": str(joint_settings.home),
        "VISTARAG_JOINT_MODEL": str(tiny_clip_dir),
        "VISTARAG_KB": None,
        "COLUMNS": "400",
    }
    try:
        result = CliRunner().invoke(app, ["kb", "reindex"], env=env)
    finally:
        close_all()
    assert result.exit_code == 0, result.output
    assert re.search(rf"missing\s+{re.escape(str(gone.resolve()))}", result.stderr)
    assert "re-indexed 2 files into 2 points (0 errors)" in result.stderr

    engine = Engine(joint_settings)
    meta = engine.kb().metadata()
    assert meta["joint_model"] == str(tiny_clip_dir) and meta["joint_dim"] == 16
    assert engine.kb().vector_names() == {"text", "joint", LEXICAL_VECTOR}
    hits = engine.find("when does the loading dock open", k=2)  # no mismatch any more
    assert hits[0].source == str(notes.resolve())
    assert {h.source for h in engine.find("old file moved away", k=5)} <= {
        str(notes.resolve()),
        str(manual.resolve()),
    }
    with pytest.raises(ModelMismatchError, match="vistarag kb reindex default"):
        Engine(settings).find("loading dock")  # now the old configuration is the stale one
