"""A small sample corpus the project generates itself: a PDF, a screenshot, a chart, notes.

Used by ``make run`` / ``make demo`` and by the tests.
``python -m vistarag.evals.sample_corpus DIR`` writes the demo eval suite's corpus into DIR.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pymupdf
from PIL import Image, ImageDraw, ImageFont

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


def make_video(path: Path) -> Path | None:
    """A 6 s MP4: three text slides and spoken narration (espeak-ng); None without PyAV/espeak."""
    import shutil
    import subprocess
    import tempfile

    try:
        import av
        import numpy as np
    except ImportError:
        return None
    espeak = shutil.which("espeak-ng") or shutil.which("espeak")
    if espeak is None:
        return None
    if path.exists():  # encoders are not byte-stable: keep the file so the ingest cache holds
        return path
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run([espeak, "-s", "150", "-w", str(wav), VIDEO_SPEECH], check=True,
                       capture_output=True)
        with av.open(str(wav)) as src:
            audio_frames = [f for f in src.decode(audio=0)]
        fps, seconds = 5, 6
        with av.open(str(path), "w") as out:
            vstream = out.add_stream("mpeg4", rate=fps)
            vstream.width, vstream.height, vstream.pix_fmt = 640, 360, "yuv420p"
            astream = out.add_stream("aac", rate=16000, layout="mono")
            for i in range(fps * seconds):
                slide = VIDEO_SLIDES[min(i // (fps * 2), len(VIDEO_SLIDES) - 1)]
                image = text_image([slide], size=(640, 360), font_size=30)
                frame = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
                for packet in vstream.encode(frame):
                    out.mux(packet)
            for packet in vstream.encode():
                out.mux(packet)
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=16000)
            for frame in audio_frames:
                for resampled in resampler.resample(frame):
                    for packet in astream.encode(resampled):
                        out.mux(packet)
            for packet in astream.encode():
                out.mux(packet)
    return path


def make_eval_corpus(root: Path) -> list[Path]:
    """The demo eval suite's corpus: the sample corpus, a metrics PDF (table and chart), two
    more screenshots and, where PyAV and espeak-ng are installed, a short narrated video."""
    files = make_sample_corpus(root)
    files += [
        make_metrics_pdf(root / "depot_metrics_2024.pdf"),
        make_screenshot(root / "login_error_screenshot.png", LOGIN_LINES),
        make_screenshot(root / "fleet_dashboard_screenshot.png", DASHBOARD_LINES),
    ]
    video = make_video(root / "safety_briefing.mp4")
    return files + ([video] if video else [])


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "sample-corpus")
    for file in make_eval_corpus(target):  # with the narrated video where espeak-ng is installed
        print(file)
