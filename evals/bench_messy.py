"""Ingestion speed on what real filings carry beside the dev filings: where the time goes.

Run: ``.venv/bin/python -m vistarag.evals.bench_messy [--data ../shared/data] [--workers-check]
[--kinds filings] [--repeat 5]``

Generated PDFs (PyMuPDF, seeded, written to a temp dir) reproduce what the dev set lacks:
``glyphs`` (text pages with 18 tiny 8x10 pt glyph / check-box images each and the same logo on
every page), ``scanned`` (pages that are one scanned image), ``tables`` (long borderless
tables) and ``signature`` (a signature page with signature images). Each kind, and the dev
filings (``DATA/filings``), is ingested into a fresh temp data dir with the real models
(text-bridge unless ``VISTARAG_JOINT_MODEL`` is set), loaded and prepared before the clock
starts, as ``vistarag ingest`` does before its progress bar (``Ingestor.prepare_models``).
Printed per kind: pages/s, process CPU-seconds a page (all threads) and the seconds spent in
each stage (parse, image triage, render, OCR, tables, chunking, text embedding, blobs, upsert;
stages overlap, so they add up to more than the wall time), OCR runs and the images left out.
Each kind is ingested with the default workers (the cores), as ``vistarag ingest`` does.
``--workers-check`` also ingests a folder of many small files with 1 and with 2 workers
(``--workers N``: N files and N texts in the text model at once) and prints the speed-up.
``--repeat N`` ingests each kind N times, each into a fresh data dir, prints every run's
pages/s and CPU-seconds a page, and reports the median run (by wall time): on a shared VM one
run can be 10-20% off the next.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a benchmark must never wait on a download
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from PIL import Image, ImageDraw  # noqa: E402

from vistarag.agent.engine import Engine  # noqa: E402
from vistarag.agent.ingest.discover import select  # noqa: E402
from vistarag.agent.pdflib import pymupdf  # noqa: E402
from vistarag.agent.qdrant import close_all  # noqa: E402
from vistarag.evals.bench_ingest import bench_settings, find_data, peak_rss_mib  # noqa: E402
from vistarag.evals.sample_corpus import text_image  # noqa: E402

EXTRACT_STAGES = ("parse", "triage", "render", "tables", "chunk")  # this thread's CPU is theirs
STAGES = ("parse", "triage", "render", "ocr", "tables", "chunk", "embed_text", "blobs", "upsert")
WORDS = """
the company net revenue increased decreased quarter fiscal year compared operating income
expenses cash flows liabilities assets segment product services customers market risk interest
rate foreign currency exchange tax provision goodwill impairment inventory stock-based
compensation share repurchase dividend credit facility debt lease obligations of and in to for
with on by from as were was is are this that which period ended million
""".split()  # noqa: SIM905


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _sentences(rng: random.Random, n: int) -> str:
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(12, 24))]
        words.append(f"${rng.randint(10, 9999):,} million")
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def _glyphs() -> list[bytes]:
    """Check boxes (empty, ticked), a bullet and an arrow, as tiny PNGs."""
    out = []
    for mark in ("box", "tick", "dot", "arrow"):
        im = Image.new("RGB", (16, 20), "white")
        d = ImageDraw.Draw(im)
        if mark in ("box", "tick"):
            d.rectangle([1, 3, 14, 16], outline="black", width=2)
        if mark == "tick":
            d.line([(3, 10), (7, 14), (13, 4)], fill="black", width=2)
        if mark == "dot":
            d.ellipse([4, 6, 12, 14], fill="black")
        if mark == "arrow":
            d.polygon([(2, 4), (14, 10), (2, 16)], fill="black")
        out.append(_png(im))
    return out


def make_glyph_pdf(path: Path, pages: int = 40, seed: int = 1) -> Path:
    """Text pages with 18 tiny glyph images each (about 720 placements) and a logo on each."""
    rng = random.Random(seed)
    glyphs = _glyphs()
    logo = Image.new("RGB", (240, 120), "#1f4e79")
    ImageDraw.Draw(logo).text((20, 40), "ACME CORP", fill="white", font_size=36)
    logo_png = _png(logo)
    doc = pymupdf.open()
    for _ in range(pages):
        page = doc.new_page()
        page.insert_image(pymupdf.Rect(440, 16, 560, 76), stream=logo_png)
        y = 80.0
        for i in range(18):
            page.insert_image(pymupdf.Rect(60, y + 2, 68, y + 12), stream=glyphs[i % 4])
            page.insert_textbox(pymupdf.Rect(74, y, 550, y + 36), _sentences(rng, 1), fontsize=8)
            y += 38
    _save(doc, path)
    return path


def make_scanned_pdf(path: Path, pages: int = 4, seed: int = 2) -> Path:
    """Pages that are one scanned image each (an exhibit printed and scanned, 150 dpi)."""
    rng = random.Random(seed)
    doc = pymupdf.open()
    for _ in range(pages):
        lines = [" ".join(rng.choice(WORDS) for _ in range(8)).capitalize() for _ in range(22)]
        scan = text_image(lines, size=(1240, 1600), font_size=30).convert("L")
        page = doc.new_page()
        page.insert_image(page.rect, stream=_png(scan))
    _save(doc, path)
    return path


def make_table_pdf(path: Path, pages: int = 20, seed: int = 3) -> Path:
    """Long borderless tables: a label column and four year columns, 45 rows a page."""
    rng = random.Random(seed)
    doc = pymupdf.open()
    for p in range(pages):
        page = doc.new_page()
        title = f"Consolidated Statements (continued, part {p + 1})"
        page.insert_text((60, 60), title, fontsize=11)
        for c, year in enumerate((2024, 2023, 2022, 2021)):
            page.insert_text((330 + 60 * c, 84), str(year), fontsize=8)
        y = 100.0
        for _ in range(45):
            label = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))).capitalize()
            page.insert_text((60, y), label, fontsize=8)
            for c in range(4):
                page.insert_text((330 + 60 * c, y), f"{rng.randint(-999, 99999):,}", fontsize=8)
            y += 15
    _save(doc, path)
    return path


def make_signature_pdf(path: Path, seed: int = 4) -> Path:
    """A signature page: the signers' scribbles as images, their names, titles and dates."""
    rng = random.Random(seed)
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(60, 60, 550, 140),
                        "SIGNATURES. Pursuant to the requirements of the Securities Exchange Act "
                        "of 1934, the registrant has duly caused this report to be signed on its "
                        "behalf by the undersigned thereunto duly authorized.", fontsize=9)
    for i, (name, title) in enumerate((("Jane Q. Doe", "Chief Executive Officer"),
                                       ("John R. Roe", "Chief Financial Officer"),
                                       ("Mary S. Major", "Principal Accounting Officer"))):
        scribble = Image.new("RGB", (300, 80), "white")
        pts = [(10 + 28 * k, 40 + rng.randint(-28, 28)) for k in range(11)]
        ImageDraw.Draw(scribble).line(pts, fill="#102a6b", width=3)
        y = 170 + 130 * i
        page.insert_image(pymupdf.Rect(60, y, 210, y + 40), stream=_png(scribble))
        page.insert_text((60, y + 56), f"/s/ {name}", fontsize=9)
        page.insert_text((60, y + 70), f"{title}    Date: February {3 + i}, 2025", fontsize=9)
    _save(doc, path)
    return path


def _save(doc: pymupdf.Document, path: Path) -> None:
    doc.set_metadata({})
    doc.save(path, no_new_id=True, deflate=True)
    doc.close()


def make_messy_set(root: Path) -> dict[str, list[Path]]:
    """The generated kinds, one folder each under ``root``."""
    makers = {"glyphs": make_glyph_pdf, "scanned": make_scanned_pdf, "tables": make_table_pdf,
              "signature": make_signature_pdf}
    out = {}
    for kind, make in makers.items():
        (root / kind).mkdir(parents=True, exist_ok=True)
        out[kind] = [make(root / kind / f"{kind}.pdf")]
    return out


def make_small_files(root: Path, n: int = 40, seed: int = 5) -> Path:
    """``n`` small files (2-page PDFs and notes) for the workers check."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        if i % 2:
            (root / f"note-{i:03d}.md").write_text(_sentences(rng, 30))
            continue
        doc = pymupdf.open()
        for _ in range(2):
            doc.new_page().insert_textbox(pymupdf.Rect(60, 60, 550, 780), _sentences(rng, 25),
                                          fontsize=9)
        _save(doc, root / f"memo-{i:03d}.pdf")
    return root


def ingest_kind(engine: Engine, files: list[Path], workers: int | None = None
                ) -> dict[str, float]:
    """Ingest ``files`` with ``workers`` (default: the cores, as ``vistarag ingest``); wall
    and process CPU seconds, pages, stage seconds, counters."""
    ingestor = engine.ingestor()
    started, cpu = time.perf_counter(), time.process_time()
    report = ingestor.ingest_selection(select(files), workers=workers)
    row: Counter[str] = Counter()
    row["wall_s"] = time.perf_counter() - started
    row["cpu_s"] = time.process_time() - cpu
    for result in report.results:
        if result.status == "error":
            print(f"  error {result.path}: {result.message}")
        row["pages"] += result.pages or 1
        row["points"] += result.points
        for key, value in result.stats.items():
            if key != "pages":
                row[key] += value
    return dict(row)


def ingest_fresh(home: Path, files: list[Path], workers: int | None = None
                 ) -> dict[str, float]:
    """``ingest_kind`` into a new data dir at ``home`` (removed afterwards), models warm."""
    engine = Engine(bench_settings(home))
    engine.models.text_encoder.encode_document(["warm up"])
    engine.models.ocr.read(Image.new("RGB", (64, 32), "white"))
    engine.ingestor().prepare_models(workers)  # as `vistarag ingest` does before its clock
    try:
        return ingest_kind(engine, files, workers)
    finally:
        close_all()
        shutil.rmtree(home, ignore_errors=True)


def median_run(kind: str, runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median wall time; every run's figures printed when there are more."""
    runs = sorted(runs, key=lambda r: r["wall_s"])
    if len(runs) > 1:
        print(f"{kind}: pages/s " + ", ".join(f"{r['pages'] / r['wall_s']:.1f}" for r in runs)
              + "; CPU s a page " + ", ".join(f"{r['cpu_s'] / r['pages']:.3f}" for r in runs))
    return runs[(len(runs) - 1) // 2]


def print_rows(rows: dict[str, dict[str, float]]) -> None:
    head = "".join(f"{s:>9}" for s in STAGES)
    print(f"\n{'kind':<10}{'pages':>6}{'wall s':>8}{'pages/s':>8}{'CPU s':>7}{'CPU/pg':>7}"
          f"{'OCR':>5}{'tiny':>6}{'repeat':>7}{head}   (stage seconds)")
    total = Counter()
    for kind, r in rows.items():
        total.update(r)
        stages = "".join(f"{r.get(s + '_s', 0.0):>9.2f}" for s in STAGES)
        print(f"{kind:<10}{int(r['pages']):>6}{r['wall_s']:>8.1f}{r['pages'] / r['wall_s']:>8.1f}"
              f"{r['cpu_s']:>7.1f}{r['cpu_s'] / r['pages']:>7.3f}{int(r.get('ocr_runs', 0)):>5}"
              f"{int(r.get('images_tiny', 0)):>6}{int(r.get('images_repeated', 0)):>7}{stages}")
        cpu = {s: r.get(f"{s}_s_cpu", 0.0) for s in EXTRACT_STAGES}
        rest = r["cpu_s"] - sum(cpu.values())
        print(f"{'':<10}CPU s a page: " + ", ".join(
            f"{s} {v / r['pages']:.4f}" for s, v in cpu.items())
            + f", embedding+OCR models+upsert+rest {rest / r['pages']:.4f}")
    print(f"{'all':<10}{int(total['pages']):>6}{total['wall_s']:>8.1f}"
          f"{total['pages'] / total['wall_s']:>8.1f}{total['cpu_s']:>7.1f}"
          f"{total['cpu_s'] / total['pages']:>7.3f}")


def workers_check(tmp: Path) -> None:
    """Files/s on a folder of many small files with 1 and 2 workers, twice each; the best of
    each, and the speed-up."""
    folder = make_small_files(tmp / "small")
    files = sorted(folder.iterdir())
    best: dict[int, float] = {}
    for workers in (1, 2, 1, 2):
        r = ingest_fresh(tmp / f"home-w{workers}-{time.monotonic_ns()}", files, workers)
        rate = len(files) / r["wall_s"]
        best[workers] = max(best.get(workers, 0.0), rate)
        print(f"workers={workers}: {len(files)} files in {r['wall_s']:.1f} s wall, "
              f"{r['cpu_s']:.1f} CPU s ({r['cpu_s'] / r['wall_s']:.2f} cores), "
              f"{rate:.1f} files/s")
    print(f"--workers 2 against 1: {best[2] / best[1]:.2f}x (best of two runs each)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="holds filings/ (dev filings)")
    parser.add_argument("--kinds", nargs="+", default=None, help="only these kinds")
    parser.add_argument("--repeat", type=int, default=1,
                        help="ingest each kind this many times and report the median run")
    parser.add_argument("--workers-check", action="store_true",
                        help="also time 1 vs 2 workers on a folder of many small files")
    args = parser.parse_args(argv)
    data = find_data(args.data)
    print(f"{os.cpu_count()} CPUs, affinity {len(os.sched_getaffinity(0))}")
    with tempfile.TemporaryDirectory(prefix="vistarag-messy-") as name:
        tmp = Path(name)
        os.environ["VISTARAG_HOME"] = str(tmp)
        kinds = make_messy_set(tmp / "files")
        filings = sorted((data / "filings").glob("*.pdf"))
        if filings:
            kinds["filings"] = filings
        rows = {}
        try:
            for kind, files in kinds.items():
                if args.kinds and kind not in args.kinds:
                    continue
                rows[kind] = median_run(kind, [ingest_fresh(tmp / f"home-{kind}", files)
                                               for _ in range(max(1, args.repeat))])
            print_rows(rows)
            if args.workers_check:
                workers_check(tmp)
        finally:
            close_all()
    print(f"peak RSS (ru_maxrss): {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
