"""Benchmark retrieval quality on real SEC filings: evidence-page R@1, R@5, MRR; ingest speed.

Run: ``.venv/bin/python -m vistarag.evals.bench_filings [--data DIR] [--home DIR] [-k 10]``
(``--data`` defaults to ``../shared/data``; it must hold ``filings/`` and
``qa/filings_questions.jsonl``.)

1. Ingest: every PDF under ``filings/`` into a temporary data dir (or ``--home DIR``, kept
   afterwards so a later run with ``--reuse`` skips ingestion), after a model warm-up that is
   not counted. Prints pages, points, seconds, pages/s and peak RSS.
2. Questions: each question of ``qa/filings_questions.jsonl`` goes through ``Engine.search``
   (the same search the CLI and the graph use). A hit counts when it is from the question's
   PDF and on one of its evidence pages (1-based). R@1 / R@5: an evidence hit at rank 1 / in
   the top 5 hits; MRR: mean of 1/rank of the first evidence hit in the top ``-k`` (0 if none).
3. Start-up: wall time of fresh ``vistarag --help``, ``status`` and ``search`` processes on
   the index just built (what a user waits for at the prompt), median of three runs each.

These questions are a development set: the same behaviour is measured on filings we do not
have, so nothing in the product may be tuned to these four files.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a benchmark must never wait on a download
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from vistarag.agent.engine import Engine  # noqa: E402
from vistarag.agent.qdrant import close_all  # noqa: E402
from vistarag.agent.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA_CANDIDATES = (Path("../shared/data"), REPO.parent / "shared" / "data")


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / (1024 if sys.platform == "darwin" else 1)


def bench_settings(home: Path) -> Settings:
    overrides: dict[str, Any] = {
        "home": home, "qdrant_url": None, "qdrant_path": None, "kb": "filings", "owner": "local",
    }
    if not os.environ.get("VISTARAG_JOINT_MODEL"):
        overrides["joint_model"] = "none"
    return Settings(_env_file=None).model_copy(update=overrides)


def find_data(arg: Path | None) -> Path:
    for candidate in [arg] if arg else list(DATA_CANDIDATES):
        if candidate and (candidate / "filings").is_dir():
            return candidate.resolve()
    raise SystemExit("data dir with filings/ and qa/ not found; pass --data DIR")


def ingest(engine: Engine, folder: Path) -> dict[str, float]:
    engine.models.text_encoder.encode_document(["warm up"])  # load outside the timing
    files = sorted(folder.glob("*.pdf"))
    started = time.perf_counter()
    report = engine.ingestor().ingest_paths(files)
    seconds = time.perf_counter() - started
    for r in report.results:
        if r.status == "error":
            print(f"  error {r.path}: {r.message}")
    s = report.summary()
    stages = Counter[str]()
    for r in report.results:
        stages.update({k: v for k, v in r.stats.items() if k.endswith("_s")})
    return {
        "files": len(files), "pages": s["pages"], "points": s["points"], "seconds": seconds,
        "stages": dict(stages),
    }


def stage_line(stages: dict[str, float]) -> str:
    """Where ingestion's time went: embedding, blob writes, upserts and the rest (reading the
    PDFs: text, tables, renders, OCR)."""
    measured = ("embed_text_s", "embed_joint_s", "blobs_s", "upsert_s")
    rest = stages.get("total_s", 0.0) - sum(stages.get(k, 0.0) for k in measured)
    parts = [f"{k[:-2]} {stages[k]:.1f} s" for k in measured if stages.get(k)]
    return ", ".join([*parts, f"extract+other {rest:.1f} s"])


def startup(home: Path, question: str, runs: int = 3) -> list[tuple[str, list[float]]]:
    """Wall times of fresh CLI processes, ``runs`` each: ``vistarag --help``, ``status`` and a
    ``search`` on the index just built (warm disk, cold process: what a user waits for)."""
    exe = Path(sys.executable).with_name("vistarag")
    cli = "from vistarag.ui.cli import main; main()"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", cli]
    env = {**os.environ, "VISTARAG_HOME": str(home), "VISTARAG_KB": "filings",
           "VISTARAG_JOINT_MODEL": os.environ.get("VISTARAG_JOINT_MODEL", "none")}
    rows = []
    for label, args in (("vistarag --help", ["--help"]), ("vistarag status", ["status"]),
                        ("vistarag search", ["search", question])):
        times = []
        for _ in range(runs):
            with tempfile.TemporaryFile() as err:
                started = time.perf_counter()
                status = subprocess.call([*cmd, *args], env=env, stdout=subprocess.DEVNULL,
                                         stderr=err)
                times.append(time.perf_counter() - started)
                if status != 0:
                    err.seek(0)
                    tail = err.read().decode(errors="replace").strip()[-300:]
                    print(f"  {label} failed ({status}): {tail}")
        rows.append((label, times))
    return rows


def rank_of(hits: list[Any], pdf: str, pages: set[int]) -> int | None:
    """1-based rank of the first hit on an evidence page of ``pdf``."""
    for i, hit in enumerate(hits, 1):
        if Path(hit.source).name == pdf and hit.page in pages:
            return i
    return None


def score(engine: Engine, questions: list[dict[str, Any]], k: int, verbose: bool) -> dict:
    r1 = r5 = 0
    rr = 0.0
    latencies = []
    for q in questions:
        started = time.perf_counter()
        hits = engine.find(q["question"], k=k)
        latencies.append(time.perf_counter() - started)
        pdf = Path(q["pdf"]).name
        rank = rank_of(hits, pdf, set(q["evidence_pages"]))
        r1 += rank == 1
        r5 += rank is not None and rank <= 5
        rr += 1.0 / rank if rank else 0.0
        top = ", ".join(f"{Path(h.source).stem}:p{h.page}/{h.modality}" for h in hits[:5])
        print(f"  {q['id']:<22} rank {str(rank or '-'):>3}  want {pdf}:{q['evidence_pages']}")
        if verbose:
            print(f"      top5: {top}")
    n = len(questions) or 1
    return {
        "questions": len(questions), "R@1": r1 / n, "R@5": r5 / n, "MRR": rr / n,
        "search_ms_mean": 1000 * sum(latencies) / n,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--home", type=Path, default=None, help="data dir to build (kept)")
    ap.add_argument("--reuse", action="store_true", help="--home is already ingested: skip it")
    ap.add_argument("-k", type=int, default=10, help="hits per question for MRR")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each question's top 5")
    args = ap.parse_args(argv)
    data = find_data(args.data)
    questions = [
        json.loads(line)
        for line in (data / "qa" / "filings_questions.jsonl").read_text().splitlines()
        if line.strip()
    ]
    with tempfile.TemporaryDirectory(prefix="vistarag-filings-") as tmp:
        home = args.home or Path(tmp)
        engine = Engine(bench_settings(home))
        if not args.reuse:
            row = ingest(engine, data / "filings")
            print(
                f"ingest: {row['files']} files, {row['pages']} pages, {row['points']} points in "
                f"{row['seconds']:.1f} s = {row['pages'] / row['seconds']:.2f} pages/s; "
                f"peak RSS {peak_rss_mib():.0f} MiB"
            )
            print(f"  where the time went: {stage_line(row['stages'])}")
        res = score(engine, questions, args.k, args.verbose)
        print(
            f"retrieval over {res['questions']} questions: R@1 {res['R@1']:.3f}  "
            f"R@5 {res['R@5']:.3f}  MRR@{args.k} {res['MRR']:.3f}  "
            f"(search {res['search_ms_mean']:.0f} ms mean); peak RSS {peak_rss_mib():.0f} MiB"
        )
        close_all()  # the CLI processes below open the same embedded store
        for label, times in startup(home, questions[0]["question"]):
            print(f"start-up: {label:<16} {statistics.median(times):5.2f} s median of "
                  f"{len(times)} (min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
