"""Scale benchmark of the index backends on synthetic points of the real shape.

Run: ``.venv/bin/python -m vistarag.evals.bench_scale [--points 20000 100000] [--queries 200]
[--filings-home DIR]``

Points: a 384-d ``text`` vector, a 512-d ``joint`` vector on a third of them, a lexical sparse
vector of about 40 terms and the payload ingest writes, clustered like real embeddings (cluster
centres plus noise). For each size and backend (Qdrant Edge, the default; qdrant-client's local
mode, the previous default, up to ``--local-max`` points) it prints: upsert points/s, the HNSW
build (Edge, from ``HNSW_MIN_POINTS`` points, as ``vistarag ingest`` does), disk size, a fresh
process's open + first query and its RSS, in-process query p50/p95 (fused text + joint + lexical,
owner-filtered, as the app searches), and top-10 overlap with an exact search. With
``--filings-home`` (a data dir built by ``bench_filings --home``), a fresh ``vistarag search``
on it is timed too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from vistarag.agent.index import (  # noqa: E402
    HNSW_MIN_POINTS,
    KnowledgeBase,
    PointRecord,
    QueryVectors,
    SearchFilters,
    point_id,
)
from vistarag.agent.index.edge import EdgeBackend  # noqa: E402
from vistarag.agent.index.filters import SparseVector  # noqa: E402
from vistarag.agent.settings import Settings  # noqa: E402

RECORD = {"text_model": "bench-text", "text_dim": 384, "joint_model": "bench-joint",
          "joint_dim": 512}
VOCAB = 30_000
CLUSTERS = 200
PROBE = """
import sys, time, warnings
t0 = time.perf_counter()
from pathlib import Path
import numpy as np
from vistarag.agent.index import KnowledgeBase, QueryVectors, SearchFilters
from vistarag.agent.settings import Settings
if sys.argv[1] == "edge":
    from vistarag.agent.index.edge import EdgeBackend
    backend = EdgeBackend(Path(sys.argv[2]))
else:
    from qdrant_client import QdrantClient
    from vistarag.agent.index.server import ServerBackend
    warnings.simplefilter("ignore")
    backend = ServerBackend(QdrantClient(path=sys.argv[2]))
kb = KnowledgeBase(Settings(home=sys.argv[3], _env_file=None), "bench", backend)
q = np.random.default_rng(1).normal(size=384).astype(np.float32)
hits = kb.search(QueryVectors(text=[q / np.linalg.norm(q)]), 10, SearchFilters(owner="alice"))
took = time.perf_counter() - t0
rss = [l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1]
print(f"{took:.3f} {int(rss) / 1024:.0f} {len(hits)}")
"""


def open_backend(kind: str, folder: str) -> Any:
    if kind == "edge":
        return EdgeBackend(Path(folder))
    from qdrant_client import QdrantClient

    from vistarag.agent.index.server import ServerBackend

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ServerBackend(QdrantClient(path=folder))


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def synthetic(n: int, seed: int = 0) -> list[PointRecord]:
    """``n`` points of the real shape, clustered; ids and payloads as ingest writes them."""
    rng = np.random.default_rng(seed)
    ct, cj = rng.normal(size=(CLUSTERS, 384)), rng.normal(size=(CLUSTERS, 512))
    cluster = rng.integers(0, CLUSTERS, size=n)
    text = _unit(ct[cluster] + 0.6 * rng.normal(size=(n, 384)))
    zipf = np.minimum(rng.zipf(1.3, size=(n, 40)), VOCAB)
    points = []
    for i in range(n):
        doc = f"doc{i // 400:05d}"
        terms, counts = np.unique(zipf[i] + 97 * cluster[i], return_counts=True)
        vectors: dict[str, Any] = {
            "text": text[i].tolist(),
            "lexical": SparseVector(indices=terms.tolist(),
                                           values=(counts / (counts + 1.2)).tolist()),
        }
        if i % 3 == 0:
            joint = cj[cluster[i]] + 0.6 * rng.normal(size=512)
            vectors["joint"] = (joint / np.linalg.norm(joint)).tolist()
        page = i % 400 // 4 + 1
        citation = {"doc_id": doc, "source": f"/data/{doc}.pdf", "modality": ["text", "image",
                    "page", "text"][i % 4], "page": page, "bbox": [72.0, 90.5, 540.0, 180.25],
                    "t_start": None, "t_end": None, "blob": None if i % 4 != 2 else f"{i:064x}"}
        payload = {
            **citation, "text": f"chunk {i} of {doc} " + "lorem ipsum dolor " * 18,
            "content_hash": f"{i // 400:064x}", "owner": "alice" if i % 10 else "bob",
            "kind": "pdf", "unit": f"p{page}-t{i % 4}",
            "doc": {"company": "ACME", "form": "10-K", "fiscal_year": 2020 + i % 5},
            "metadata": citation,
        }
        points.append(PointRecord(point_id(doc, payload["content_hash"], str(i)), vectors,
                                  payload))
    return points


def queries(count: int, seed: int = 1) -> list[QueryVectors]:
    """Queries near the corpus's clusters: text + lexical, joint on a third (as the app asks)."""
    centres = np.random.default_rng(0)  # the same centres as ``synthetic``
    ct, cj = centres.normal(size=(CLUSTERS, 384)), centres.normal(size=(CLUSTERS, 512))
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        c = int(rng.integers(0, CLUSTERS))
        terms = np.unique(np.minimum(rng.zipf(1.3, size=4), VOCAB) + 97 * c)
        q = QueryVectors(
            text=[_unit((ct[c] + 0.6 * rng.normal(size=384))[None])[0]],
            lexical=[SparseVector(indices=terms.tolist(), values=[1.0] * len(terms))],
        )
        if i % 3 == 0:
            q.joint = [_unit((cj[c] + 0.6 * rng.normal(size=512))[None])[0]]
        out.append(q)
    return out


def disk_mib(path: Path) -> float:
    """Blocks in use, as ``du`` counts them (Edge preallocates sparse files)."""
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file()) / 2**20


def fresh_probe(kind: str, folder: Path, home: Path) -> tuple[float, float]:
    """A new Python process: import, open, first query. (seconds, RSS MiB)."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE, kind, str(folder), str(home)],
                         capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    took, rss, _ = out.stdout.split()
    return time.perf_counter() - started, float(rss)


def run(kind: str, points: list[PointRecord], qs: list[QueryVectors], root: Path) -> dict:
    folder = root / kind
    home = root / "home"
    backend = open_backend(kind, str(folder))
    kb = KnowledgeBase(Settings(home=home, _env_file=None), "bench", backend)
    kb.ensure(RECORD, owner="alice")
    started = time.perf_counter()
    kb.upsert(points, batch=256)
    if kind == "edge":
        backend.flush()
    upsert_s = time.perf_counter() - started
    row: dict[str, Any] = {"kind": kind, "n": len(points), "upsert_pps": len(points) / upsert_s}
    started = time.perf_counter()
    row["hnsw"] = kb.optimize(HNSW_MIN_POINTS) if kind == "edge" else False
    row["optimize_s"] = time.perf_counter() - started
    owner = SearchFilters(owner="alice")
    lat = []
    for q in qs:
        t0 = time.perf_counter()
        kb.search(q, 10, owner)
        lat.append(1000 * (time.perf_counter() - t0))
    lat.sort()
    row["p50"], row["p95"] = statistics.median(lat), lat[int(0.95 * (len(lat) - 1))]
    overlap = []
    for q in qs[:50]:
        dense = QueryVectors(text=q.text)
        got = {h.id for h in kb.search(dense, 10, owner)}
        want = {h.id for h in kb.search(dense, 10, owner, exact=True)}
        overlap.append(len(got & want) / max(1, len(want)))
    row["overlap"] = float(np.mean(overlap))
    backend.close()
    row["disk_mib"] = disk_mib(folder)
    row["fresh_s"], row["rss_mib"] = fresh_probe(kind, folder, home)
    return row


def cli_search(home: Path, query: str, kb: str) -> float:
    cli = Path(sys.executable).with_name("vistarag")
    env = {**os.environ, "VISTARAG_HOME": str(home), "VISTARAG_JOINT_MODEL": "none"}
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([str(cli), "search", query, "--kb", kb, "-k", "5"], env=env,
                       capture_output=True, check=True, timeout=600)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, nargs="+", default=[20_000, 100_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--local-max", type=int, default=20_000,
                    help="largest size run on qdrant-client local mode (it is slow)")
    ap.add_argument("--local-queries", type=int, default=20)
    ap.add_argument("--filings-home", type=Path, default=None)
    args = ap.parse_args(argv)
    print(f"{'backend':<7} {'points':>8} {'upsert/s':>9} {'hnsw s':>7} {'disk MiB':>9} "
          f"{'fresh s':>8} {'RSS MiB':>8} {'p50 ms':>7} {'p95 ms':>7} {'top10':>6}")
    for n in args.points:
        points = synthetic(n)
        for kind in ("edge", "local"):
            if kind == "local" and n > args.local_max:
                print(f"{kind:<7} {n:>8}  skipped (above --local-max {args.local_max})")
                continue
            qs = queries(args.queries if kind == "edge" else args.local_queries)
            with tempfile.TemporaryDirectory(prefix="vistarag-scale-") as tmp:
                r = run(kind, points, qs, Path(tmp))
            hnsw = f"{r['optimize_s']:.0f}" if r["hnsw"] else "-"
            print(f"{kind:<7} {n:>8} {r['upsert_pps']:>9.0f} {hnsw:>7} {r['disk_mib']:>9.0f} "
                  f"{r['fresh_s']:>8.2f} {r['rss_mib']:>8.0f} {r['p50']:>7.1f} {r['p95']:>7.1f} "
                  f"{r['overlap']:>6.2f}", flush=True)
        del points
    if args.filings_home:
        took = cli_search(args.filings_home, "What was total revenue?", "filings")
        print(f"filings: fresh `vistarag search` {took:.2f} s (median of 3)")


if __name__ == "__main__":
    main()
