"""A small sample corpus the project generates itself: a PDF, a screenshot, a chart, notes;
the eval corpus adds a metrics PDF, screenshots and a narrated video (H.264 + AAC, shipped in
``sample_media/`` and copied, so it is there without espeak-ng).

Used by ``make run`` / ``make demo`` and by the tests.
``python -m vistarag.evals.sample_corpus DIR`` writes the demo eval suite's corpus into DIR.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from vistarag.agent.pdflib import pymupdf

PDF_PAGE1 = (
    "Zephyr Logistics annual report. The quarterly revenue of Zephyr Logistics rose fourteen "
    "percent, driven by the new cold-chain warehouse in Rotterdam. Operating costs stayed flat."
)
PDF_PAGE2 = (
    "Fleet maintenance. Every lorry is inspected after 40,000 kilometres. The inspection "
    "checklist covers brakes, tyres, refrigeration units and the tachograph."
)
PDF_SCANNED_LINES = ["Invoice number INV-20931", "Total due 4,250 EUR", "Payable within 30 days"]
FIGURE_CAPTION = "Figure 1: Map of the Rotterdam cold-chain warehouse"
SCREENSHOT_LINES = [
    "Network Settings",
    "Proxy server: proxy.internal:3128",
    "Error code QX-4471: certificate expired",
]
NOTES = """# Onboarding notes

New drivers complete a two-day safety course before their first route.

The depot in Antwerp opens at 05:30 and closes at 22:00 on weekdays.
"""


def font(size: int = 28) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def text_image(
    lines: list[str], size: tuple[int, int] = (900, 300), font_size: int = 30, bg: str = "white"
) -> Image.Image:
    """Black text lines on a plain background."""
    image = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(image)
    y = 20
    for line in lines:
        draw.text((24, y), line, fill="black", font=font(font_size))
        y += int(font_size * 1.6)
    return image


def make_screenshot(path: Path, lines: list[str]) -> Path:
    """A UI-like screenshot: a title bar and lines of text."""
    image = text_image(lines, size=(1000, 60 + 52 * len(lines)))
    ImageDraw.Draw(image).rectangle([0, 0, 1000, 8], fill="#1f6feb")
    image.save(path)
    return path


def make_chart(path: Path, title: str, values: dict[str, int]) -> Path:
    """A bar chart with a title and labelled bars."""
    image = Image.new("RGB", (800, 500), "white")
    draw = ImageDraw.Draw(image)
    draw.text((30, 20), title, fill="black", font=font(32))
    top = max(values.values()) or 1
    for i, (label, value) in enumerate(values.items()):
        x = 80 + i * 170
        height = int(340 * value / top)
        draw.rectangle([x, 440 - height, x + 110, 440], fill="#2e86de")
        draw.text((x, 450), label, fill="black", font=font(24))
        draw.text((x, 440 - height - 32), str(value), fill="black", font=font(24))
    image.save(path)
    return path


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def make_pdf(path: Path) -> Path:
    """3 pages: text + an embedded figure with caption; text; a scanned page (image only)."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(72, 72, 540, 200), PDF_PAGE1, fontsize=11)
    figure = Image.new("RGB", (400, 240), "#c0392b")
    ImageDraw.Draw(figure).rectangle([40, 40, 360, 200], outline="white", width=6)
    page.insert_image(pymupdf.Rect(72, 220, 472, 460), stream=_png_bytes(figure))
    page.insert_textbox(pymupdf.Rect(72, 468, 540, 500), FIGURE_CAPTION, fontsize=10)
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(72, 72, 540, 300), PDF_PAGE2, fontsize=11)
    page = doc.new_page()
    scan = text_image(PDF_SCANNED_LINES, size=(1100, 260), font_size=40)
    page.insert_image(pymupdf.Rect(36, 72, 576, 200), stream=_png_bytes(scan))
    _save_pdf(doc, path)
    return path


def _save_pdf(doc: pymupdf.Document, path: Path) -> None:
    """Save without a fresh id or dates, so the same content gives the same bytes (and hash)."""
    doc.set_metadata({})
    doc.save(path, no_new_id=True, deflate=True)
    doc.close()


def make_sample_corpus(root: Path) -> list[Path]:
    """Write the sample corpus into ``root`` and return the files."""
    root.mkdir(parents=True, exist_ok=True)
    notes = root / "onboarding_notes.md"
    notes.write_text(NOTES, encoding="utf-8")
    return [
        make_pdf(root / "zephyr_report.pdf"),
        make_screenshot(root / "network_settings_screenshot.png", SCREENSHOT_LINES),
        make_chart(root / "revenue_chart_2024.png", "Revenue by quarter 2024 (kEUR)",
                   {"Q1": 410, "Q2": 455, "Q3": 472, "Q4": 530}),
        notes,
    ]


# ---- the eval demo corpus: the sample corpus plus a metrics PDF, screenshots and a video -------
METRICS_TITLE = "Zephyr Logistics depot metrics 2024"
DEPOT_TABLE = [
    ("Depot", "Lorries", "On-time deliveries"),
    ("Rotterdam", "42", "97.5%"),
    ("Antwerp", "31", "95.2%"),
    ("Hamburg", "27", "93.8%"),
]
DELIVERIES = {"Jan": 1180, "Feb": 1240, "Mar": 1410, "Apr": 1395}
CHART_CAPTION = "Figure 2: Deliveries per month, first four months of 2024"
LOGIN_LINES = ["Sign in", "Sign in failed", "Error AUTH-502: account locked after 5 attempts"]
DASHBOARD_LINES = ["Fleet dashboard", "Active lorries: 87", "Delayed shipments: 6",
                   "Next maintenance window: Saturday 02:00"]
VIDEO_SLIDES = ["Safety briefing", "Wear a high-visibility vest in the yard",
                "Forklifts have right of way"]
VIDEO_SPEECH = "Welcome to the safety briefing. Always wear a high visibility vest in the yard."


def make_metrics_pdf(path: Path) -> Path:
    """2 pages: a table of depot figures (text layer); a bar chart figure with its caption."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), METRICS_TITLE, fontsize=16)
    page.insert_text((72, 100), "Table 1: Lorries and on-time deliveries per depot", fontsize=11)
    for row, cells in enumerate(DEPOT_TABLE):
        y = 130 + row * 22
        for col, cell in enumerate(cells):
            page.insert_text((72 + col * 150, y), cell, fontsize=11)
        page.draw_line((70, y + 6), (520, y + 6), color=(0.6, 0.6, 0.6), width=0.5)
    page = doc.new_page()
    page.insert_text((72, 72), "Deliveries", fontsize=16)
    chart = Image.new("RGB", (800, 500), "white")
    draw = ImageDraw.Draw(chart)
    draw.text((30, 20), "Deliveries per month 2024", fill="black", font=font(32))
    top = max(DELIVERIES.values())
    for i, (label, value) in enumerate(DELIVERIES.items()):
        x = 80 + i * 170
        height = int(320 * value / top)
        draw.rectangle([x, 440 - height, x + 110, 440], fill="#27ae60")
        draw.text((x, 450), label, fill="black", font=font(24))
        draw.text((x, 440 - height - 32), str(value), fill="black", font=font(24))
    page.insert_image(pymupdf.Rect(72, 100, 472, 350), stream=_png_bytes(chart))
    page.insert_textbox(pymupdf.Rect(72, 360, 540, 400), CHART_CAPTION, fontsize=10)
    _save_pdf(doc, path)
    return path


SAMPLE_MEDIA = Path(__file__).resolve().parent / "sample_media"
SAMPLE_VIDEO = SAMPLE_MEDIA / "safety_briefing.mp4"  # made once by generate_video (package data)
VIDEO_SECONDS = 8.0
VIDEO_COLOURS = ("white", "#ffe08a", "#9fd3ff")  # light, so OCR reads the slides' text
VIDEO_CODECS = ("h264", "aac")  # what browsers play in MP4


class SampleMediaError(RuntimeError):
    """The sample video can neither be copied nor generated."""


def generate_video(path: Path) -> Path:
    """Encode the narrated video: three slides, espeak-ng narration, H.264 + AAC in MP4.

    Needs PyAV (its wheel carries libx264 and aac) and espeak-ng. It wrote the shipped copy in
    ``evals/sample_media/``: ``python -m vistarag.evals.sample_corpus --regenerate-video``.
    """
    from vistarag.evals.video_samples import Scene, slide, speech_track, write_video

    size = (640, 360)
    step = VIDEO_SECONDS / len(VIDEO_SLIDES)
    scenes = [Scene(i * step, (i + 1) * step, slide([line], size, bg))  # a scene change each
              for i, (line, bg) in enumerate(zip(VIDEO_SLIDES, VIDEO_COLOURS, strict=True))]
    audio = speech_track(VIDEO_SECONDS, [(0.3, VIDEO_SPEECH)])
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, scenes, size=size, fps=5, audio=audio, faststart=True,
                       preset="slow")


def video_codecs(path: Path) -> tuple[str, ...]:
    """The codec names of a media file's streams, video first (PyAV)."""
    import av

    with av.open(str(path)) as media:
        return tuple(s.codec_context.name for s in sorted(
            media.streams, key=lambda s: s.type != "video"))


def make_video(path: Path) -> Path:
    """The narrated sample video at ``path``: the shipped copy, else generated (espeak-ng).

    Raises :class:`SampleMediaError` when neither works, so a sample never silently lacks it.
    """
    import shutil

    if path.exists() and path.stat().st_size and _playable(path):
        return path  # keep the same bytes, so the ingest cache holds
    if SAMPLE_VIDEO.is_file():
        shutil.copyfile(SAMPLE_VIDEO, path)
        return path
    if shutil.which("espeak-ng") is None:
        raise SampleMediaError(
            f"{SAMPLE_VIDEO} is missing from this install and espeak-ng is not installed, so "
            f"the sample's narrated video {path} cannot be made. Reinstall VistaRAG (the file is "
            "package data) or install espeak-ng (apt-get install espeak-ng), then run again."
        )
    try:
        return generate_video(path)
    except Exception as exc:  # PyAV missing, no libx264 in its wheel, espeak failing
        raise SampleMediaError(
            f"could not encode the sample's narrated video {path}: {exc}. Install the video "
            "extra (pip install 'vistarag[video]') or restore "
            f"{SAMPLE_VIDEO}, then run again."
        ) from exc


def _playable(path: Path) -> bool:
    """Whether an existing file is H.264 + AAC (an older sample was MPEG-4 Part 2)."""
    try:
        return video_codecs(path) == VIDEO_CODECS
    except Exception:
        return False


def make_eval_corpus(root: Path) -> list[Path]:
    """The demo eval suite's corpus: the sample corpus, a metrics PDF (table and chart), two
    more screenshots and a short narrated video (H.264 + AAC)."""
    files = make_sample_corpus(root)
    files += [
        make_metrics_pdf(root / "depot_metrics_2024.pdf"),
        make_screenshot(root / "login_error_screenshot.png", LOGIN_LINES),
        make_screenshot(root / "fleet_dashboard_screenshot.png", DASHBOARD_LINES),
    ]
    return files + [make_video(root / "safety_briefing.mp4")]


def main(argv: list[str]) -> int:
    """``DIR``: write the eval corpus; ``--regenerate-video``: rewrite the shipped video."""
    if argv[:1] == ["--regenerate-video"]:
        print(generate_video(SAMPLE_VIDEO))
        return 0
    try:
        files = make_eval_corpus(Path(argv[0] if argv else "sample-corpus"))
    except SampleMediaError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    for file in files:
        print(file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
