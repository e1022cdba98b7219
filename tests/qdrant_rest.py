"""A loopback HTTP server that speaks the Qdrant REST API for the calls VistaRAG makes.

No Qdrant server runs here, so the server backend (``QDRANT_URL``) is tested as the LLM clients
are: the real client (``QdrantClient(url=...)``) sends its real HTTP requests to this server,
which parses each body with qdrant-client's REST models (what the server accepts), runs it on
qdrant-client's local mode (the same query semantics: prefetch, RRF, filters) and answers in the
server's envelope (``{"result": ..., "status": "ok", "time": ...}``). Every request is recorded,
so tests can check what was sent. A path it does not know gets a 404, as from a real server.
"""

from __future__ import annotations

import json
import re
import threading
import warnings
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import BaseModel
from qdrant_client import QdrantClient, models

Handler = Callable[[QdrantClient, dict[str, str], Any], Any]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, path: str) -> Callable[[Handler], Handler]:
    pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")

    def register(fn: Handler) -> Handler:
        ROUTES.append((method, pattern, fn))
        return fn

    return register


def _update() -> dict[str, Any]:
    return {"operation_id": 0, "status": "completed"}


@route("GET", "/")
def _version(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    # the client's own version: it warns when a server's differs
    return {"title": "qdrant - vector search engine", "version": "1.20.0"}


@route("GET", "/collections")
def _collections(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    return db.get_collections()


@route("GET", "/collections/{c}/exists")
def _exists(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    return {"exists": db.collection_exists(p["c"])}


@route("PUT", "/collections/{c}")
def _create(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    if db.collection_exists(p["c"]):
        raise Conflict(f"Collection `{p['c']}` already exists!")
    req = models.CreateCollection.model_validate(body)
    return db.create_collection(p["c"], vectors_config=req.vectors,
                                sparse_vectors_config=req.sparse_vectors, metadata=req.metadata)


@route("GET", "/collections/{c}")
def _info(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    return db.get_collection(p["c"])


@route("PATCH", "/collections/{c}")
def _patch(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    return db.update_collection(p["c"], metadata=models.UpdateCollection.model_validate(body)
                                .metadata)


@route("DELETE", "/collections/{c}")
def _delete_collection(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    return db.delete_collection(p["c"])


@route("PUT", "/collections/{c}/index")
def _index(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    models.CreateFieldIndex.model_validate(body)  # local mode scans; the request is what counts
    return _update()


@route("PUT", "/collections/{c}/points")
def _upsert(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    db.upsert(p["c"], points=models.PointsList.model_validate(body).points)
    return _update()


@route("POST", "/collections/{c}/points/payload")
def _set_payload(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    req = models.SetPayload.model_validate(body)
    db.set_payload(p["c"], payload=req.payload, points=req.points or req.filter)
    return _update()


@route("POST", "/collections/{c}/points/delete")
def _delete(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    selector = (models.FilterSelector.model_validate(body) if "filter" in body
                else models.PointIdsList.model_validate(body))
    db.delete(p["c"], points_selector=selector)
    return _update()


@route("POST", "/collections/{c}/points/scroll")
def _scroll(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    req = models.ScrollRequest.model_validate(body)
    points, nxt = db.scroll(p["c"], scroll_filter=req.filter, limit=req.limit or 10,
                            offset=req.offset, with_payload=req.with_payload,
                            with_vectors=req.with_vector or False)
    return {"points": points, "next_page_offset": nxt}


@route("POST", "/collections/{c}/points/count")
def _count(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    req = models.CountRequest.model_validate(body)
    return db.count(p["c"], count_filter=req.filter, exact=req.exact is not False)


@route("POST", "/collections/{c}/points")
def _retrieve(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    req = models.PointRequest.model_validate(body)
    return db.retrieve(p["c"], req.ids, with_payload=req.with_payload,
                       with_vectors=req.with_vector or False)


@route("POST", "/collections/{c}/points/query")
def _query(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    req = models.QueryRequest.model_validate(body)
    return db.query_points(p["c"], query=req.query, using=req.using, prefetch=req.prefetch,
                           query_filter=req.filter, search_params=req.params,
                           limit=req.limit or 10, with_payload=req.with_payload,
                           with_vectors=req.with_vector or False)


@route("POST", "/collections/aliases")
def _change_aliases(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    req = models.ChangeAliasesOperation.model_validate(body)
    return db.update_collection_aliases(change_aliases_operations=req.actions)


@route("GET", "/aliases")
def _aliases(db: QdrantClient, p: dict[str, str], body: Any) -> Any:
    return db.get_aliases()


class Conflict(Exception):
    """A 409, as the server answers creating a collection that exists."""


def _json(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


class QdrantRestServer:
    """``with QdrantRestServer() as server: QdrantClient(url=server.url)``; ``server.requests``
    holds (method, path, JSON body) of each request."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.db = QdrantClient(":memory:")
        self.requests: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                path = self.path.split("?", 1)[0]
                size = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(size) or b"null")
                with server.lock:  # local mode is not thread-safe
                    server.requests.append((self.command, path, body))
                    status, result = server.dispatch(self.command, path, body)
                if status != 200:
                    result = {"status": {"error": result}}
                elif path != "/":  # the version answer is bare, the others in an envelope
                    result = {"result": result, "status": "ok", "time": 0.0}
                payload = json.dumps(result, default=_json).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _serve

        return Handler

    def dispatch(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        for verb, pattern, fn in ROUTES:
            match = pattern.match(path)
            if verb == method and match:
                try:
                    return 200, fn(self.db, match.groupdict(), body)
                except Conflict as exc:
                    return 409, str(exc)
                except (ValueError, KeyError) as exc:
                    return 400, f"{type(exc).__name__}: {exc}"
        return 404, f"{method} {path}: not found"

    def __enter__(self) -> QdrantRestServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.db.close()
