"""The server backend (``QDRANT_URL``) over real HTTP, against a loopback Qdrant REST API.

No Qdrant server runs here: ``tests/qdrant_rest.py`` answers the REST calls the backend makes
(parsed with qdrant-client's REST models, run on its local mode). The knowledge base is built
through ``QdrantClient(url=...)`` exactly as with a server, ranks the shared corpus as the
embedded Qdrant Edge backend does, and the requests it sent are the ones a server needs.
"""

from __future__ import annotations

import pytest

from tests.qdrant_rest import QdrantRestServer
from tests.test_index_backends import corpus, filled, queries, ranking
from vistarag.agent.index.backend import get_backend
from vistarag.agent.index.edge import EdgeBackend
from vistarag.agent.index.records import field_filter
from vistarag.agent.index.server import ServerBackend
from vistarag.agent.settings import Settings


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(server, the knowledge base over HTTP, the same corpus on Qdrant Edge)."""
    root = tmp_path_factory.mktemp("rest")
    edge = EdgeBackend(root / "edge", hold_lock=False)
    with QdrantRestServer() as server:
        settings = Settings(home=root / "home", joint_model="none", qdrant_url=server.url,
                            _env_file=None)
        backend = get_backend(settings)  # what QDRANT_URL selects
        assert isinstance(backend, ServerBackend) and backend.location.startswith(server.url)
        http, on_edge = filled(settings, backend, edge)
        yield server, http, on_edge
        backend.close()
    edge.close()


def sent(server: QdrantRestServer, method: str, suffix: str) -> list:
    return [body for m, path, body in server.requests if m == method and path.endswith(suffix)]


@pytest.mark.parametrize("case", range(8))
def test_same_ranking_over_http_as_on_edge(served, case: int) -> None:  # type: ignore[no-untyped-def]
    _, http, edge = served
    query, flt = queries()[case]
    got = http.search(query, limit=10, filters=flt)
    assert got and ranking(got) == ranking(edge.search(query, limit=10, filters=flt))


def test_the_collection_and_its_payload_indexes_as_a_server_needs_them(served) -> None:  # type: ignore[no-untyped-def]
    server, http, _ = served
    (create,) = sent(server, "PUT", f"/collections/{http.physical()}")
    assert create["vectors"]["text"] == {"size": 24, "distance": "Cosine"}
    assert create["vectors"]["joint"] == {"size": 12, "distance": "Cosine"}
    assert create["sparse_vectors"]["lexical"]["modifier"] == "idf"
    assert create["metadata"]["kb"] == "same"
    indexes = {b["field_name"]: b["field_schema"] for b in sent(server, "PUT", "/index")}
    assert indexes["owner"] == {"type": "keyword", "is_tenant": True}
    assert {"doc_id", "modality", "page", "content_hash"} <= set(indexes)
    aliases = sent(server, "POST", "/collections/aliases")
    assert aliases and aliases[-1]["actions"][-1]["create_alias"] == {
        "collection_name": http.physical(), "alias_name": http.alias}


def test_the_fused_query_is_one_request_with_a_filtered_prefetch_per_space(served) -> None:  # type: ignore[no-untyped-def]
    server, http, _ = served
    query, flt = queries()[1]  # text, joint and lexical; owner alice
    before = len(server.requests)
    http.search(query, limit=10, filters=flt)
    bodies = [b for m, p, b in server.requests[before:] if p.endswith("/points/query")]
    assert len(bodies) == 1
    (body,) = bodies
    assert body["query"] == {"fusion": "rrf"} and body["limit"] >= 10
    assert sorted(p["using"] for p in body["prefetch"]) == ["joint", "lexical", "text"]
    owner = {"key": "owner", "match": {"value": "alice"}}
    for prefetch in body["prefetch"]:
        assert owner in prefetch["filter"]["must"]
    lexical = next(p for p in body["prefetch"] if p["using"] == "lexical")
    assert set(lexical["query"]) == {"indices", "values"}


def test_writes_reads_and_deletes_over_http(served) -> None:  # type: ignore[no-untyped-def]
    _, http, _ = served
    assert http.count() == 300
    assert http.count(field_filter(owner="bob")) == 75
    assert len(list(http.scroll(field_filter(doc_id="d3"), fields=["doc_id"]))) == 30
    (one,) = http.retrieve([corpus()[0].id], with_vectors=True)
    assert set(one.vector) >= {"text", "lexical"}
    http.set_payload([one.id], {"complete": False})
    assert http.retrieve([one.id])[0].payload["complete"] is False
    http.delete_points(field_filter(doc_id="d9"))
    assert http.count() == 270 and http.count(field_filter(doc_id="d9")) == 0
