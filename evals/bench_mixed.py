"""Retrieval over mixed material in one knowledge base, per kind, beside OCR+BM25.

Run: ``.venv/bin/python -m vistarag.evals.bench_mixed [--data DIR] [--cache DIR] [--reuse]``

1. Material: ``--pages`` generated web pages (``evals/web_pages.py``) rendered to screenshots in
   headless Chromium, plus the shared data (``--data``, default ``../shared/data``): filings,
   PDFs, screenshots, photos and videos. All go into one knowledge base under ``--cache``
   (default ``/tmp/vistarag-bench-mixed``); ``--reuse`` keeps a knowledge base built before.
2. Questions, by kind: ``web`` (a page's title -> its screenshot), ``filings``
   (``qa/filings_questions.jsonl``: an evidence page), and hand-written ones about the PDFs,
   screenshots, photos and videos (from ``evals/suites/shared_data.yaml``'s first turns).
3. Each question goes through ``Engine.search``; the same questions also go to a BM25 over the
   text the index stores for each page / image / video (its OCR text, title words, transcript).
   Prints R@1, R@5 and MRR@k per kind and for all, for both.

Text-bridge settings (``VISTARAG_JOINT_MODEL=none`` unless set): no CLIP weights are needed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from vistarag.agent.engine import Engine  # noqa: E402
from vistarag.agent.settings import Settings  # noqa: E402
from vistarag.evals import web_pages  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA_CANDIDATES = (Path("../shared/data"), REPO.parent / "shared" / "data")
SHARED_GLOBS = ("filings/*.pdf", "pdfs/*.pdf", "screenshots/*.png", "images/*", "videos/*.mp4")
KB = "mixed"


@dataclass
class Question:
    """A question, its kind, the file that answers it and (optionally) the pages that do."""

    kind: str
    text: str
    file: str
    pages: set[int] = field(default_factory=set)


SHARED_QUESTIONS = (  # first turns of evals/suites/shared_data.yaml that need no attachment
    ("pdf", "Who patented the typewriter, and in which year?", "multi_page.pdf", {1}),
    ("pdf", "What did Wang Laboratories introduce in the 1970s?", "multi_page.pdf", {1}),
    ("pdf", "What are the two general types of self-locking nuts?", "amt_handbook_sample.pdf",
     {1}),
    ("pdf", "On which data set was hyper parameter optimization for OTSL performed?",
     "2305.03393v1-pg9.pdf", set()),
    ("pdf", "What speed-up does OTSL give over HTML?", "2305.03393v1-pg9.pdf", set()),
    ("pdf", "What does RCAC stand for in IBM DB2 for i?", "redp5110_sampled.pdf", set()),
    ("pdf", "What training do legal aid offices organize for private lawyers?",
     "table_mislabeled_as_picture.pdf", {1}),
    ("screenshot", "Which screenshot shows the OneNote notebook with the Autogen websurfer page?",
     "onenote.png", set()),
    ("photo", "Which image explains region-based segmentation with markers?", "page.png", set()),
    ("photo", "a red motorcycle standing in a garage", "motorcycle_right.png", set()),
    ("video", "Which clip shows a frame counter?", "counter.mp4", set()),
)


def find_data(arg: Path | None) -> Path:
    for candidate in [arg] if arg else list(DATA_CANDIDATES):
        if candidate and (candidate / "filings").is_dir():
            return candidate.resolve()
    raise SystemExit("data dir with filings/ and qa/ not found; pass --data DIR")


def questions(data: Path, pages: list[web_pages.WebPage]) -> list[Question]:
    out = [Question("web", p.title, f"{p.name}.png") for p in pages]
    for line in (data / "qa" / "filings_questions.jsonl").read_text().splitlines():
        if line.strip():
            q = json.loads(line)
            out.append(Question("filings", q["question"], Path(q["pdf"]).name,
                                set(q["evidence_pages"])))
    out += [Question(k, t, f, set(p)) for k, t, f, p in SHARED_QUESTIONS]
    return out


def settings(home: Path) -> Settings:
    overrides: dict[str, Any] = {
        "home": home, "qdrant_url": None, "qdrant_path": None, "kb": KB, "owner": "local",
    }
    if not os.environ.get("VISTARAG_JOINT_MODEL"):
        overrides["joint_model"] = "none"
    return Settings(_env_file=None).model_copy(update=overrides)


def build(engine: Engine, files: list[Path]) -> None:
    started = time.perf_counter()
    report = engine.ingestor().ingest_paths(files)
    for r in report.results:
        if r.status == "error":
            print(f"  error {r.path}: {r.message}")
    s = report.summary()
    print(f"ingest: {len(files)} files, {s['points']} points in "
          f"{time.perf_counter() - started:.0f} s")


# ------------------------------------------------------------------------------ OCR + BM25

_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class Okapi:
    """Plain Okapi BM25 (k1 1.2, b 0.75) over whole units; no stop words, no stemming."""

    def __init__(self, texts: list[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.docs = [Counter(tokens(t)) for t in texts]
        self.lens = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lens) / max(1, len(self.lens))
        df = Counter(t for d in self.docs for t in d)
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self.k1, self.b = k1, b

    def scores(self, query: str) -> list[float]:
        q = tokens(query)
        out = []
        for d, length in zip(self.docs, self.lens, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / (self.avg or 1))
            out.append(sum(self.idf.get(t, 0.0) * d[t] * (self.k1 + 1) / (d[t] + norm)
                           for t in q if t in d))
        return out


def stored_units(engine: Engine) -> list[tuple[str, int | None, str]]:
    """(file name, page, text) per page / image / video as the index stores it: an image's own
    point (title words + OCR text) where there is one, else the texts of its points joined."""
    groups: dict[tuple[str, int | None], dict[str, list[str]]] = defaultdict(
        lambda: defaultdict(list))
    for point in engine.kb(KB).scroll(None, fields=["source", "page", "modality", "text"]):
        p = point.payload or {}
        key = (Path(str(p.get("source", ""))).name, p.get("page"))
        groups[key][str(p.get("modality"))].append(str(p.get("text") or ""))
    out = []
    for (name, page), by_mod in groups.items():
        texts = by_mod["image"] if by_mod.get("image") else [t for ts in by_mod.values()
                                                              for t in ts]
        out.append((name, page, "\n".join(texts)))
    return out


# ---------------------------------------------------------------------------------- scoring


def rank_of(ranked: list[tuple[str, int | None]], q: Question) -> int | None:
    for i, (name, page) in enumerate(ranked, 1):
        if name == q.file and (not q.pages or page in q.pages):
            return i
    return None


def table(ranks: dict[str, list[int | None]], k: int) -> dict[str, tuple[int, float, float,
                                                                         float]]:
    out = {}
    for kind, rs in ranks.items():
        n = len(rs) or 1
        out[kind] = (len(rs), sum(r == 1 for r in rs) / n,
                     sum(r is not None and r <= 5 for r in rs) / n,
                     sum(1 / r for r in rs if r and r <= k) / n)
    return out


def run(engine: Engine, qs: list[Question], k: int, verbose: bool) -> None:
    units = stored_units(engine)
    bm25 = Okapi([t for _, _, t in units])
    ours: dict[str, list[int | None]] = defaultdict(list)
    base: dict[str, list[int | None]] = defaultdict(list)
    started = time.perf_counter()
    for q in qs:
        hits = engine.find(q.text, k=k)
        r = rank_of([(Path(h.source).name, h.page) for h in hits], q)
        scores = bm25.scores(q.text)
        order = sorted(range(len(units)), key=lambda i: -scores[i])[:k]
        b = rank_of([(units[i][0], units[i][1]) for i in order], q)
        for kind in (q.kind, "all"):
            ours[kind].append(r)
            base[kind].append(b)
        if verbose or (r != 1 and q.kind != "web") or (r != 1 and (b or 99) < (r or 99)):
            top = ", ".join(f"{Path(h.source).name}:{h.page}" for h in hits[:3])
            print(f"  [{q.kind}] rank {r or '-'} (bm25 {b or '-'}) {q.text[:70]!r} -> {top}")
    secs = time.perf_counter() - started
    a, z = table(ours, k), table(base, k)
    print(f"\n{'kind':<11}{'n':>4}  {'R@1':>6}{'R@5':>6}{'MRR':>6}   | OCR+BM25 "
          f"{'R@1':>6}{'R@5':>6}{'MRR':>6}")
    kinds = [kd for kd in ("web", "filings", "pdf", "screenshot", "photo", "video", "all")
             if kd in a]
    for kind in kinds:
        n, r1, r5, mrr = a[kind]
        _, b1, b5, bm = z[kind]
        print(f"{kind:<11}{n:>4}  {r1:6.3f}{r5:6.3f}{mrr:6.3f}   |          "
              f"{b1:6.3f}{b5:6.3f}{bm:6.3f}")
    print(f"({len(qs)} questions, search {1000 * secs / max(1, len(qs)):.0f} ms mean, "
          f"MRR@{k}; {len(units)} BM25 units)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/vistarag-bench-mixed"),
                    help="screenshots and the knowledge base (kept)")
    ap.add_argument("--pages", type=int, default=120, help="generated web pages")
    ap.add_argument("--reuse", action="store_true", help="keep the knowledge base built before")
    ap.add_argument("-k", type=int, default=10, help="hits per question for MRR")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every question")
    args = ap.parse_args(argv)
    data = find_data(args.data)
    pages = web_pages.generate(args.pages)
    shots = web_pages.render(pages, args.cache / "web")
    engine = Engine(settings(args.cache / "home"))
    if not (args.reuse and engine.kb(KB).exists()):
        engine.kb(KB).drop()
        files = shots + sorted(p for g in SHARED_GLOBS for p in data.glob(g))
        build(engine, files)
    run(engine, questions(data, pages), args.k, args.verbose)


if __name__ == "__main__":
    main()
