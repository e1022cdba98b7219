"""Exact names and codes are retrieved through the sparse ``lexical`` vector in Qdrant."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from vistarag.agent.engine import Engine
from vistarag.agent.index import QueryVectors, SearchFilters
from vistarag.agent.qdrant import close_all
from vistarag.agent.settings import Settings
from vistarag.agent.sparse import document_vector, query_vector, term_index

TARGET = "Sync failed with error KX-77341-B while uploading quarterly_forecast_v7.xlsx"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("lexical")
    rng = random.Random(7)
    docs = root / "logs"
    docs.mkdir()
    for i in range(120):  # near-duplicate error reports: dense vectors can't tell them apart
        code = f"KX-{rng.randint(10000, 99999)}-{rng.choice('ABCD')}"
        name = f"quarterly_forecast_v{rng.randint(1, 99)}.xlsx"
        (docs / f"log_{i:03d}.txt").write_text(
            f"Sync failed with error {code} while uploading {name}\n", encoding="utf-8"
        )
    (docs / "log_target.txt").write_text(TARGET + "\n", encoding="utf-8")
    # top_n=10: only 10 of 121 near-duplicates reach the reranker, so retrieval must find it
    engine = Engine(Settings(home=root / "home", joint_model="none", top_n=10, _env_file=None))
    report = engine.ingestor().ingest_paths([docs])
    assert report.count("added") == 121
    yield engine
    close_all()


def test_sparse_vectors_are_stable_and_weighted() -> None:
    assert term_index("kx-77341-b") == term_index("kx-77341-b")
    doc = document_vector(TARGET)
    assert doc is not None and len(doc.indices) == len(set(doc.indices))
    assert term_index("kx-77341-b") in doc.indices
    query = query_vector("error KX-77341-B")
    weights = dict(zip(query.indices, query.values, strict=True))
    assert weights[term_index("kx-77341-b")] > weights[term_index("77341")]
    assert document_vector("   ") is None and query_vector("the of") is None


def test_exact_code_found_by_lexical_prefetch_alone(engine: Engine) -> None:
    kb = engine.kb()
    assert "lexical" in kb.vector_names()
    hits = kb.search(QueryVectors(lexical=[query_vector("KX-77341-B")]), limit=3,
                     filters=SearchFilters(owner="local"))
    assert Path(hits[0].source).name == "log_target.txt"


def test_exact_code_comes_first_end_to_end(engine: Engine) -> None:
    for query in ("KX-77341-B", "what went wrong with quarterly_forecast_v7.xlsx"):
        hits = engine.find(query, k=3)
        assert Path(hits[0].source).name == "log_target.txt", query
