"""OCR with RapidOCR (ONNX models shipped inside its wheel): text lines with their boxes.

rapidocr 3.x + onnxruntime is used rather than rapidocr-onnxruntime 1.4, which caps Python below
3.13 and is no longer developed; 3.x ships current PP-OCR models in the wheel and never downloads
when they are present.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from vistarag.agent.charts import chart_readings, rows_of
from vistarag.agent.memory import release_freed_memory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OcrLine:
    """One recognised line: text, confidence and its box in image pixels (x0, y0, x1, y1)."""

    text: str
    score: float
    bbox: tuple[float, float, float, float]


USE_CLS = False
"""No line-orientation classifier: on upright scanned pages it turned lines it misjudged upside
down and lost them (89% of the words read with it, all without, on ``bench_messy``'s scans)."""
REC_MIN_WIDTH = 64
"""Recognition pads each line to at least this width, not RapidOCR's 320: a short label is not
run at five times its size. With ``USE_CLS`` and ``THREADS``: the six shared-data screenshots in
13.7 CPU-s instead of 37.9, as many words, 92% of them the same as before (``query_ocr`` reads
query images the same way)."""
TRIM_AFTER_PIXELS = 1_000_000
"""After reading an image this large (the detector's intermediate maps take about 220 bytes a
pixel), freed memory goes back to the OS (``memory``): pages and screenshots, not icons."""
THREADS = 1
"""ONNX Runtime threads a run: ingestion embeds text on the other cores meanwhile, and the
default (one spinning thread per core) took half again the CPU for the same page."""


class RapidOcrEngine:
    """Thread-safe wrapper around one RapidOCR instance, loaded on the first ``read``: 1.5 s
    that a batch of PDFs whose pages all have a text layer never needs."""

    name = "rapidocr"

    def __init__(self, min_score: float = 0.5) -> None:
        self._min_score = min_score
        self._engine: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        if self._engine is None:
            from rapidocr import RapidOCR

            self._engine = RapidOCR(params={
                "Global.log_level": "error", "Global.text_score": self._min_score,
                "Global.use_cls": USE_CLS,
                "Rec.rec_img_shape": [3, 48, REC_MIN_WIDTH],
                "EngineConfig.onnxruntime.intra_op_num_threads": THREADS,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            })
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        return self._engine

    def read(self, image: Image.Image) -> list[OcrLine]:
        """Recognise text lines in reading order (top to bottom, left to right)."""
        arr = np.asarray(image.convert("RGB"))
        with self._lock:
            result = self._loaded()(arr)
        if arr.shape[0] * arr.shape[1] >= TRIM_AFTER_PIXELS:
            release_freed_memory()  # the detector's maps: hundreds of MiB for a page
        if result is None or result.txts is None or result.boxes is None:
            return []
        lines = []
        for text, score, box in zip(result.txts, result.scores, result.boxes, strict=False):
            text = str(text).strip()
            if not text:
                continue
            xs, ys = box[:, 0], box[:, 1]
            bbox = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
            lines.append(OcrLine(text=text, score=float(score), bbox=bbox))
        lines.sort(key=lambda ln: (round(ln.bbox[1] / 8), ln.bbox[0]))
        return lines


def lines_to_text(lines: list[OcrLine]) -> str:
    """Join OCR lines into plain text, one line per row of boxes; a bar chart's values paired
    with their categories ("Revenue: Q1 = 410; Q2 = 455; ...", see ``charts``) make the last
    line."""
    text = "\n".join("  ".join(ln.text for ln in row) for row in rows_of(lines))
    readings = chart_readings(lines)
    return f"{text}\n{readings}" if readings else text


@lru_cache(maxsize=1)
def get_ocr() -> RapidOcrEngine:
    """The process-wide OCR engine (loaded on first use)."""
    return RapidOcrEngine()
