"""Scale benchmark of the index backends on synthetic points of the real shape.

Run: ``.venv/bin/python -m vistarag.evals.bench_scale [--points 20000 100000] [--queries 200]
[--keep DIR] [--filings-home DIR]`` (``--points 500000`` takes about 40 min here, most of it
the HNSW build; ``--keep DIR`` keeps the data dir and re-measures it on a later run without
rebuilding).

Points: a 384-d ``text`` vector, a 512-d ``joint`` vector on a third of them, a lexical sparse
vector of about 40 terms and the payload ingest writes, clustered like real embeddings (cluster
centres plus noise), generated and upserted in chunks so memory stays flat. For each size and
backend (Qdrant Edge, the default; qdrant-client's local mode, the previous default, up to
``--local-max`` points) it prints: upsert points/s, disk size, a fresh process's open + first
query and its RSS (all, and anonymous: the file-mapped rest is the page cache's) and its first
queries' p50/p95, all on an empty page cache (the index's files evicted first, as after a
reboot: this VM also reclaims page cache idle for about a minute); in-process query p50/p95
once the index is read into the page cache, as the chat does at start (fused text + joint +
lexical, owner-filtered, as the app searches); and top-10 overlap with an exact search. On Edge
from ``HNSW_MIN_POINTS`` points, HNSW is built as ``vistarag ingest`` builds it, in the
background, while this process keeps searching (a query every 0.1 s) and ingesting (100 points
every 2 s): the longest query (with the build's stage then) and upsert during the build are the
stall a user would feel. A fresh ``vistarag search`` (the real CLI: imports, the text
model, the index) is timed on the built data dir, as on ``--filings-home`` (a data dir built by
``bench_filings --home``): once on an empty page cache, then the median of three more.
"""

from __future__ import annotations

import argparse
import contextlib
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
from vistarag.agent.index.prefetch import evict  # noqa: E402
from vistarag.agent.models import TEXT_BRIDGE  # noqa: E402
from vistarag.agent.settings import Settings  # noqa: E402

KB = "bench"
OWNER = "alice"
# the models the CLI runs in text-bridge mode (so `vistarag search` opens it); a joint space too
RECORD = {"text_model": Settings.model_fields["text_model"].default, "text_dim": 384,
          "joint_model": TEXT_BRIDGE, "joint_dim": 512}
CHUNK = 10_000
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
status = dict(l.split(":", 1) for l in open("/proc/self/status"))
rss, anon = (int(status[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon"))
from vistarag.evals.bench_scale import latencies, queries
p50, p95 = latencies(kb, queries(int(sys.argv[4])))
print(f"{took:.3f} {rss:.0f} {anon:.0f} {p50:.1f} {p95:.1f} {len(hits)}")
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


def synthetic(n: int, start: int = 0, seed: int = 0) -> list[PointRecord]:
    """Points ``start`` .. ``start + n`` of the real shape, clustered; ids and payloads as
    ingest writes them. The same ``start`` always gives the same points."""
    ct, cj = _centres()
    rng = np.random.default_rng([seed, start])
    cluster = rng.integers(0, CLUSTERS, size=n)
    text = _unit(ct[cluster] + 0.6 * rng.normal(size=(n, 384)))
    zipf = np.minimum(rng.zipf(1.3, size=(n, 40)), VOCAB)
    points = []
    for row, i in enumerate(range(start, start + n)):
        doc = f"doc{i // 400:05d}"
        terms, counts = np.unique(zipf[row] + 97 * cluster[row], return_counts=True)
        vectors: dict[str, Any] = {
            "text": text[row],
            "lexical": SparseVector(indices=terms.tolist(),
                                           values=(counts / (counts + 1.2)).tolist()),
        }
        if i % 3 == 0:
            joint = cj[cluster[row]] + 0.6 * rng.normal(size=512)
            vectors["joint"] = (joint / np.linalg.norm(joint)).astype(np.float32)
        page = i % 400 // 4 + 1
        citation = {"doc_id": doc, "source": f"/data/{doc}.pdf", "modality": ["text", "image",
                    "page", "text"][i % 4], "page": page, "bbox": [72.0, 90.5, 540.0, 180.25],
                    "t_start": None, "t_end": None, "blob": None if i % 4 != 2 else f"{i:064x}"}
        payload = {
            **citation, "text": f"chunk {i} of {doc} " + "lorem ipsum dolor " * 18,
            "content_hash": f"{i // 400:064x}", "owner": OWNER if i % 10 else "bob",
            "kind": "pdf", "unit": f"p{page}-t{i % 4}",
            "doc": {"company": "ACME", "form": "10-K", "fiscal_year": 2020 + i % 5},
            "metadata": citation,
        }
        points.append(PointRecord(point_id(doc, payload["content_hash"], str(i)), vectors,
                                  payload))
    return points


def _centres() -> tuple[np.ndarray, np.ndarray]:
    centres = np.random.default_rng(0)
    return centres.normal(size=(CLUSTERS, 384)), centres.normal(size=(CLUSTERS, 512))


def chunks(n: int, start: int = 0) -> Any:
    for at in range(start, start + n, CHUNK):
        yield synthetic(min(CHUNK, start + n - at), at)


def queries(count: int, seed: int = 1) -> list[QueryVectors]:
    """Queries near the corpus's clusters: text + lexical, joint on a third (as the app asks)."""
    ct, cj = _centres()
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


def fresh_probe(kind: str, folder: Path, home: Path, count: int) -> dict[str, float]:
    """A new Python process on an empty page cache: import, open, first query (seconds from
    its first line, RSS MiB, anonymous MiB), then its first ``count`` queries, nothing warmed
    (p50/p95 ms)."""
    evict(folder)  # as after a reboot; this VM also reclaims page cache idle for about 60 s
    out = subprocess.run([sys.executable, "-c", PROBE, kind, str(folder), str(home), str(count)],
                         capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    took, rss, anon, p50, p95, _ = out.stdout.split()
    return {"fresh_s": float(took), "rss_mib": float(rss),
            "anon_mib": float(anon), "cold_p50": float(p50), "cold_p95": float(p95)}


def fill(kb: KnowledgeBase, n: int) -> float:
    """Upsert ``n`` synthetic points chunk by chunk; returns the seconds spent upserting."""
    spent = 0.0
    for part in chunks(n):
        started = time.perf_counter()
        kb.upsert(part, batch=256)
        spent += time.perf_counter() - started
    return spent


def build_while_serving(backend: EdgeBackend, kb: KnowledgeBase, n: int) -> dict[str, Any]:
    """Build HNSW in the background as ingest does, searching every 0.1 s and upserting 100
    points every 2 s meanwhile; the longest of each is the stall a user would feel."""
    qs = queries(20, seed=7)
    owner = SearchFilters(owner=OWNER)
    started = time.perf_counter()
    kb.optimize(HNSW_MIN_POINTS, wait=False)
    build = backend._builds[kb.physical()]
    q_lat, u_lat, added, i = [], [], 0, 0
    slowest = ("", 0.0)  # the build's state when the longest query ran
    while build.running:
        state, t0 = build.state, time.perf_counter()
        kb.search(qs[i % len(qs)], 10, owner)
        q_lat.append(time.perf_counter() - t0)
        if q_lat[-1] > slowest[1]:
            slowest = (f"{state}/{build.state}" if build.state != state else state, q_lat[-1])
        if i % 20 == 19:
            part = synthetic(100, n + added, seed=5)
            t0 = time.perf_counter()
            kb.upsert(part)
            u_lat.append(time.perf_counter() - t0)
            added += len(part)
        i += 1
        time.sleep(0.1)
    if build.state != "done":
        raise SystemExit(f"HNSW build {build.state}: {build.error}")
    return {"build_s": time.perf_counter() - started, "queries_during": len(q_lat),
            "max_query_s": max(q_lat, default=0.0), "max_upsert_s": max(u_lat, default=0.0),
            "p50_query_s": statistics.median(q_lat) if q_lat else 0.0,
            "slowest_during": slowest[0], "swap": build.timings,
            "added_during": added}


def latencies(kb: KnowledgeBase, qs: list[QueryVectors]) -> tuple[float, float]:
    """p50 and p95 in ms of ``qs``, searched as the app searches (owner-filtered, fused)."""
    owner = SearchFilters(owner=OWNER)
    lat = []
    for q in qs:
        t0 = time.perf_counter()
        kb.search(q, 10, owner)
        lat.append(1000 * (time.perf_counter() - t0))
    lat.sort()
    return statistics.median(lat), lat[int(0.95 * (len(lat) - 1))]


def measure(kb: KnowledgeBase, qs: list[QueryVectors], row: dict[str, Any]) -> None:
    """In this process, once its index is read into the page cache (as the chat does)."""
    owner = SearchFilters(owner=OWNER)
    kb.warm_up(wait=True)
    row["p50"], row["p95"] = latencies(kb, qs)
    overlap = []
    for q in qs[:50]:
        dense = QueryVectors(text=q.text)
        got = {h.id for h in kb.search(dense, 10, owner)}
        want = {h.id for h in kb.search(dense, 10, owner, exact=True)}
        overlap.append(len(got & want) / max(1, len(want)))
    row["overlap"] = float(np.mean(overlap))


def run(kind: str, n: int, qs: list[QueryVectors], home: Path) -> dict[str, Any]:
    """Fill (unless ``home`` holds this size already), build, measure; then a fresh process."""
    settings = Settings(home=home, _env_file=None)
    folder = settings.qdrant_dir / "edge" if kind == "edge" else home / "local"
    row: dict[str, Any] = {"kind": kind, "n": n}
    reuse = (home / f"filled-{kind}-{n}").exists()
    backend = open_backend(kind, str(folder))
    kb = KnowledgeBase(settings, KB, backend)
    if not reuse:
        kb.ensure(RECORD, owner=OWNER)
        row["upsert_pps"] = n / fill(kb, n)
        if kind == "edge":
            backend.flush()
            if n >= HNSW_MIN_POINTS:
                row.update(build_while_serving(backend, kb, n))
        (home / f"filled-{kind}-{n}").touch()
    measure(kb, qs, row)
    backend.close()
    row["disk_mib"] = disk_mib(folder)
    row.update(fresh_probe(kind, folder, home, len(qs)))
    if kind == "edge":
        row["cli_cold_s"], row["cli_s"] = cli_search(home, "quarterly revenue by segment", KB,
                                                     OWNER)
    return row


def cli_search(home: Path, query: str, kb: str, owner: str | None = None) -> tuple[float, float]:
    """Fresh ``vistarag search`` processes: the first on an empty page cache (its index's
    files evicted), then the median of 3 more (each finds what the last one read cached)."""
    evict(home)
    cli = Path(sys.executable).with_name("vistarag")
    env = {**os.environ, "VISTARAG_HOME": str(home), "VISTARAG_JOINT_MODEL": "none"}
    if owner:
        env["VISTARAG_OWNER"] = owner
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        out = subprocess.run([str(cli), "search", query, "--kb", kb, "-k", "5"], env=env,
                             capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - t0)
        if out.returncode != 0 or "No hits" in out.stdout or "│ 1 │" not in out.stdout:
            raise SystemExit(f"vistarag search failed: {out.stdout[-800:]} {out.stderr[-800:]}")
    return times[0], statistics.median(times[1:])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, nargs="+", default=[20_000, 100_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--local-max", type=int, default=20_000,
                    help="largest size run on qdrant-client local mode (it is slow)")
    ap.add_argument("--local-queries", type=int, default=20)
    ap.add_argument("--keep", type=Path, default=None,
                    help="build the data dirs here and keep them; a later run re-measures them")
    ap.add_argument("--filings-home", type=Path, default=None)
    args = ap.parse_args(argv)
    print("fresh s/RSS/anon: a new process on an empty page cache, open + first query; cold: "
          "its first queries (p50/p95 ms); p50/p95: in-process once warmed (as the chat); CLI: "
          "`vistarag search` on an empty page cache, then warm (median of 3)")
    print(f"{'backend':<7} {'points':>8} {'upsert/s':>9} {'disk MiB':>9} {'fresh s':>8} "
          f"{'RSS MiB':>8} {'anon MiB':>8} {'cold ms':>11} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'top10':>6} {'CLI s':>11}", flush=True)
    builds = []
    for n in args.points:
        for kind in ("edge", "local"):
            if kind == "local" and n > args.local_max:
                print(f"{kind:<7} {n:>8}  skipped (above --local-max {args.local_max})")
                continue
            qs = queries(args.queries if kind == "edge" else args.local_queries)
            with contextlib.ExitStack() as stack:
                root = (args.keep if args.keep else Path(stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="vistarag-scale-"))))
                r = run(kind, n, qs, root / f"{kind}-{n}")
            upsert = f"{r['upsert_pps']:.0f}" if "upsert_pps" in r else "kept"
            cli = f"{r['cli_cold_s']:.2f} / {r['cli_s']:.2f}" if "cli_s" in r else "-"
            cold = f"{r['cold_p50']:.0f} / {r['cold_p95']:.0f}"
            print(f"{kind:<7} {n:>8} {upsert:>9} {r['disk_mib']:>9.0f} {r['fresh_s']:>8.2f} "
                  f"{r['rss_mib']:>8.0f} {r['anon_mib']:>8.0f} {cold:>11} {r['p50']:>7.1f} "
                  f"{r['p95']:>7.1f} {r['overlap']:>6.2f} {cli:>11}", flush=True)
            if "build_s" in r:
                builds.append(r)
    for r in builds:
        print(f"HNSW build at {r['n']:,} points: {r['build_s']:.0f} s in the background; "
              f"meanwhile {r['queries_during']} searches (median {1000 * r['p50_query_s']:.0f} ms, "
              f"longest {1000 * r['max_query_s']:.0f} ms, while {r['slowest_during']}) and "
              f"{r['added_during']} points upserted (longest batch "
              f"{1000 * r['max_upsert_s']:.0f} ms), all served by the built index after; "
              "swap steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in r["swap"].items()))
    if args.filings_home:
        cold, warm = cli_search(args.filings_home, "What was total revenue?", "filings")
        print(f"filings: fresh `vistarag search` {cold:.2f} s on an empty page cache, "
              f"{warm:.2f} s warm (median of 3)")


if __name__ == "__main__":
    main()
