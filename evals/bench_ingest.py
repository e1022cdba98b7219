"""Benchmark ingestion throughput, search latency and peak memory on the embedded store.

Run: ``.venv/bin/python -m vistarag.evals.bench_ingest [--data DIR] [--points 1000 20000]``
(``--data`` defaults to ``../shared/data``.)

1. Search: synthetic points (random unit vectors of the collection's dense dimensions, the
   sparse lexical vector computed from the payload text as ingestion does, realistic payloads:
   chunk text, modality mix, pages, boxes, blobs) are upserted straight through
   ``KnowledgeBase.upsert`` into a temporary data dir, growing it to each ``--points`` size.
   At each size: p50/p95 of the full ``Engine.search`` (encode + RRF retrieval + hybrid rerank)
   on text queries, of ``kb.search`` with the engine's precomputed query vectors and owner
   filter (the store's share of that), and of a plain dense ``kb.search`` without filter.
2. Ingest: the real files under ``--data`` (``pdfs/``, ``images/``, ``screenshots/``) into
   another temporary data dir, one file at a time, with the real models (MiniLM, RapidOCR;
   text-bridge mode unless ``VISTARAG_JOINT_MODEL`` names a joint model). Models are loaded and
   warmed up first, so throughput excludes load time (reported separately): pages/s for PDFs,
   images/s for images and screenshots.
3. Peak memory: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after each phase (search runs
   first because the peak only grows).

Nothing is written outside the temporary directories; the repository and ``~/.vistarag`` are
never touched.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a benchmark must never wait on a download
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from vistarag.agent.engine import Engine  # noqa: E402
from vistarag.agent.index import PointRecord, QueryVectors, SearchFilters, point_id  # noqa: E402
from vistarag.agent.ingest.discover import kind_of  # noqa: E402
from vistarag.agent.qdrant import close_all  # noqa: E402
from vistarag.agent.settings import Settings  # noqa: E402
from vistarag.agent.sparse import LEXICAL_VECTOR, document_vector  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA_CANDIDATES = (Path("../shared/data"), REPO.parent / "shared" / "data")
GROUPS = ("pdfs", "images", "screenshots")

_VOCABULARY = (
    "invoice warehouse shipment pallet forklift inspection brakes tyres refrigeration tachograph "
    "revenue quarter margin forecast budget contract warranty supplier customer delivery route "
    "driver schedule maintenance compliance audit safety incident report policy network proxy "
    "server certificate firewall password account login error code timeout database backup "
    "restore cluster node memory storage latency throughput figure table chart diagram page "
    "section summary appendix the of and to in for with on by from at is are was were be this "
    "that which as an a it its their all each every new quarterly annual monthly daily"
)
WORDS = _VOCABULARY.split()
QUERIES = (
    "certificate expired error code",
    "quarterly revenue forecast",
    "tyres and brakes inspection checklist",
    "database backup restore procedure",
    "warehouse pallet delivery schedule",
    "firewall proxy server settings",
    "warranty terms in the supplier contract",
    "incident report safety audit",
    "figure showing monthly throughput",
    "login timeout on the cluster node",
)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / (1024 if sys.platform == "darwin" else 1)


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds (nearest-rank)."""
    ordered = sorted(samples_s)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return p50 * 1e3, p95 * 1e3


def bench_settings(home: Path) -> Settings:
    """Settings from the environment in a temp data dir; text-bridge unless a joint model is set."""
    overrides: dict[str, object] = {
        "home": home,
        "qdrant_url": None,
        "qdrant_path": None,
        "kb": "bench",
        "owner": "local",
    }
    if not os.environ.get("VISTARAG_JOINT_MODEL"):
        overrides["joint_model"] = "none"
    return Settings(_env_file=None).model_copy(update=overrides)


def find_data(arg: Path | None) -> Path:
    for candidate in [arg] if arg else list(DATA_CANDIDATES):
        if candidate and candidate.is_dir():
            return candidate.resolve()
    raise SystemExit(
        f"data dir not found (tried {arg or ', '.join(map(str, DATA_CANDIDATES))}); "
        "pass --data DIR holding pdfs/, images/ and screenshots/"
    )


# ---- 1. ingest ---------------------------------------------------------------------------------


def warm_up(engine: Engine) -> float:
    """Load and exercise every model once so ingest timings exclude loading."""
    from PIL import Image, ImageDraw

    started = time.perf_counter()
    models = engine.models
    models.text_encoder.encode_document(["warm up"])
    probe = Image.new("RGB", (320, 80), "white")
    ImageDraw.Draw(probe).text((10, 30), "warm up 123", fill="black")
    models.ocr.read(probe)
    if models.joint is not None:
        models.joint.encode_document([probe])
    return time.perf_counter() - started


def bench_ingest(data: Path, home: Path) -> dict[str, dict[str, float]]:
    engine = Engine(bench_settings(home))
    load_s = warm_up(engine)
    mode = "joint " + str(engine.models.joint.name) if engine.models.joint else "text-bridge"
    print(
        f"models: text={engine.settings.text_model} joint={mode} "
        f"(load + warm-up {load_s:.1f} s, not counted below)"
    )
    ingestor = engine.ingestor()
    rows: dict[str, dict[str, float]] = {}
    for group in GROUPS:
        folder = data / group
        files = (
            sorted(p for p in folder.glob("*") if p.is_file() and kind_of(p) in ("pdf", "image"))
            if folder.is_dir()
            else []
        )
        if not files:
            continue
        row = {"files": 0, "pages": 0, "images": 0, "points": 0, "errors": 0, "seconds": 0.0}
        for path in files:
            started = time.perf_counter()
            result = ingestor.ingest_file(path)
            row["seconds"] += time.perf_counter() - started
            row["files"] += 1
            row["points"] += result.points
            row["pages"] += result.pages
            row["images"] += 1 if kind_of(path) == "image" else result.images
            if result.status == "error":
                row["errors"] += 1
                print(f"  error {path.name}: {result.message}")
        rows[group] = row
    total = engine.kb().count()
    print(
        f"\n{'ingest':<12}{'files':>6}{'pages':>7}{'images':>7}{'points':>8}{'errors':>7}"
        f"{'seconds':>9}  throughput"
    )
    for group, r in rows.items():
        if group == "pdfs":
            rate = (
                f"{r['pages'] / r['seconds']:.2f} pages/s ({r['files'] / r['seconds']:.2f} files/s)"
            )
        else:
            rate = f"{r['files'] / r['seconds']:.2f} images/s"
        print(
            f"{group:<12}{r['files']:>6}{r['pages']:>7}{r['images']:>7}{r['points']:>8}"
            f"{r['errors']:>7}{r['seconds']:>9.1f}  {rate}"
        )
    print(
        f"{'total':<12}{sum(r['files'] for r in rows.values()):>6}"
        f"{'':>14}{total:>8}{'':>7}{sum(r['seconds'] for r in rows.values()):>9.1f}"
    )
    print(f"peak RSS after ingest: {peak_rss_mib():.0f} MiB")
    return rows


# ---- 2. search ---------------------------------------------------------------------------------


def random_units(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def synthetic_points(
    rng: np.random.Generator,
    start: int,
    n: int,
    text_dim: int,
    joint_dim: int,
    owner: str,
    lexical: bool = True,
) -> list[PointRecord]:
    """Points shaped like the pipeline's: ~70% text chunks, 15% page renders, 15% figures.

    Dense vectors are random unit vectors; the sparse lexical vector (when the collection has
    one) is computed from the payload text exactly as ingestion does, since it is cheap.
    """
    pyr = random.Random(int(rng.integers(1 << 31)))
    text_vecs = random_units(rng, n, text_dim)
    joint_vecs = random_units(rng, n, joint_dim) if joint_dim else None
    points = []
    for k in range(n):
        i = start + k
        doc = i // 40  # 40 points per document
        page = (i % 40) // 4 + 1
        roll = pyr.random()
        modality = "text" if roll < 0.7 else ("page" if roll < 0.85 else "image")
        length = pyr.randint(40, 140) if modality != "image" else pyr.randint(6, 16)
        text = " ".join(pyr.choice(WORDS) for _ in range(length))
        content_hash = f"{doc:064x}"
        x0, y0 = pyr.uniform(36, 300), pyr.uniform(36, 600)
        bbox = (
            [0.0, 0.0, 595.0, 842.0]
            if modality == "page"
            else [round(x0, 1), round(y0, 1), round(x0 + 200, 1), round(y0 + 120, 1)]
        )
        vectors = {"text": text_vecs[k].tolist()}
        if joint_vecs is not None and modality != "text":
            vectors["joint"] = joint_vecs[k].tolist()
        sparse = document_vector(text) if lexical else None
        if sparse is not None:
            vectors[LEXICAL_VECTOR] = sparse
        payload = {
            "doc_id": f"dsynth{doc:010d}",
            "source": f"/data/synthetic/doc-{doc:05d}.pdf",
            "modality": modality,
            "page": page,
            "bbox": bbox,
            "t_start": None,
            "t_end": None,
            "text": text,
            "blob": f"{(doc * 7919 + page):064x}.webp",
            "content_hash": content_hash,
            "owner": owner,
            "kind": "pdf",
            "unit": f"p{page}-{modality}{i % 4}",
            "title": f"doc-{doc:05d}.pdf",
        }
        points.append(
            PointRecord(point_id(payload["doc_id"], content_hash, f"u{i}"), vectors, payload)
        )
    return points


def timed(fn: Callable[[Any], object], inputs: Sequence[Any], repeats: int) -> list[float]:
    """Wall time of ``fn(x)`` for ``repeats`` inputs cycled from ``inputs``."""
    samples = []
    for i in range(repeats):
        arg = inputs[i % len(inputs)]
        started = time.perf_counter()
        fn(arg)
        samples.append(time.perf_counter() - started)
    return samples


def bench_search(sizes: list[int], home: Path, queries: int, seed: int) -> None:
    engine = Engine(bench_settings(home))
    kb = engine.kb()
    record = engine.models.record()
    kb.ensure(record, owner=engine.settings.owner)
    text_dim, joint_dim = int(record["text_dim"]), int(record["joint_dim"] or 0)
    lexical = LEXICAL_VECTOR in kb.vector_names()
    rng = np.random.default_rng(seed)
    owner = engine.settings.owner
    query_texts = [QUERIES[i % len(QUERIES)] for i in range(queries)]
    encoded = [engine.encode(q).vectors for q in QUERIES]  # real query vectors (MiniLM + BM25)
    dense_only = [QueryVectors(text=v.text, joint=v.joint) for v in encoded]
    spaces = "+".join(k for k, v in vars(encoded[0]).items() if v)
    print(
        f"\nsearch over synthetic points (text dim {text_dim}, joint dim {joint_dim or '-'}, "
        f"lexical {'yes' if lexical else 'no'}; top_n={engine.settings.top_n}, "
        f"top_k={engine.settings.top_k}, reranker={engine.settings.reranker}; "
        f"{queries} queries each after 3 warm-up)"
    )
    print(
        "  Engine.search = encode + retrieve (RRF over the query's prefetches, owner filter) + "
        "rerank\n"
        f"  kb.search/eng = kb.search with the engine's precomputed query ({spaces}, owner filter)"
        "\n  kb.search/raw = kb.search with the dense text vector only, no filter"
    )
    print(
        f"{'points':>8}{'upsert s':>10}  {'Engine.search p50/p95 ms':>26}  "
        f"{'kb.search/eng p50/p95 ms':>26}  {'kb.search/raw p50/p95 ms':>26}  {'peak RSS':>9}"
    )
    owner_filter = SearchFilters(owner=owner)
    limit = engine.settings.top_n

    def full(text: object) -> object:
        return engine.find(str(text))

    def store(vectors: QueryVectors) -> object:
        return kb.search(vectors, limit=limit, filters=owner_filter, prefetch_limit=limit)

    def raw(vectors: QueryVectors) -> object:
        return kb.search(vectors, limit=limit)

    stored, gen_s, upsert_s = 0, 0.0, 0.0
    for size in sorted(set(sizes)):
        while stored < size:
            n = min(2000, size - stored)
            started = time.perf_counter()
            batch = synthetic_points(rng, stored, n, text_dim, joint_dim, owner, lexical)
            gen_s += time.perf_counter() - started
            started = time.perf_counter()
            kb.upsert(batch)
            upsert_s += time.perf_counter() - started
            stored += n
        assert kb.count() == size, (kb.count(), size)
        for q in QUERIES[:3]:  # warm-up
            full(q)
            raw(dense_only[0])
        figures = [
            timed(full, query_texts, queries),
            timed(store, encoded, queries),
            timed(raw, dense_only, queries),
        ]
        cols = ["{:.1f} / {:.1f}".format(*percentiles(s)) for s in figures]
        print(
            f"{size:>8}{upsert_s:>10.1f}  {cols[0]:>26}  {cols[1]:>26}  {cols[2]:>26}  "
            f"{peak_rss_mib():>5.0f} MiB"
        )
    print(
        f"(upsert s: cumulative time in KnowledgeBase.upsert; generating the synthetic points "
        f"took another {gen_s:.1f} s)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder with pdfs/, images/, screenshots/ (default ../shared/data)",
    )
    parser.add_argument(
        "--points",
        type=int,
        nargs="+",
        default=[1000, 20000],
        help="store sizes for the search latency figures",
    )
    parser.add_argument("--queries", type=int, default=40, help="timed queries per measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-ingest", action="store_true", help="only the search benchmark")
    args = parser.parse_args(argv)

    data = None if args.skip_ingest else find_data(args.data)  # fail early if missing
    started = time.perf_counter()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"torch threads {__import__('torch').get_num_threads()}"
    )
    with tempfile.TemporaryDirectory(prefix="vistarag-bench-") as tmp:
        os.environ["VISTARAG_HOME"] = tmp  # anything reading the environment stays in tmp
        try:
            # search first: ru_maxrss only grows, so its column shows the search phase alone
            bench_search(args.points, Path(tmp) / "search", args.queries, args.seed)
            if data is not None:
                print(f"\ndata: {data}")
                bench_ingest(data, Path(tmp) / "ingest")
        finally:
            close_all()
    print(
        f"\npeak RSS (ru_maxrss): {peak_rss_mib():.0f} MiB; "
        f"total {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
