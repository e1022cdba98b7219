"""The knowledge base as a LangChain retriever: the langchain-tests suite, plus metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests

from tests.fixtures_media import make_sample_corpus
from vistarag.agent.engine import Engine
from vistarag.agent.qdrant import close_all
from vistarag.agent.settings import Settings
from vistarag.tools import VistaRetriever

_STATE: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def knowledge_base(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("retriever")
    settings = Settings(home=root / "home", joint_model="none", _env_file=None)
    engine = Engine(settings)
    report = engine.ingestor().ingest_paths(make_sample_corpus(root / "corpus"))
    assert not report.errors
    _STATE.update(settings=settings, engine=engine)
    yield engine
    close_all()


class TestVistaRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return VistaRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"engine": _STATE["engine"], "k": 4}

    @property
    def retriever_query_example(self) -> str:
        return "How often is each lorry inspected?"


def test_documents_carry_citation_metadata() -> None:
    retriever = VistaRetriever(engine=_STATE["engine"], k=5)
    docs = retriever.invoke("invoice number INV-20931")
    top = docs[0]
    assert "INV-20931" in top.page_content
    assert Path(top.metadata["source"]).name == "zephyr_report.pdf"
    assert top.metadata["page"] == 3
    assert len(top.metadata["bbox"]) == 4
    assert {"doc_id", "modality", "blob", "score", "t_start", "t_end"} <= set(top.metadata)


def test_modality_filter_returns_only_images() -> None:
    retriever = VistaRetriever(engine=_STATE["engine"], k=5, modality=["image"])
    docs = retriever.invoke("revenue by quarter chart")
    assert docs and {d.metadata["modality"] for d in docs} == {"image"}
    assert Path(docs[0].metadata["source"]).name == "revenue_chart_2024.png"


def test_knowledge_base_as_a_langchain_qdrant_vectorstore() -> None:
    from langchain_core.vectorstores import VectorStore

    from vistarag.tools import as_vectorstore

    store = as_vectorstore(_STATE["engine"])
    assert isinstance(store, VectorStore)
    docs = store.similarity_search("How often is each lorry inspected?", k=3)
    assert "40,000 kilometres" in docs[0].page_content
    assert docs[0].metadata["page"] == 2 and docs[0].metadata["modality"] in ("text", "page")
    assert Path(docs[0].metadata["source"]).name == "zephyr_report.pdf"
    mmr = store.max_marginal_relevance_search("invoice number", k=2, fetch_k=10)
    assert len(mmr) == 2 and any("INV-20931" in d.page_content for d in mmr)
