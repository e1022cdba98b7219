"""Calibrate the "not in your documents" floor on the hybrid reranker's scores.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python -m vistarag.evals.relevance_floor [--no-ocr]``

Answerable queries are the rerank eval's (paraphrase and exact-name material, each with its
relevant documents among the top-50 candidates); off-topic queries are questions no corpus here
answers, asked of the same corpora. For each, ``rerank.relevance`` of the hybrid reranker's top
hits is computed; the script prints both distributions and, for a range of floors, the share of
answerable queries kept and of off-topic ones refused, and marks ``rerank.RELEVANCE_FLOOR``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from vistarag.agent.rerank import RELEVANCE_FLOOR, HybridReranker, RerankQuery, relevance
from vistarag.evals.rerank_data import Material, Query, exact_material, paraphrase_material
from vistarag.evals.rerank_eval import REPO, candidates, load_embedder

OFF_TOPIC = (
    "What is a good recipe for banana bread with walnuts?",
    "Who won the football world cup in 1998?",
    "How do I train a puppy to stop biting?",
    "What is the boiling point of ethanol at sea level?",
    "Recommend a hiking trail in the Swiss Alps for beginners",
    "How many moons does Jupiter have?",
    "What are the rules of cricket's leg before wicket?",
    "Best way to grow tomatoes on a balcony",
    "Translate 'good morning' into Japanese",
    "Who painted the ceiling of the Sistine Chapel?",
    "How long should I boil an egg for a runny yolk?",
    "What is the capital city of Australia?",
    "Explain the plot of Hamlet in two sentences",
    "Which vitamins are in spinach?",
    "How do I knit a scarf with a cable pattern?",
    "What time does the sun set in Reykjavik in June?",
    "Lyrics of a famous Beatles song about a submarine",
    "How fast can a cheetah run?",
    "What is the best saddle for a road bike?",
    "How do volcanoes form under the ocean?",
)


def scores(mat: Material, model, reranker: HybridReranker) -> list[float]:  # noqa: ANN001
    out = []
    for q, hits in zip(mat.queries, candidates(mat, model), strict=True):
        ranked = reranker.rerank(RerankQuery(text=q.text), hits, top_k=len(hits))
        out.append(relevance(ranked, q.text))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--no-ocr", action="store_true")
    args = ap.parse_args(argv)
    data = args.data if args.data.is_dir() else None
    model = load_embedder()
    rr = HybridReranker()
    on: list[float] = []
    off: list[float] = []
    for mat in (paraphrase_material(data), exact_material(data, ocr=not args.no_ocr)):
        on += scores(mat, model, rr)
        off_mat = Material(f"{mat.name}/off-topic", mat.docs,
                           [Query(text=t, relevant=set()) for t in OFF_TOPIC])
        off += scores(off_mat, model, rr)
        print(f"{mat.name}: {len(mat.queries)} answerable queries, {len(mat.docs)} docs")
    on.sort()
    off.sort()
    pct = lambda v, p: v[min(len(v) - 1, int(p * (len(v) - 1)))]  # noqa: E731
    print(f"answerable: min {on[0]:.3f}  p5 {pct(on, .05):.3f}  p50 {pct(on, .5):.3f}")
    print(f"off-topic:  p50 {pct(off, .5):.3f}  p95 {pct(off, .95):.3f}  max {off[-1]:.3f}")
    print(f"\n{'floor':>6} {'answerable kept':>16} {'off-topic refused':>18}")
    for floor in [x / 100 for x in range(20, 62, 4)] + [RELEVANCE_FLOOR]:
        kept = sum(v >= floor for v in on) / len(on)
        refused = sum(v < floor for v in off) / len(off)
        mark = "  <- RELEVANCE_FLOOR" if floor == RELEVANCE_FLOOR else ""
        print(f"{floor:>6.2f} {kept:>16.3f} {refused:>18.3f}{mark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
