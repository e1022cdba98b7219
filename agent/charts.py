"""Bar charts read from OCR boxes: each category label with the value printed over its bar.

OCR reads a bar chart's value labels top to bottom, by bar height ("530 472 455 410"), and its
category labels as one row ("Q1 Q2 Q3 Q4"), so which value is Q4's is lost in the text. The
boxes keep it: a value sits in its category's column. ``chart_readings`` pairs them as a table
row under the chart's title ("Revenue by quarter 2024: Q1 = 410; Q2 = 455; Q3 = 472; Q4 =
530"), the form table rows take everywhere, for retrieval, answers and the chat model alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, TypeVar

_VALUE = re.compile(r"^[-+]?[$€£¥]?\s?\d[\d,.]*\s?(%|[kKmMbB]n?)?$")
_YEAR = re.compile(r"^(19|20)\d\d$")
MIN_BARS = 3  # fewer aligned pairs than this is no chart
MAX_LABEL_CHARS = 16
ROW_TOLERANCE = 8.0  # px: boxes whose tops are this close share a row


class Box(Protocol):
    text: str
    bbox: tuple[float, float, float, float]


B = TypeVar("B", bound=Box)


def _centre(box: Box) -> float:
    return (box.bbox[0] + box.bbox[2]) / 2


def rows_of(boxes: Sequence[B]) -> list[list[B]]:
    """Boxes in reading order grouped into visual rows: a box whose top is within
    ``ROW_TOLERANCE`` of its row's first box joins that row."""
    rows: list[list[B]] = []
    for box in boxes:
        if rows and abs(rows[-1][0].bbox[1] - box.bbox[1]) < ROW_TOLERANCE:
            rows[-1].append(box)
        else:
            rows.append([box])
    return rows


def _rows(boxes: Sequence[Box]) -> list[list[Box]]:
    ordered = sorted(boxes, key=lambda b: (b.bbox[1], b.bbox[0]))
    return [sorted(row, key=lambda b: b.bbox[0]) for row in rows_of(ordered)]


def _pairs(labels: list[Box], boxes: Sequence[Box]) -> list[tuple[Box, Box]]:
    """Each label with the one value above it in its column, or nothing when any column holds
    none or several (a table, a stacked chart)."""
    centres = [_centre(b) for b in labels]
    gaps = [b - a for a, b in zip(centres, centres[1:], strict=False)]
    top = min(b.bbox[1] for b in labels)
    out = []
    for i, label in enumerate(labels):
        near = [g for g in (gaps[i - 1] if i else None, gaps[i] if i < len(gaps) else None) if g]
        half = min(near) / 2 if near else 0.0
        above = [b for b in boxes if b.bbox[3] <= top + 2 and _VALUE.match(b.text.strip())
                 and abs(_centre(b) - centres[i]) < half]
        if len(above) != 1:
            return []
        out.append((label, above[0]))
    return out


def chart_readings(boxes: Sequence[Box]) -> str:
    """"Title: Q1 = 410; Q2 = 455; ..." for the lowest row of at least three short labels whose
    columns each hold exactly one value above it; "" when the boxes are no such chart. The
    title is the text above every value ("Chart" when there is none)."""
    rows = _rows(boxes)
    for row in reversed(rows):
        labels = [b for b in row if b.text.strip()]
        if len(labels) < MIN_BARS or any(len(b.text.strip()) > MAX_LABEL_CHARS for b in labels):
            continue
        texts = [b.text.strip() for b in labels]
        if all(_VALUE.match(t) for t in texts) and not all(_YEAR.match(t) for t in texts):
            continue  # a row of values, not of categories (years are categories)
        pairs = _pairs(labels, boxes)
        if len(pairs) >= MIN_BARS:
            cells = "; ".join(f"{label.text.strip()} = {value.text.strip()}"
                              for label, value in pairs)
            return f"{_title(rows, [value for _, value in pairs]) or 'Chart'}: {cells}"
    return ""


def _title(rows: list[list[Box]], values: list[Box]) -> str:
    """The rows above the chart's values (its title and subtitle), one line."""
    top = min(b.bbox[1] for b in values)
    words = [b.text.strip() for row in rows for b in row if b.bbox[3] <= top + 2]
    return " ".join(w for w in words if w).replace(":", "")[:120]
