"""Bounded memory: a long video and a many-page PDF stream through ingestion in batches.

Peak resident memory is measured in this process (Linux: VmHWM, reset through
/proc/self/clear_refs) around each ingestion, after the models are loaded. The ceilings are
loose (evals/bench_video.py measures the real figures) but far below what holding every page
render would take: 40 pages rendered at 200 dpi are ~460 MB as RGB.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

pytest.importorskip("av")
pytest.importorskip("scenedetect")
if not sys.platform.startswith("linux"):
    pytest.skip("peak RSS is read from /proc", allow_module_level=True)

from vistarag.agent.engine import Engine  # noqa: E402
from vistarag.agent.qdrant import close_all  # noqa: E402
from vistarag.agent.settings import Settings  # noqa: E402
from vistarag.evals.video_samples import Scene, solid, write_video  # noqa: E402

PDF_PAGES = 40
CEILING_MB = 300  # peak growth over the resident size before ingesting


def _kb(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


def peak_growth_mb(run) -> tuple[float, object]:
    """Peak RSS growth (MB) while ``run()`` executes."""
    Path("/proc/self/clear_refs").write_text("5")
    before = _kb("VmRSS")
    result = run()
    return (_kb("VmHWM") - before) / 1024, result


def long_pdf(path: Path, pages: int) -> Path:
    doc = pymupdf.open()
    for i in range(pages):
        page = doc.new_page()
        page.insert_text((72, 100), f"Section {i + 1}: maintenance log for lorry fleet unit {i}.")
        page.insert_text((72, 130), "Brakes, tyres and lights were inspected and recorded.")
    doc.save(path)
    doc.close()
    return path


def long_video(path: Path, minutes: float) -> Path:
    size = (320, 180)
    colours = ["red", "navy", "darkgreen", "orange", "purple", "teal"]
    scenes = [
        Scene(i * 20, (i + 1) * 20, solid(colours[i % 6], size)) for i in range(int(minutes * 3))
    ]
    return write_video(path, scenes, size, fps=5)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("memory") / "home"
    settings = Settings(home=home, joint_model="none", synthesizer="extractive",
                        checkpointer="memory", page_render_dpi=200, video_transcribe=False,
                        _env_file=None)
    engine = Engine(settings)
    engine.models.text_encoder.encode_document(["warm up"])
    engine.models.ocr.read(Image.new("RGB", (320, 100), "white"))  # its arenas, once
    yield engine
    close_all()


def test_many_page_pdf_ingests_under_a_memory_ceiling(engine, tmp_path):
    pdf = long_pdf(tmp_path / "fleet.pdf", PDF_PAGES)
    growth, result = peak_growth_mb(lambda: engine.ingestor().ingest_file(pdf))
    assert result.status == "added", result.message
    assert result.pages == PDF_PAGES
    assert result.by_modality["page"] == PDF_PAGES
    print(f"PDF {PDF_PAGES} pages at 200 dpi: peak RSS growth {growth:.0f} MB")
    assert growth < CEILING_MB


def test_long_video_ingests_under_a_memory_ceiling(engine, tmp_path):
    video = long_video(tmp_path / "long.mp4", minutes=3)
    growth, result = peak_growth_mb(lambda: engine.ingestor().ingest_file(video))
    assert result.status == "added", result.message
    assert result.stats["duration_s"] == pytest.approx(180, abs=1)
    assert result.keyframes == 9  # one per 20 s scene
    print(f"video 3 min: peak RSS growth {growth:.0f} MB")
    assert growth < CEILING_MB
