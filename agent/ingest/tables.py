"""Tables from a PDF page's word geometry, as rows that keep their label and column headers.

Financial statements are borderless tables: a line item on the left, numbers right-aligned in
columns, years or periods above them. The plain text layer reads them as
``Accounts payable\\n$\\n25,309 $\\n34,616``, which shares little with a question about "accounts
payable in 2017". Here each row becomes one line such as::

    Accounts payable (Current liabilities): December 31, 2016 = $25,309; December 31, 2017 = $34,616

with the table's title above the rows, so every chunk of a statement says which statement,
which line item and which year each figure belongs to. Only PyMuPDF's ``get_text("words")``
is used (fast, no layout model).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

_NUMERIC = re.compile(
    r"^[\(\-\u2013\u2014]?\$?\s*[\(\-]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)\s*\)?\s*%?\)?$"
    r"|^[\-\u2013\u2014]+$|^n/?[am]$",
    re.I,
)
_CURRENCY = {"$", "€", "£", "¥", "%", "(", ")"}
_SIGNATURE = re.compile(r"\s*/s/", re.I)  # a conformed signature in an electronic filing
_PERIOD_HINT = re.compile(
    r"(?:19|20)\d\d|\bq[1-4]\b|quarter|months|year|fiscal|ended|december|january|february|march|"
    r"april|may|june|july|august|september|october|november|total|change|%",
    re.I,
)
_SPANNING_PERIOD = re.compile(  # a period over a group of columns ("Years Ended", "Fiscal 2024")
    r"(?:19|20)\d\d|\bmonths\b|\bweeks\b|\b(?:years?|quarters?)\s+ended|\bfiscal\b|\bq[1-4]\b", re.I
)
_TITLE_SKIP = re.compile(r"^\s*(table of contents|index)\s*$", re.I)
_CURRENCY_GAP = re.compile(r"([$€£¥(])\s+(?=[\d(])")
MIN_ROWS = 3  # data rows a table needs
COLUMNS_PREFIX = "Columns: "  # a table chunk's header line (answers quote rows, not this)
MAX_HEADER_LINES = 4


@dataclass
class Cell:
    text: str
    x0: float
    x1: float

    @property
    def xc(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def numeric(self) -> bool:
        return bool(_NUMERIC.match(self.text.replace(" ", "")))


@dataclass
class Line:
    y0: float
    y1: float
    cells: list[Cell] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(c.text for c in self.cells)


@dataclass
class Table:
    """A detected table: title, per-column headers and rows of (label, values)."""

    title: str
    headers: list[str]
    rows: list[tuple[str, list[str]]]
    bbox: tuple[float, float, float, float]

    def row_texts(self) -> list[str]:
        """Each row as ``label: header = value; ...`` (empty cells left out)."""
        out = []
        short = short_headers(self.headers)
        for label, values in self.rows:
            parts = [f"{h} = {v}" if h else v for h, v in zip(short, values, strict=False) if v]
            if parts:
                out.append(f"{label}: " + "; ".join(parts) if label else "; ".join(parts))
        return out


def short_headers(headers: list[str]) -> list[str]:
    """Column headers without the words every one of them starts with ("Year Ended ...")."""
    split = [h.split() for h in headers]
    if len(split) < 2 or not all(split):
        return headers
    common = 0
    while all(len(s) > common + 1 and s[common] == split[0][common] for s in split):
        common += 1
    return [" ".join(s[common:]) for s in split]


def lines_from_words(words: Sequence[Sequence]) -> list[Line]:
    """Visual lines (words whose vertical extents overlap), each split into cells at wide gaps.

    ``words`` are PyMuPDF word tuples ``(x0, y0, x1, y1, text, ...)``.
    """
    ordered = sorted(words, key=lambda w: ((w[1] + w[3]) / 2, w[0]))
    rows: list[list[Sequence]] = []
    top = bottom = 0.0  # the vertical extent of the last row
    for w in ordered:
        y0, y1 = w[1], w[3]
        yc = (y0 + y1) / 2
        if rows and top - 1 <= yc <= bottom + 1 and abs(yc - (top + bottom) / 2) < (
            bottom - top
        ) * 0.6:
            rows[-1].append(w)
            if y0 < top:
                top = y0
            if y1 > bottom:
                bottom = y1
            continue
        rows.append([w])
        top, bottom = y0, y1
    lines = []
    for row in rows:
        row.sort(key=lambda w: w[0])
        height = max(w[3] - w[1] for w in row) or 8.0
        gap_limit = max(3.0, 0.55 * height)
        cells: list[Cell] = []
        prev: Cell | None = None
        for w in row:
            text = str(w[4])
            if prev is not None and w[0] - prev.x1 <= gap_limit and not (
                _is_number_word(text) and prev.text not in _CURRENCY
                and _is_number_word(prev.text.split()[-1])
            ):
                prev.text = f"{prev.text} {text}"
                if w[2] > prev.x1:
                    prev.x1 = w[2]
            else:
                prev = Cell(text, w[0], w[2])
                cells.append(prev)
        cells = _attach_currency(cells)
        lines.append(Line(min(w[1] for w in row), max(w[3] for w in row), cells))
    return lines


def _is_number_word(text: str) -> bool:
    return bool(_NUMERIC.match(text)) and any(ch.isdigit() for ch in text)


def _attach_currency(cells: list[Cell]) -> list[Cell]:
    """A lone "$" / "(" cell belongs to the number after it; a lone ")" or "%" to the one before."""
    out: list[Cell] = []
    pending: Cell | None = None
    for cell in cells:
        t = cell.text.strip()
        if t in ("$", "€", "£", "¥", "(", "$ ("):
            pending = cell if pending is None else Cell(pending.text + t, pending.x0, cell.x1)
            continue
        if pending is not None:
            cell = Cell(f"{pending.text}{cell.text}", cell.x0, cell.x1)
            pending = None
        if t in (")", "%", ")%") and out and out[-1].numeric:
            out[-1] = Cell(out[-1].text + t, out[-1].x0, cell.x1)
            continue
        out.append(cell)
    if pending is not None:
        out.append(pending)
    return out


_YEARISH = re.compile(r"^(?:19|20)\d\d$|^\d{1,2},?$")


_YEAR_COLUMN = re.compile(r"(?:19|20)\d\d(?:\s*[-\u2013/]\s*(?:19|20)?\d\d)?")


def is_header_line(line: Line) -> bool:
    """Years / dates only ("2016  2017", "July 29, 2023  July 30, 2022"), or a units label
    over year columns ("(dollars in millions)  2022  2021  2022-2021"): a column header."""
    label, values = _split_label(line)
    if len(values) >= 2 and all(_YEAR_COLUMN.fullmatch(v.text.strip()) for v in values):
        return True
    nums = [c for c in line.cells if c.numeric]
    if not nums or not any(re.search(r"(?:19|20)\d\d", c.text) for c in line.cells):
        return False
    for cell in line.cells:
        for tok in cell.text.split():
            if not (_YEARISH.match(tok) or _PERIOD_HINT.search(tok) or tok.lower() in _MONTHS):
                return False
    return True


_MONTHS = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
           "dec", "ended", "as", "of", "at", "and", "weeks", "three", "six", "nine", "twelve"}


def _split_label(line: Line) -> tuple[str, list[Cell]]:
    """Leading non-numeric cells form the label; the numeric cells after it are values."""
    label: list[str] = []
    values: list[Cell] = []
    for cell in line.cells:
        if cell.numeric and any(ch.isdigit() or ch in "-\u2013\u2014" for ch in cell.text):
            values.append(cell)
        elif not values:
            label.append(cell.text)
        else:
            values.append(cell)  # text among numbers (e.g. "n/a", "—"), kept in place
    return " ".join(label), values


def _columns(value_rows: list[list[Cell]]) -> list[tuple[float, float]]:
    """Column extents from the values' right edges (numbers are right-aligned)."""
    edges = sorted(c.x1 for row in value_rows for c in row)
    groups: list[list[float]] = []
    for e in edges:
        if groups and e - groups[-1][-1] <= 14:
            groups[-1].append(e)
        else:
            groups.append([e])
    # a column must hold values in several rows
    need = max(2, len(value_rows) // 4)
    cols = []
    for g in groups:
        if len(g) >= need:
            x1 = sum(g) / len(g)
            x0 = min(c.x0 for row in value_rows for c in row if abs(c.x1 - x1) <= 14)
            cols.append((x0, x1))
    return cols


def _column_of(cell: Cell, cols: list[tuple[float, float]]) -> int:
    return min(range(len(cols)), key=lambda i: abs(cols[i][1] - cell.x1))


def find_tables(lines: list[Line]) -> list[Table]:
    """Runs of lines where most lines carry a label and 2+ numbers; header lines above them."""
    tables: list[Table] = []
    i = 0
    n = len(lines)
    while i < n:
        label, values = _split_label(lines[i])
        if is_header_line(lines[i]) or (len(values) < 2 and not (len(values) == 1 and label)):
            i += 1
            continue
        # grow the run: data lines, and label-only lines (section headings) between them
        start = i
        j = i
        data = 0
        last_data = i
        while j < n:
            lab, vals = _split_label(lines[j])
            if is_header_line(lines[j]):
                break
            if vals:
                data += 1
                last_data = j
            elif not lab or j - last_data > 2 or len(lab) > 120:
                break
            j += 1
        end = last_data + 1
        if data >= MIN_ROWS:
            table = _build(lines, start, end)
            if table is not None:
                tables.append(table)
                i = end
                continue
        i = max(i + 1, start + 1)
    return tables


def _build(lines: list[Line], start: int, end: int) -> Table | None:
    body = lines[start:end]
    split = [_split_label(ln) for ln in body]
    cols = _columns([vals for _, vals in split if vals])
    if len(cols) < 1 or sum(1 for _, v in split if len(v) >= 1) < MIN_ROWS:
        return None
    left = min(c[0] for c in cols) - 6
    # header lines: right above the body, cells within the value columns' span
    headers = [""] * len(cols)
    header_lines: list[Line] = []
    k = start - 1
    skipped = 0
    while k >= 0 and len(header_lines) < MAX_HEADER_LINES:
        ln = lines[k]
        cells = [c for c in ln.cells if c.x1 > left - 40]
        if not cells and not header_lines and skipped < 2 and len(ln.text) < 80:
            skipped += 1  # a section heading ("Current assets:") between header and rows
            k -= 1
            continue
        if not cells or any(len(c.text) > 60 for c in cells):
            break
        if header_lines and not (
            any(_PERIOD_HINT.search(c.text) for c in cells) or _over_columns(cells, cols)
        ):
            break
        header_lines.insert(0, ln)
        k -= 1
    if not header_lines:
        k = start - 1
    first_section = [_split_label(ln)[0] for ln in lines[k + 1 + len(header_lines) : start]]
    centres = [(c[0] + c[1]) / 2 for c in cols]
    for li, ln in enumerate(header_lines):
        cells = [c for c in ln.cells if c.x1 > left - 40]
        below = header_lines[li + 1].cells if li + 1 < len(header_lines) else []
        if len(below) < len(cols):
            below = []  # the next line spans columns itself ("Three Months Ended" x2)
        per_col: list[list[str]] = [[] for _ in cols]
        for cell in cells:  # each cell to the column it sits over (or nearest to)
            ci = min(range(len(cols)), key=lambda i: abs(centres[i] - cell.xc))
            per_col[ci].append(cell.text)
        for ci, texts in enumerate(per_col):
            if not texts:  # a spanning header above several columns ("Fiscal 2024")...
                nearest = min(cells, key=lambda c: abs(c.xc - centres[ci]))
                # ...unless it is the first line of one column's wrapped header ("Total
                # Stores at" over "Beginning of Quarter", in a line with a cell per column),
                # which spans nothing
                wrapped = not _SPANNING_PERIOD.search(nearest.text) and any(
                    _stacked(nearest, b) for b in below
                )
                texts = [] if wrapped else [nearest.text]
            headers[ci] = f"{headers[ci]} {' '.join(texts)}".strip()
    title = _title(lines, k)
    rows: list[tuple[str, list[str]]] = []
    section = first_section[-1].rstrip(":") if first_section else ""
    pending_label = ""
    for (label, values) in split:
        if not values:
            if pending_label and label[:1].islower():
                pending_label = f"{pending_label} {label}"
            else:
                pending_label = label
            continue
        if pending_label and label[:1].islower():  # a label wrapped onto the data line
            label = f"{pending_label} {label}"
        elif pending_label:
            section = pending_label.rstrip(":")
        pending_label = ""
        closes = label.lower().startswith("total")
        cells = [""] * len(cols)
        for cell in values:
            ci = _column_of(cell, cols)
            cells[ci] = _CURRENCY_GAP.sub(r"\1", f"{cells[ci]} {cell.text}".strip())
        if not label and sum(1 for v in cells if v) < 2:
            continue  # a page number or footnote figure, not a row
        shown = label or "(continued)"
        if section and label and not label.lower().startswith(("total", section.lower()[:10])):
            shown = f"{label} ({section[:60]})"
        rows.append((shown, cells))
        if closes:
            section = ""
    if any(_SIGNATURE.match(cell) for label, cells in rows for cell in (label, *cells)):
        # A signature block ("/s/ NAME" beside "Date:" and "By:") lines up like a table, and
        # its heading prints the company's name, so every question naming the company found
        # it; its words stay in the page's text chunks.
        return None
    x0 = min(c.x0 for ln in body for c in ln.cells)
    x1 = max(c.x1 for ln in body for c in ln.cells)
    top = (header_lines[0] if header_lines else body[0]).y0
    return Table(title, headers, rows, (x0, top, x1, body[-1].y1))


def _stacked(upper: Cell, lower: Cell) -> bool:
    """Two header cells of about the same width aligned one above the other (left edges or
    centres): one header that wraps onto two lines. ("Three Months Ended" over the "2023" of
    "July 29, 2023" shares a left edge but spans two columns.)"""
    widths = sorted((upper.x1 - upper.x0, lower.x1 - lower.x0))
    aligned = abs(upper.x0 - lower.x0) <= 4 or abs(upper.xc - lower.xc) <= 4
    return aligned and widths[0] >= 0.5 * widths[1]


def _over_columns(cells: list[Cell], cols: list[tuple[float, float]]) -> bool:
    """Short cells that each sit over a value column: a stacked header line ("Beginning of
    Stores Stores End of Second" above "Second Quarter Opened Closed Quarter")."""
    return len(cells) >= 2 and all(
        len(c.text.split()) <= 4 and any(c.x0 <= x1 + 10 and c.x1 >= x0 - 10 for x0, x1 in cols)
        for c in cells
    )


LEAD_IN_CHARS = 250  # a sentence introducing the table right above it is its title too


def _title(lines: list[Line], above: int) -> str:
    """Up to three short lines above the header (statement name, units), nearest last; or the
    sentence that introduces the table ("... were as follows:")."""
    picked: list[str] = []
    k = above
    while k >= 0 and len(picked) < 3:
        text = lines[k].text.strip()
        k -= 1
        if not text or _TITLE_SKIP.match(text):
            continue
        if len(text) > 100:
            lead_in = " ".join([text, *picked])  # (a sentence may wrap onto a second line)
            if len(picked) <= 1 and lead_in.endswith(":") and len(lead_in) <= LEAD_IN_CHARS:
                picked.insert(0, text)  # "Revenue mix ... by category were as follows:"
            break
        picked.insert(0, text)
    return " ".join(picked)


HEADING_LINES = 3
_DIGITS = re.compile(r"\d{3}")  # a figure: a data line, not a heading


def chunk_title(text: str) -> str:
    """The title of a chunk: for a table chunk (``table_chunks``) the lines above its
    "Columns:" line; for other text the short heading lines it opens with ("ADOBE INC." /
    "CONSOLIDATED STATEMENTS OF INCOME" / "(In millions)"), "" when it opens with a sentence."""
    head, sep, _ = text.partition(f"\n{COLUMNS_PREFIX}")
    if sep:
        return head if len(head) <= 300 else ""
    heads: list[str] = []
    for line in text.split("\n")[:HEADING_LINES + 2]:
        line = line.strip()
        if not line or _TITLE_SKIP.match(line):
            continue
        sentence = line.endswith((".", ":", ";", ",")) and len(line.split()) > 3
        if len(line) > 80 or sentence or _DIGITS.search(line):  # ("ADOBE INC." is a heading)
            break
        heads.append(line)
        if len(heads) == HEADING_LINES:
            break
    return " ".join(heads)


def table_chunks(tables: Sequence[Table], max_chars: int) -> list[tuple[str, tuple]]:
    """Chunks of row lines, each starting with its table's title and column headers."""
    out: list[tuple[str, tuple]] = []
    for table in tables:
        head = table.title
        cols = [h for h in table.headers if h]
        if cols:
            columns = COLUMNS_PREFIX + " | ".join(cols)
            head = f"{head}\n{columns}" if head else columns
        buf: list[str] = []
        size = len(head)
        for row in table.row_texts():
            if buf and size + len(row) + 1 > max_chars:
                out.append(("\n".join([head, *buf]).strip(), table.bbox))
                buf, size = [], len(head)
            buf.append(row)
            size += len(row) + 1
        if buf:
            out.append(("\n".join([head, *buf]).strip(), table.bbox))
    return out
