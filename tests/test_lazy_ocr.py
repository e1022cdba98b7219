"""RapidOCR loads on the first image it reads, not before: a batch of PDFs whose pages all have
a text layer never pays for it (1.5 s and its memory)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pymupdf
from PIL import Image

from vistarag.agent.ocr import RapidOcrEngine


def test_a_text_layer_pdf_is_ingested_without_loading_ocr(tmp_path: Path) -> None:
    pdf = tmp_path / "memo.pdf"
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(72, 72, 540, 300),
                        "The Rotterdam depot inspects every forklift brake each 90 days. " * 6)
    doc.save(pdf)
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from vistarag.agent.engine import Engine
        from vistarag.agent.settings import Settings
        settings = Settings(_env_file=None, home=Path({str(tmp_path / "home")!r}),
                            joint_model="none")
        report = Engine(settings).ingestor().ingest_paths([Path({str(pdf)!r})])
        print("ADDED", report.count("added"), "OCR LOADED", "rapidocr" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert "ADDED 1 OCR LOADED False" in done.stdout, done.stdout + done.stderr


def test_the_engine_loads_on_first_read() -> None:
    engine = RapidOcrEngine()
    assert engine._engine is None
    image = Image.new("RGB", (240, 60), "white")
    assert engine.read(image) == []
    assert engine._engine is not None
