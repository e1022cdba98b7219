"""Reading a query image (a pasted screenshot): fast OCR, cached by content hash, tidied.

Ingestion OCRs for recall; a question's image must be read while the user waits. So the query
reader detects text on a copy at most ``DET_MAX_SIDE`` pixels wide (detection cost grows with
the pixels, and UI text is still found there), recognises each line from the full-size image
(small UI text stays legible) without padding short labels to a sentence's width, and skips
the text-direction classifier (screenshots are upright). Results are cached by the image's
content hash: the chat reads a screenshot once to show it, and the search reuses that reading.

The text is then tidied for a question: icon glyphs and low-confidence fragments dropped, long
items kept as lines, short ones (menu items, buttons, tabs) gathered as UI labels. In a
screenshot whose text is Latin script, icons read as CJK characters or symbols ("口", "×",
"④") are dropped from what is kept.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from vistarag.agent.charts import chart_readings, rows_of
from vistarag.agent.ocr import OcrLine

log = logging.getLogger(__name__)

DET_MAX_SIDE = 960
"""Detection runs on a copy at most this many pixels on its long side (4x fewer pixels than a
1920x1080 screenshot); recognition crops the full-size image."""
REC_MIN_WIDTH = 64
"""Recognition pads each line to at least this width (RapidOCR's default, 320, pads a menu
item like "File" to five times its size: half the recognition time of a UI screenshot)."""
THREADS = 1
"""ONNX Runtime threads: one reads a 1920x1080 screenshot in 1.3 s on two busy cores where the
default (one per core, spinning while they wait) takes 2.1 s and half again the CPU time."""
MAX_SIDE = 4000
"""Larger images are first scaled down to this (a 4K screenshot keeps its text legible)."""
CACHE_SIZE = 64
MIN_SCORE = 0.5
NOISE_SCORE = 0.75
"""A short item recognised with less confidence than this is an icon read as text."""
LINE_WORDS = 3
LINE_CHARS = 24
LATIN_SHARE = 0.8
"""A screenshot whose letters are this much Latin script drops other scripts' glyphs."""
LABELS_PREFIX = "UI labels: "
_WORD = re.compile(r"[^\W_]{2,}")
_NUMBER = re.compile(r"^[\d\s.,]+$")


@dataclass(frozen=True)
class QueryImageText:
    """What a query image says: its lines (sentences, titles, messages) and its UI labels."""

    lines: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    readings: str = ""
    """A bar chart's values with their categories (``charts.chart_readings``), if it is one."""
    ms: float = 0.0
    cached: bool = False

    @property
    def text(self) -> str:
        """Lines, one per row, then ``UI labels: File, Home, ...``, then chart readings."""
        parts = list(self.lines)
        if self.labels:
            parts.append(LABELS_PREFIX + ", ".join(self.labels))
        if self.readings:
            parts.append(self.readings)
        return "\n".join(parts)

    def summary(self) -> str:
        """``12 lines, 30 UI labels``: for a chat step."""
        return f"{len(self.lines)} lines, {len(self.labels)} UI labels"


class QueryOcr:
    """One RapidOCR instance tuned for query images (loaded on first use), and its cache."""

    def __init__(self, min_score: float = MIN_SCORE) -> None:
        self._min_score = min_score
        self._engine: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, list[OcrLine]] = OrderedDict()

    def _loaded(self) -> Any:
        if self._engine is None:
            from rapidocr import RapidOCR

            self._engine = RapidOCR(params={
                "Global.log_level": "error", "Global.text_score": self._min_score,
                "Global.use_cls": False, "Global.max_side_len": MAX_SIDE,
                "Det.limit_type": "max", "Det.limit_side_len": DET_MAX_SIDE,
                "Rec.rec_img_shape": [3, 48, REC_MIN_WIDTH],
                "EngineConfig.onnxruntime.intra_op_num_threads": THREADS,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            })
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        return self._engine

    def warm_up(self) -> None:
        """Load the models now (about a second) rather than on the first question."""
        with self._lock:
            self._loaded()

    def lines(self, image: Image.Image) -> tuple[list[OcrLine], bool]:
        """The image's OCR lines in reading order, and whether they came from the cache."""
        rgb = image.convert("RGB")
        key = hashlib.blake2b(rgb.tobytes(), digest_size=16,
                              person=b"vistarag-qocr").hexdigest() + f"{rgb.size}"
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key], True
            result = self._loaded()(np.asarray(rgb))
            found = _ocr_lines(result)
            self._cache[key] = found
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return found, False

    def read(self, image: Image.Image) -> QueryImageText:
        """Read ``image``: tidied lines and UI labels, with the time it took."""
        started = time.perf_counter()
        found, cached = self.lines(image)
        lines, labels = tidy(found)
        ms = round((time.perf_counter() - started) * 1000, 1)
        return QueryImageText(lines=lines, labels=labels, readings=chart_readings(found), ms=ms,
                              cached=cached)


def _ocr_lines(result: Any) -> list[OcrLine]:
    if result is None or result.txts is None or result.boxes is None:
        return []
    out = []
    for text, score, box in zip(result.txts, result.scores, result.boxes, strict=False):
        text = str(text).strip()
        if text:
            xs, ys = box[:, 0], box[:, 1]
            bbox = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
            out.append(OcrLine(text=text, score=float(score), bbox=bbox))
    out.sort(key=lambda ln: (round(ln.bbox[1] / 8), ln.bbox[0]))
    return out


def is_noise(line: OcrLine) -> bool:
    """An icon or a fragment: no run of two letters or digits, or a short, unsure read."""
    if not _WORD.search(line.text):
        return True
    return len(line.text) < 6 and line.score < NOISE_SCORE


def is_sentence(text: str) -> bool:
    """A title, message or sentence rather than a menu item or button."""
    return len(_WORD.findall(text)) >= LINE_WORDS or len(text) >= LINE_CHARS


def mostly_latin(texts: list[str]) -> bool:
    """Whether the letters of ``texts`` are (``LATIN_SHARE``) Latin script."""
    letters = [ch for text in texts for ch in text if ch.isalpha()]
    latin = sum(1 for ch in letters if unicodedata.name(ch, "").startswith("LATIN"))
    return not letters or latin >= LATIN_SHARE * len(letters)


def _kept_glyph(ch: str) -> bool:
    """Latin letters, digits, spaces and ASCII-range punctuation; not CJK, symbols or icons."""
    if ch.isascii():
        return True
    kind = unicodedata.category(ch)
    if kind[0] == "L":
        return unicodedata.name(ch, "").startswith("LATIN")
    return kind in ("Mn", "Nd", "Pd", "Pi", "Pf", "Sc", "Zs") or ch in "\u2026\u00b0"


def strip_glyphs(text: str) -> str:
    """Latin-script OCR text without the icons read as other glyphs: ``"Search 冈 AutoSave Off
    8 ④ 口 ×"`` -> ``"Search AutoSave Off 8"`` (tokens left empty go, spaces collapse)."""
    return " ".join(kept for token in text.split()
                    if (kept := "".join(ch for ch in token if _kept_glyph(ch))))


def as_label(text: str) -> str:
    """A UI label as shown, or "" for none: stray single letters at its ends (an icon read as
    "X" before "Cut", a chevron read as "v" after "Share") and bare numbers (a sheet's row
    numbers, a badge count) dropped."""
    tokens = " ".join(text.split()).split(" ")
    while len(tokens) > 1 and _stray(tokens[0]):
        tokens.pop(0)
    while len(tokens) > 1 and _stray(tokens[-1]):
        tokens.pop()
    label = " ".join(tokens)
    return "" if _NUMBER.match(label) or not _WORD.search(label) else label


def _stray(token: str) -> bool:
    letters = [ch for ch in token if ch.isalnum()]
    return len(letters) <= 1 and not token.isdigit()


def tidy(found: list[OcrLine]) -> tuple[list[str], list[str]]:
    """Lines (long items of each visual row, joined) and UI labels (short items, once each)."""
    if mostly_latin([ln.text for ln in found]):
        found = [replace(ln, text=strip_glyphs(ln.text)) for ln in found]
    lines: list[str] = []
    labels: dict[str, None] = {}
    for row in rows_of([ln for ln in found if ln.text and not is_noise(ln)]):
        long = [ln.text for ln in row if is_sentence(ln.text)]
        if long:
            lines.append("  ".join(" ".join(t.split()) for t in long))
        for ln in row:
            if not is_sentence(ln.text) and (label := as_label(ln.text)):
                labels.setdefault(label, None)
    return lines, list(labels)


def parse_text(text: str) -> tuple[list[str], list[str]]:
    """Lines and UI labels back from ``QueryImageText.text`` (chart readings are lines)."""
    lines: list[str] = []
    labels: list[str] = []
    for line in text.splitlines():
        if line.startswith(LABELS_PREFIX):
            labels += [lb.strip() for lb in line.removeprefix(LABELS_PREFIX).split(", ")]
        elif line.strip():
            lines.append(line.strip())
    return lines, [lb for lb in labels if lb]


_READER: QueryOcr | None = None
_READER_LOCK = threading.Lock()


def query_ocr() -> QueryOcr:
    """The process-wide query-image reader."""
    global _READER
    with _READER_LOCK:
        if _READER is None:
            _READER = QueryOcr()
        return _READER


def read_query_image(image: Image.Image) -> QueryImageText:
    """``query_ocr().read(image)``."""
    return query_ocr().read(image)
