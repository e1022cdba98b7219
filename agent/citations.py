"""Citations as a reader sees them: numbered 1, 2, 3 in order of first use, each with the
sentence or table row that matched and its neighbours.

``renumber`` rewrites an answer's ``[n]`` markers (n = position in the hit list the answer was
written from) so the first source cited is [1], the next new one [2], and so on; markers that
point at no hit are removed; ``Renumberer`` does the same to an answer as it streams, so
the reader sees the final numbers from the first token. ``best_snippet`` picks what to show of
a hit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

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
    dropped, with the spaces before them.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.mapping: dict[int, int] = {}  # old number -> new number
        self.first_use: dict[int, str] = {}  # old number -> the answer line that first cites it
        self.dropped = False
        self._held = ""
        self._line = ""  # the current line so far (rewritten), for ``first_use``

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
            if not marker:  # "p.3 [72,80,540,200]," reads "p.3,", not "p.3 ,"
                before = before.rstrip(" \t")
            out.append(before)
            self._line = (self._line + before).rsplit("\n", 1)[-1]
            out.append(marker)
            pos = match.end()
        out.append(text[pos:])
        self._line = (self._line + text[pos:]).rsplit("\n", 1)[-1]
        return "".join(out)

    def _marker(self, group: str) -> str:
        new: list[int] = []
        for n in marker_numbers(group):
            if n < 1 or (self.limit is not None and n > self.limit):
                self.dropped = True
                continue
            if n not in self.mapping:
                self.mapping[n] = len(self.mapping) + 1
                self.first_use[n] = self._line
            if self.mapping[n] not in new:
                new.append(self.mapping[n])
        return "[" + ", ".join(str(n) for n in sorted(new)) + "]" if new else ""


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
    Each citation's snippet is ``best_snippet`` of its hit for the answer line that first cites
    it together with ``query``. A streamed answer shows the same numbers when its
    pieces go through a ``Renumberer(len(hits))``.
    """
    numbering = Renumberer(limit=len(hits))
    text = numbering.feed(answer) + numbering.flush()
    if numbering.dropped:  # "see [9]." with no source 9 reads "see."
        text = re.sub(r"[ \t]+([.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", text))
    citations = []
    for old, new in sorted(numbering.mapping.items(), key=lambda kv: kv[1]):
        hit = hits[old - 1]
        citation = Citation.from_hit(new, hit)
        # what the answer says it took from the source, and what was asked
        citation.snippet = best_snippet(hit.content(), f"{numbering.first_use[old]} {query}")
        citations.append(citation)
    return text, citations


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
