"""Per-node latency of offline ``ask`` turns over a folder of real documents (models warm).

    python -m vistarag.evals.bench_ask [--data ../shared/data] [--turns 50]

Ingests the folder into a temporary data dir (text-bridge mode unless VISTARAG_JOINT_MODEL
points at a local model), warms the models with one turn, then runs ``--turns`` turns through
the compiled graph with the extractive synthesizer and prints p50/p95 per node.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

QUESTIONS = [
    "How does row and column access control work in DB2 for i?",
    "What is a self-locking nut?",
    "How does the Boots self-locking nut hold tight under vibration?",
    "Which permissions does the security administrator need?",
    "What does the table structure recognition model predict?",
    "Which fonts and styles are in the Word ribbon?",
    "What apps are shown on the phone home screen?",
    "What is written in the spreadsheet?",
    "What is in the OneNote page?",
    "What does the Windows desktop show?",
    "Explain the code and formula example",
    "What is the main contribution of the paper?",
    "What are the authors' affiliations?",
    "How is picture classification evaluated?",
    "What does the multi page document talk about in its conclusion?",
    "Which column masks are defined?",
    "What is the definition of a permission?",
    "segmentation",
    "rocket launch pad",
    "What is the search query on the Google page?",
    "and what about the next page?",
    "What is the elastic stop nut?",
    "Which tables are mislabeled as pictures?",
    "How are fiber insert nuts different from all-metal nuts?",
    "What is the overall accuracy reported?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2]
                        / "shared" / "data")
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--home", type=Path, default=None, help="reuse an existing data dir")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from vistarag.agent.engine import Engine
    from vistarag.agent.settings import Settings
    from vistarag.graphs import build_graph

    home = args.home or Path(tempfile.mkdtemp(prefix="vistarag-bench-ask-"))
    settings = Settings(home=home, synthesizer="extractive", _env_file=None,
                        joint_model=os.environ.get("VISTARAG_JOINT_MODEL", "none"))
    engine = Engine(settings)
    if not engine.kb().exists():
        if not args.data.is_dir():
            raise SystemExit(f"{args.data}: no such folder (pass --data)")
        started = time.perf_counter()
        report = engine.ingestor().ingest_paths([args.data])
        print(f"ingested {args.data}: {report.summary()} in {time.perf_counter() - started:.1f} s")
    graph = build_graph(engine=engine)
    screenshots = sorted((args.data / "screenshots").glob("*.png"))[:2]
    graph.invoke({"question": "warm up"})
    if screenshots:
        graph.invoke({"question": "warm up", "images": [str(screenshots[0])]})

    per_node: dict[str, list[float]] = {}
    totals: list[float] = []
    for i in range(args.turns):
        turn: dict = {"question": QUESTIONS[i % len(QUESTIONS)]}
        if screenshots and i % 10 == 9:
            turn["images"] = [str(screenshots[(i // 10) % len(screenshots)])]
        started = time.perf_counter()
        out = graph.invoke(turn)
        totals.append((time.perf_counter() - started) * 1000)
        for node, ms in out["timings"].items():
            per_node.setdefault(node, []).append(ms)

    print(f"\n{args.turns} offline ask turns (extractive synthesizer, joint model: "
          f"{engine.models.record()['joint_model']}, "
          f"{engine.kb().count()} points; every 10th turn carries a screenshot)")
    print(f"{'node':<20}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for node, values in per_node.items():
        print(f"{node:<20}{len(values):>5}{percentile(values, 50):>10.1f}"
              f"{percentile(values, 95):>10.1f}{statistics.fmean(values):>10.1f}")
    print(f"{'whole turn':<20}{len(totals):>5}{percentile(totals, 50):>10.1f}"
          f"{percentile(totals, 95):>10.1f}{statistics.fmean(totals):>10.1f}")


if __name__ == "__main__":
    main()
