"""Citations as a reader sees them: numbered 1, 2, 3 in order of first use, each with the
sentence or table row that matched and its neighbours.

``renumber`` rewrites an answer's ``[n]`` markers (n = position in the hit list the answer was
written from) so the first source cited is [1], the next new one [2], and so on; markers that
point at no hit are removed; hits that are the same source for a reader (``source_key``: one
PDF page, one region of an image, one second of a video) share one number and one citation.
``Renumberer`` does the same to an answer as it streams, so the reader sees the final numbers
from the first token. ``best_snippet`` picks what to show of a hit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Sequence
from pathlib import PurePath

from vistarag.agent.ingest.images import IMAGE_SUFFIXES
from vistarag.agent.ingest.tables import COLUMNS_PREFIX
from vistarag.agent.types import Citation, Hit

_MARKER = re.compile(r"\[\s*(\d+(?:\s*(?:[,;]|[-\u2013])\s*\d+)*)\s*\]")
_MAX_RANGE = 50
_WORD = re.compile(r"\w+", re.UNICODE)
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])|\n+")
_STOP_TEXT = """a an and are as at be by for from has have in is it its of on or that the this to
    was
    were what which who why how when where with does did do i you your our we they their there
    please tell show me about"""
_STOP = frozenset(_STOP_TEXT.split())
SNIPPET_CHARS = 320
MAX_REGIONS = 256  # an image's OCR regions searched for a hit's number (``region_number``)


def is_image_region(hit: Hit) -> bool:
    """A text region read from an image file (its OCR passage with a box), not the image."""
    suffix = PurePath(hit.source.replace("\\", "/")).suffix.lower()
    return (suffix in IMAGE_SUFFIXES and not hit.is_image and hit.page is None
            and hit.t_start is None and bool(hit.bbox) and len(hit.bbox or ()) == 4)


def source_key(hit: Hit) -> tuple[Hashable, ...]:
    """What makes two hits the same source for a reader: the same document and the same page,
    the same region of an image, or the same second of a video (a PDF page's passages, a
    keyframe and the words said at that second, are one source)."""
    doc = hit.doc_id or hit.source
    if hit.t_start is not None:
        return (doc, "t", int(hit.t_start))
    if hit.page is not None:
        return (doc, "p", hit.page)
    if is_image_region(hit):
        return (doc, "r", *(round(v) for v in hit.bbox or ()))
    return (doc,)


def region_number(hit: Hit) -> int | None:
    """The number of an image file's OCR region (1 = the first region read, top down), found
    from the hit's point id (``image-ocr<i>`` units); None for anything else."""
    if not is_image_region(hit) or not hit.content_hash:
        return None
    from vistarag.agent.index.records import point_id

    for i in range(MAX_REGIONS):
        if point_id(hit.doc_id, hit.content_hash, f"image-ocr{i}") == hit.id:
            return i + 1
    return None


def marker_numbers(group: str) -> list[int]:
    """The numbers of one marker's inside ("1, 3", "2-4": a range of at most 50)."""
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group):
        bounds = re.split(r"\s*[-\u2013]\s*", part)
        if len(bounds) == 2:
            lo, hi = int(bounds[0]), int(bounds[1])
            out.extend(range(lo, hi + 1) if 0 <= hi - lo <= _MAX_RANGE else [])
        else:
            out.append(int(bounds[0]))
    return out


class Renumberer:
    """Rewrites ``[n]`` markers as text arrives, so a streamed answer shows the numbers its
    final form will have: the first source cited is [1], the next new one [2], and so on.

    ``feed`` returns what can be shown now; a possible marker cut off at the end of a piece
    ("... [1") is held back until the next piece (or ``flush``) says what it is, and so are
    trailing spaces. With ``limit`` (the number of sources), numbers outside ``1..limit`` are
    dropped, with the spaces before them. With ``keys`` (``source_key`` of each source), sources
    with the same key get the same number, and a marker repeating the one just before it
    ("[1] [1]") is dropped.
    """

    def __init__(self, limit: int | None = None,
                 keys: Sequence[Hashable] | None = None) -> None:
        self.limit = limit
        self.keys = keys
        self.mapping: dict[int, int] = {}  # old number -> new number
        self.first_use: dict[int, str] = {}  # old number -> the answer line that first cites it
        self.dropped = False
        self._numbers: dict[Hashable, int] = {}  # source key -> new number
        self._held = ""
        self._line = ""  # the current line so far (rewritten), for ``first_use``
        self._last = ""  # the marker just written, while only spaces follow it

    def feed(self, text: str) -> str:
        text = self._held + text
        cut = _open_marker_at(text)
        cut = len(text[:cut].rstrip(" \t"))  # spaces wait: a marker dropped next takes them
        text, self._held = text[:cut], text[cut:]
        return self._rewrite(text)

    def flush(self) -> str:
        text, self._held = self._held, ""
        return self._rewrite(text)

    def _rewrite(self, text: str) -> str:
        out: list[str] = []
        pos = 0
        for match in _MARKER.finditer(text):
            marker = self._marker(match.group(1))
            before = text[pos : match.start()]
            if before.strip(" \t"):
                self._last = ""
            if not marker or marker == self._last:  # "p.3 [72,80,540,200]," reads "p.3,", not
                before = before.rstrip(" \t")  # "p.3 ,"; "[1] [1]" reads "[1]"
                marker = ""
            out.append(before)
            self._line = (self._line + before).rsplit("\n", 1)[-1]
            out.append(marker)
            self._last = marker or self._last
            pos = match.end()
        out.append(text[pos:])
        if text[pos:].strip(" \t"):
            self._last = ""
        self._line = (self._line + text[pos:]).rsplit("\n", 1)[-1]
        return "".join(out)

    def _marker(self, group: str) -> str:
        new: list[int] = []
        for n in marker_numbers(group):
            if n < 1 or (self.limit is not None and n > self.limit):
                self.dropped = True
                continue
            if n not in self.mapping:
                self.mapping[n] = self._number(n)
                self.first_use[n] = self._line
            if self.mapping[n] not in new:
                new.append(self.mapping[n])
        return "[" + ", ".join(str(n) for n in sorted(new)) + "]" if new else ""

    def _number(self, n: int) -> int:
        """The new number of source ``n``: its key's, or the next one."""
        key = self.keys[n - 1] if self.keys is not None and n <= len(self.keys) else ("#", n)
        return self._numbers.setdefault(key, len(self._numbers) + 1)


def marker_groups(text: str) -> list[str]:
    """The inside of each ``[n]`` marker in ``text``, in order ("[1, 3]" -> "1, 3")."""
    return [m.group(1) for m in _MARKER.finditer(text)]


_OPEN_MARKER = re.compile(r"\[[\d\s,;\-\u2013]*$")


def _open_marker_at(text: str) -> int:
    """Where a marker that may still be completing starts at the end of ``text`` (else its
    length)."""
    m = _OPEN_MARKER.search(text)
    return m.start() if m else len(text)


def renumber(
    answer: str, hits: Sequence[Hit], query: str = ""
) -> tuple[str, list[Citation]]:
    """Contiguous citation numbers in order of first use, and the citations they point at.

    ``[3] ... [1] ... [3]`` over hits h1..h3 becomes ``[1] ... [2] ... [1]`` with citations
    (1 -> h3, 2 -> h1). Groups and ranges (``[1, 3]``, ``[2-4]``) are renumbered member by
    member; numbers outside ``1..len(hits)`` are dropped (a marker left empty disappears).
    Hits with the same ``source_key`` share a number and one citation (``merged``), and a
    marker that repeats the one before it is dropped. Each citation's snippet is
    ``best_snippet`` of its hits for the answer lines that first cite them together with
    ``query``. A streamed answer shows the same numbers when its pieces go through
    ``numbering(hits)``.
    """
    numbering = numbering_for(hits)
    text = numbering.feed(answer) + numbering.flush()
    if numbering.dropped:  # "see [9]." with no source 9 reads "see."
        text = re.sub(r"[ \t]+([.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", text))
    cited: dict[int, list[int]] = {}  # new number -> old numbers, in order of first use
    for old, new in numbering.mapping.items():
        cited.setdefault(new, []).append(old)
    citations = []
    for new, olds in sorted(cited.items()):
        said = " ".join(dict.fromkeys(numbering.first_use[old] for old in olds))
        # what the answer says it took from the source, and what was asked
        citations.append(merged(new, [hits[old - 1] for old in olds], f"{said} {query}"))
    return text, number_regions(citations)


def numbering_for(hits: Sequence[Hit]) -> Renumberer:
    """The ``Renumberer`` that gives an answer over ``hits`` its final numbers."""
    return Renumberer(limit=len(hits), keys=[source_key(h) for h in hits])


def merged(n: int, hits: Sequence[Hit], query: str) -> Citation:
    """One citation numbered ``n`` for hits that are one source (``source_key``): the first
    hit's place, every passage's box, the latest end, and the best snippet of them all."""
    citation = Citation.from_hit(n, hits[0])
    content = "\n".join(dict.fromkeys(h.content() for h in hits))
    citation.snippet = best_snippet(content, query)
    if is_image_region(hits[0]):  # 0: a region whose number ``number_regions`` picks
        citation.region = region_number(hits[0]) or 0
    boxes = _passage_boxes(hits)
    if boxes:
        citation.bbox = boxes[0]
    if len(boxes) > 1:
        citation.boxes = boxes
    ends = [h.t_end for h in hits if h.t_end is not None]
    citation.t_end = max(ends) if ends else citation.t_end
    citation.blob = next((h.blob for h in hits if h.blob), None)
    return citation


def cite_hits(hits: Sequence[Hit], query: str = "") -> list[Citation]:
    """Search results as citations: one per source (``source_key``), numbered in rank order,
    each merging the hits of its source."""
    groups: dict[Hashable, list[Hit]] = {}
    for hit in hits:
        groups.setdefault(source_key(hit), []).append(hit)
    return number_regions([merged(n, group, query)
                           for n, group in enumerate(groups.values(), start=1)])


def _passage_boxes(hits: Sequence[Hit]) -> list[list[float]]:
    """The distinct boxes of the passages (a page render's whole-page box only without them)."""
    texts = [h.bbox for h in hits if h.bbox and not h.is_image]
    boxes = texts or [h.bbox for h in hits if h.bbox]
    return [list(b) for b in dict.fromkeys(tuple(b) for b in boxes if b)]


def number_regions(citations: list[Citation]) -> list[Citation]:
    """Give each image region whose number ``region_number`` could not find (``region == 0``)
    the next number free in its image, so two regions of one image never read alike."""
    taken: dict[str, set[int]] = {}
    for c in citations:
        if c.region:
            taken.setdefault(c.doc_id, set()).add(c.region)
    for c in citations:
        if c.region == 0:
            used = taken.setdefault(c.doc_id, set())
            c.region = next(i for i in range(1, len(used) + 2) if i not in used)
            used.add(c.region)
    return citations


def _terms(text: str) -> list[str]:
    out = []
    for w in _WORD.findall(text.lower()):
        if len(w) < 2 or w in _STOP:
            continue
        out.append(w[:-1] if len(w) > 3 and w.endswith("s") else w)
    return out


def units(text: str) -> list[str]:
    """Sentences of prose and lines of tables / lists, whitespace collapsed, empty ones dropped."""
    out = []
    for piece in _SPLIT.split(text):
        piece = " ".join(piece.split())
        if piece and _WORD.search(piece):
            out.append(piece)
    return out


def best_snippet(text: str, query: str, max_chars: int = SNIPPET_CHARS) -> str:
    """The sentence or table row of ``text`` that best matches ``query``, with the sentence
    before and after it as long as they fit in ``max_chars``; the start of ``text`` when
    nothing matches."""
    parts = [p for p in units(text) if not p.startswith(COLUMNS_PREFIX)] or units(text)
    if not parts:  # (a table's "Columns: ..." line only names what its rows repeat)
        return ""
    q = set(_terms(query))
    best, best_score = 0, 0.0
    if q:
        bags = [set(_terms(p)) for p in parts]
        df = {t: sum(1 for b in bags if t in b) for t in q}
        for i, bag in enumerate(bags):
            common = q & bag
            score = sum(math.log(1 + len(parts) / df[t]) for t in common)
            score += len(common) / (len(bag) + 1)  # denser wins among equals
            if score > best_score:
                best, best_score = i, score
    chosen = parts[best]
    if len(chosen) > max_chars:
        return _cut(chosen, max_chars)
    lo = hi = best
    for j in (best + 1, best - 1):  # the sentence after, then the one before, if they fit
        if 0 <= j < len(parts):
            candidate = " ".join(parts[min(lo, j) : max(hi, j) + 1])
            if len(candidate) <= max_chars:
                lo, hi = min(lo, j), max(hi, j)
    return " ".join(parts[lo : hi + 1])


def highlight(snippet: str, query: str, mark: tuple[str, str] = ("**", "**")) -> str:
    """``snippet`` with the query's words marked (Markdown bold by default)."""
    q = set(_terms(query))
    if not q:
        return snippet

    def sub(m: re.Match[str]) -> str:
        w = m.group(0)
        low = w.lower()
        key = low[:-1] if len(low) > 3 and low.endswith("s") else low
        return f"{mark[0]}{w}{mark[1]}" if key in q else w

    return _WORD.sub(sub, snippet)


def _cut(text: str, max_chars: int) -> str:
    return text[: max_chars - 1].rsplit(" ", 1)[0] + "\u2026"
