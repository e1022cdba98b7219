"""The offline synthesizer: quotes the sentences that best match the question, with citations.

It never paraphrases or follows anything written in the documents; it only quotes them. A
question that comes with an image (a pasted screenshot) is answered in two parts: the text the
image holds (its lines and UI labels, as the query reader tidied them), then what in the
knowledge base matches that text, quoted with citations.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from vistarag.agent import docmeta
from vistarag.agent.citations import is_image_region, renumber, source_key
from vistarag.agent.imaging import title_words
from vistarag.agent.ingest.tables import COLUMNS_PREFIX
from vistarag.agent.metric_terms import line_items
from vistarag.agent.query_ocr import (
    as_label,
    is_sentence,
    mostly_latin,
    parse_text,
    strip_glyphs,
)
from vistarag.agent.rerank import is_relevant
from vistarag.agent.synth.base import (
    SynthesisRequest,
    SynthesisResult,
    TokenCallback,
)
from vistarag.agent.types import Hit, locator, time_range

NOT_FOUND = (
    "I found nothing relevant to your question in the indexed documents, so I cannot answer it "
    "from them. Try rephrasing the question, or add documents that cover it."
)
NOT_IN_DOCUMENTS = (
    "Your documents do not appear to contain this: none of the passages found answers the "
    "question closely enough. The closest matches were {refs}."
)
MAX_EXTRACTS = 4
MIN_EXTRACTS = 2
STOP_RATIO = 0.6  # a further quote must score this share of the best one and add a question term
MAX_PER_SOURCE = 2
MAX_QUOTE_CHARS = 300
MAX_LABEL_CHARS = 60  # a longer "title" is the first sentence of an untitled document

_STOPWORD_TEXT = """
    a about above after again all also am an and any are as at be been before being below
    between both but by can could did do does doing down during each few for from further had
    has have having he her here hers him his how i if in into is it its itself just me more most
    my no nor not now of off on once only or other our out over own same she should so some such
    than that the their them then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours
    please tell show explain describe give find say says said"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"\w+", re.UNICODE)
# "[12]" inside a quoted document would read as a citation of source 12.
_BRACKETED_NUMBER = re.compile(r"\[(\s*\d[\d\s,;\-\u2013]*)\]")
_MARKDOWN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+|\s+#+\s*$")
_MARKDOWN_EMPHASIS = re.compile(r"(\*\*|__|`)(.+?)\1")


def plain(text: str) -> str:
    """A Markdown heading or label as a reader says it: ``## The **Word** Processor`` ->
    ``The Word Processor`` (heading markers, bold and code marks dropped)."""
    return _MARKDOWN_EMPHASIS.sub(r"\2", _MARKDOWN_HEADING.sub("", text)).strip()


# Sentence ends, line breaks, and markup-like fence tags (``</source>``) all split sentences.
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+|</?[A-Za-z_][\w-]*(?:\s[^<>]{0,80})?>")
# Sentences that address the reader as instructions are never quoted.
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:(?:the\s+)?(?:previous|prior|above"
    r"|earlier|preceding|your|system)\s+)?(?:instructions|prompts?|rules|directions)\b"
    r"|system\s+prompt|you\s+are\s+now\b|(?:reply|respond|answer)\s+only\s+with"
    r"|<\s*/?\s*source\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Candidate:
    sentence: str
    n: int  # source number, 0 for the user's own image
    rank: int  # position among the inputs (user images first, then hits in order)
    order: int  # position of the sentence within its text
    score: float


def _stem(word: str) -> str:
    """A light suffix fold: plural 's', 'ed', 'ing' ("failed" and "fails" match "fail")."""
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def terms(text: str) -> set[str]:
    """Lower-cased content words (stopwords and 1-letter tokens dropped, plural 's' folded)."""
    out: set[str] = set()
    for word in _WORD.findall(text.lower()):
        if len(word) < 2 or word in _STOPWORDS:
            continue
        out.add(_stem(word))
    return out


_WRAPPED_LINE = re.compile(r"(?<=[^\s.!?:;])\n(?=[a-z(])")
_NORMAL = re.compile(r"[\W_]+", re.UNICODE)


def _normal(text: str) -> str:
    return _NORMAL.sub(" ", text.lower()).strip()


_DIGIT = re.compile(r"\d")
CELL_WORDS = 2  # a line this short is a table cell or chart label, not a sentence
MIN_CELL_RUN = 3  # this many such lines in a row read as one row of cells


def _join_cells(text: str) -> str:
    """Runs of very short lines (table cells, chart labels read line by line) become one line
    "Hamburg · 27 · 93.8%", so a figure is quoted with the label it belongs to."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        out.extend([" · ".join(run)] if len(run) >= MIN_CELL_RUN else run)
        run.clear()

    for line in text.split("\n"):
        cell = line.strip()
        words = cell.split()
        short = len(words) <= CELL_WORDS or all(len(w) <= 4 for w in words)  # "Q1 Q2 Q3 Q4"
        if cell and short and not cell.endswith((".", "!", "?")):
            run.append(cell)
            continue
        flush()
        out.append(line)
    flush()
    return "\n".join(out)


def sentences(text: str) -> list[str]:
    """Sentences and lines of ``text``, whitespace collapsed, very short fragments dropped.

    A line break inside a sentence (PDF layout wraps) is joined; UI and OCR lines stay apart;
    runs of table cells become one line (``_join_cells``).
    """
    out = []
    for piece in _SENTENCE_SPLIT.split(_WRAPPED_LINE.sub(" ", _join_cells(text))):
        piece = " ".join(piece.split())
        if len(piece) >= 3 and _WORD.search(piece):
            out.append(piece)
    return out


_ROW = re.compile(r"^([^:=]{2,80}?)(?:\s*\([^)]*\))?:\s.*=")


def _row_label(sentence: str) -> str:
    """The line item of a table row chunk's line ("Operating income (Operating expenses):
    2022 = 6,098; ..." -> "operating income"), normalised; "" for other sentences."""
    m = _ROW.match(sentence)
    return _normal(m.group(1)) if m else ""


class _Seen:
    """Quotes already chosen; a sentence repeating one (or contained in one) counts as seen."""

    def __init__(self) -> None:
        self._texts: list[str] = []

    def add(self, sentence: str) -> None:
        self._texts.append(_normal(sentence))

    def __contains__(self, sentence: str) -> bool:
        text = _normal(sentence)
        return any(text in seen or (seen and seen in text) for seen in self._texts)


TOTAL_ROW_EDGE = 1.25
"""A table's "Total" row outranks its other rows by this much when the question names none."""

LEAD_IN_DISCOUNT = 0.5
"""A sentence ending in ":" ("Stores open at the end of the quarter were as follows:") counts
this much: it shares the question's words but the figures are in what follows it."""

_YEAR_COLUMN = re.compile(r"(?:fiscal\s+|fy\s*)?((?:19|20)\d\d)", re.IGNORECASE)


def _asked_years(sentence: str, years: set[int]) -> str:
    """A statement row cut to the columns of the years the question names ("Net income: 2017 =
    3,033; 2018 = ...; 2019 = 11,588" -> "Net income: 2019 = 11,588"). Only where every column
    is headed by a bare year ("2019", "Fiscal 2019"): a date column ("February 3, 2024") may
    belong to another fiscal year than its calendar one, so such rows are quoted whole."""
    head, sep, body = sentence.partition(": ")
    if not years or not sep or not _row_label(sentence):
        return sentence
    cells = [cell.partition(" = ") for cell in body.split("; ")]
    matches = [_YEAR_COLUMN.fullmatch(header.strip()) for header, eq, _ in cells]
    if not all(m and eq for m, (_, eq, _) in zip(matches, cells, strict=True)):
        return sentence
    kept = [h + eq + v for m, (h, eq, v) in zip(matches, cells, strict=True)
            if m and int(m.group(1)) in years]
    return f"{head}: {'; '.join(kept)}" if kept else sentence


def _distinct(hits: list[Hit]) -> list[int]:
    """The numbers of the hits that are a source of their own (the first of each
    ``source_key``): three passages of one screenshot are named once."""
    first: dict[object, int] = {}
    for n, hit in enumerate(hits, start=1):
        first.setdefault(source_key(hit), n)
    return list(first.values())


def _where(hit: Hit) -> str:
    """``report.pdf p.3`` / ``talk.mp4 @ 00:03-00:06``: no box, whose ``[72,80,540,200]`` would
    read as a citation marker."""
    return locator(hit.source, hit.page, None, hit.t_start, hit.t_end)


def _quote(sentence: str) -> str:
    text = _BRACKETED_NUMBER.sub(r"(\1)", plain(sentence).replace('"', "'"))
    if len(text) > MAX_QUOTE_CHARS:
        text = text[: MAX_QUOTE_CHARS - 1].rsplit(" ", 1)[0] + "\u2026"
    return f'"{text}"'


class ExtractiveSynthesizer:
    """Answers by quoting 2-4 best-matching sentences, each followed by its ``[n]`` citation."""

    name = "extractive"

    def __init__(
        self, reason: str = "no language model configured", notice: str | None = None
    ) -> None:
        self.reason = reason
        self.notice = notice

    def _candidates(self, request: SynthesisRequest) -> list[_Candidate]:
        companies = _company_keys(request.hits)
        asked = f"{request.matched_text} {docmeta.period_words(request.matched_text)}"
        q_terms = _without_company(terms(asked), companies)
        texts: list[tuple[int, str]] = [(0, t) for t in request.user_image_text if t.strip()]
        for n, hit in enumerate(request.hits, start=1):
            # the hit's own text, and the same evidence's other texts (rows of its table)
            texts.append((n, "\n".join([_without_title(hit), *hit.extra.get("merged_texts", [])])))
        rows = [
            (rank, n, order, sentence, terms(sentence), _row_label(sentence), context)
            for rank, (n, text) in enumerate(texts)
            for order, (sentence, context) in enumerate(_in_context(sentences(text)))
            if not _INJECTION.search(sentence) and not sentence.startswith(COLUMNS_PREFIX)
        ]
        # Rare terms count more than ones found in every sentence (a light IDF).
        df: dict[str, int] = {}

        def weight(term: str) -> float:
            if term not in df:
                df[term] = sum(1 for row in rows if term in row[4])
            return math.log(1.0 + len(rows) / df[term]) if df[term] else 0.0

        named = f" {_normal(_asked(request))} "  # the question, and its metrics' line items
        labels = {row[5] for row in rows} - {""}
        names_a_row = any(_names(named, label, companies) for label in labels)
        out = []
        for rank, n, order, sentence, s_terms, label, context in rows:
            common = q_terms & s_terms
            score = sum(weight(t) for t in common)
            if common:  # denser sentences win among equals
                score += len(common) / (len(s_terms) + 1)
            if label:  # a row also means what its table's title and columns say, if less so
                score += CONTEXT_WEIGHT * sum(weight(t) for t in (q_terms & context) - common)
            if label and _names(named, label, companies):
                # A table row whose line item the question names ("operating income"), or
                # a metric it names is computed from ("operating margin": "net sales"), holds
                # the figure asked for: it outranks prose that merely shares the words.
                score = 2 * (score + sum(weight(t) for t in terms(label) - common))
            elif label == "total" and not names_a_row:
                score *= TOTAL_ROW_EDGE  # "how many stores?" without naming a kind: the total
            elif sentence.endswith(":"):
                score *= LEAD_IN_DISCOUNT  # "... were as follows:" announces, the rows answer
            out.append(_Candidate(sentence, n, rank, order, score))
        return out

    def _choose(
        self, candidates: list[_Candidate], q_terms: set[str] | None = None
    ) -> list[_Candidate]:
        """The best-matching sentence, then further ones only while they still answer: each
        must score at least ``STOP_RATIO`` of the best and add a question term not yet quoted
        (at most ``MAX_PER_SOURCE`` per source). With no match at all, the lead sentences of the
        top-ranked inputs."""
        ranked = sorted(candidates, key=lambda c: (-c.score, c.rank, c.order))
        chosen: list[_Candidate] = []
        per_source: dict[int, int] = {}
        seen: _Seen = _Seen()
        covered: set[str] = set()

        def take(cand: _Candidate) -> None:
            chosen.append(cand)
            seen.add(cand.sentence)
            covered.update(terms(cand.sentence) & (q_terms or set()))
            per_source[cand.rank] = per_source.get(cand.rank, 0) + 1

        for cand in ranked:
            if len(chosen) >= MAX_EXTRACTS or cand.score <= 0:
                break
            if chosen and cand.score < STOP_RATIO * chosen[0].score:
                break
            if cand.sentence in seen or per_source.get(cand.rank, 0) >= MAX_PER_SOURCE:
                continue
            if (
                chosen and cand.sentence.endswith(":") and q_terms is not None
                and len((terms(cand.sentence) & q_terms) - covered) < 2
            ):
                continue  # a lead-in ("... were as follows:") only announces what answers:
                # worth quoting when it is clearly about the question, not for one word
            if (
                chosen and q_terms is not None and not (terms(cand.sentence) & q_terms) - covered
                and not _parallel_row(cand, chosen)
            ):
                continue  # says nothing about the question that is not quoted already
            take(cand)
        if not chosen:
            if candidates and all(c.n == 0 for c in candidates):
                # Only the user's own image to go on (e.g. a screenshot with no question):
                # read out its first lines.
                for cand in sorted(candidates, key=lambda c: (c.rank, c.order)):
                    if len(chosen) >= MAX_EXTRACTS:
                        break
                    if cand.sentence not in seen:
                        take(cand)
                return chosen
            for cand in sorted(candidates, key=lambda c: (c.order, c.rank)):
                if len(chosen) >= MIN_EXTRACTS or cand.order > 0:
                    break
                if cand.sentence not in seen:
                    take(cand)
            return chosen
        chosen = _with_continuations(chosen, candidates, seen)
        best = chosen[0]
        if len(chosen) < MIN_EXTRACTS and not _DIGIT.search(best.sentence):
            # A label is often followed by its figure ("Sign in failed" / "Error AUTH-502 ..."):
            # quote the next line too when it holds the number the best match lacks.
            near = [
                c
                for c in candidates
                if c.rank == best.rank
                and c.order in (best.order + 1, best.order - 1)
                and c.sentence not in seen
                and _DIGIT.search(c.sentence)
            ]
            if near:
                take(min(near, key=lambda c: c.order < best.order))  # the next sentence first
        return chosen

    def answer_text(self, request: SynthesisRequest) -> str:
        """The extractive answer for ``request`` (the not-found message when there is nothing)."""
        if request.user_images or request.user_image_text:
            return self.image_answer(request)
        hits = request.hits
        if (
            hits
            and not request.user_image_text
            and any("rerank" in h.extra for h in hits)  # reranked: relevance can be judged
            and not is_relevant(hits, request.matched_text)
        ):
            refs = ", ".join(f"[{n}] {_where(hits[n - 1])}" for n in _distinct(hits)[:3])
            return NOT_IN_DOCUMENTS.format(refs=refs)
        chosen = self._choose(self._candidates(request), _asked_terms(request))
        if not chosen:
            images = [n for n, h in enumerate(request.hits, start=1) if h.is_image][:MAX_EXTRACTS]
            if not images:
                return NOT_FOUND
            refs = ", ".join(f"[{n}]" for n in images)
            return (
                f"Extractive answer ({self.reason}): the retrieved sources have no text to quote; "
                f"the most relevant images are {refs}."
            )
        matched = any(c.score > 0 for c in chosen)
        intro = (
            "the passages below best match your question"
            if matched
            else "no passage matches your question's words closely; the top-ranked ones say"
        )
        lines = [f"Extractive answer ({self.reason}): {intro}{_used(request, chosen)}."]
        years = docmeta.parse_query(request.matched_text).years
        for cand in chosen:
            quote = _quote(_asked_years(cand.sentence, years))
            where = f"[{cand.n}]" if cand.n else "(from your image)"
            hit = request.hits[cand.n - 1] if cand.n else None
            if hit is not None and hit.t_start is not None:  # video: say when it is said
                lines.append(f"- at {time_range(hit.t_start, hit.t_end)}: {quote} {where}")
                continue
            lines.append(f"- {quote} {where}")
        return "\n".join(lines)

    def image_answer(self, request: SynthesisRequest) -> str:
        """What the question's images hold (their text: lines, then UI labels), then what in
        the knowledge base matches it, quoted with ``[n]`` citations."""
        readings = [parse_text(t) for t in request.user_image_text]
        readings += [([], [])] * (len(request.user_images) - len(readings))
        q_terms = terms(request.matched_text) - IMAGE_WORDS
        head = [f"Extractive answer ({self.reason})."]
        for i, (lines, labels) in enumerate(readings, start=1):
            head += _image_holds(lines, labels, q_terms, i if len(readings) > 1 else 0)
        strong = q_terms | {t for lines, _ in readings for t in terms(" ".join(lines))}
        weak = {t for _, labels in readings for t in terms(" ".join(labels))} - strong
        return "\n".join([*head, "", *self._kb_matches(request.hits, strong, weak, q_terms)])

    def _kb_matches(
        self, hits: list[Hit], strong: set[str], weak: set[str], asked: set[str]
    ) -> list[str]:
        """Quotes from ``hits`` that share the image's words (a term of its lines or of the
        question, or ``MIN_LABEL_TERMS`` of its UI labels), best first, then the screenshots
        that show the same UI labels, with citations."""
        if not hits:
            return ["Nothing in your knowledge base matches it."]
        sentences, labels = _image_matches(hits, strong, weak, asked)
        chosen = _pick(sentences) + labels[:MAX_LABEL_FILES]
        if not chosen:
            refs = ", ".join(f"[{n}] {_where(hits[n - 1])}" for n in _distinct(hits)[:3])
            return [f"Nothing in your knowledge base shares its words; the closest results "
                    f"were {refs}."]
        lines = ["What in your knowledge base matches it:"]
        for match in chosen:
            hit = hits[match.n - 1]
            if match.labels:
                name = Path(hit.source.replace("\\", "/")).name
                labels = _BRACKETED_NUMBER.sub(r"(\1)", match.text)
                lines.append(f"- {name} has the same UI labels: {labels} [{match.n}]")
                continue
            when = f"at {time_range(hit.t_start, hit.t_end)}: " if hit.t_start is not None else ""
            lines.append(f"- {when}{_quote(match.text)} [{match.n}]")
        return lines

    def synthesize(
        self, request: SynthesisRequest, on_token: TokenCallback | None = None
    ) -> SynthesisResult:
        answer, citations = renumber(
            self.answer_text(request), request.hits, request.matched_text
        )
        if on_token is not None:
            for line in answer.splitlines(keepends=True):
                on_token(line)
        return SynthesisResult(
            answer=answer, citations=citations, synthesizer=self.name, notice=self.notice
        )


IMAGE_WORDS = frozenset(terms("screenshot screen image picture photo shot"))
"""Question words about the image itself, not what it shows."""
MAX_IMAGE_LINES = 8
MAX_IMAGE_LABELS = 24
MIN_LABEL_TERMS = 2
MAX_SHARED_LABELS = 12
MAX_LABEL_FILES = 2
LABEL_WEIGHT = 0.5
ASKED_WEIGHT = 2.0
"""A word of the question counts this much: what is asked about comes first."""
"""A UI label's word ("Home", "Insert") counts this much: many screens share them."""


def _image_holds(lines: list[str], labels: list[str], q_terms: set[str], n: int) -> list[str]:
    """An image's text as a list: its lines (those the question names first, when there are
    more than ``MAX_IMAGE_LINES``), then its UI labels on one line."""
    name = f"Image {n}" if n else "Your image"
    lines = [ln for ln in lines if not _INJECTION.search(ln)]
    if not lines and not labels:
        return [f"{name} holds no text I can read."]
    named = [i for i, ln in enumerate(lines) if terms(ln) & q_terms]
    rest = [i for i in range(len(lines)) if i not in named]
    shown = sorted((named + rest)[:MAX_IMAGE_LINES])
    out = [f"{name} holds this text:"]
    out += [f"- {_quote(lines[i])}" for i in shown]
    if len(lines) > len(shown):
        out.append(f"- ... and {len(lines) - len(shown)} more lines")
    if labels:
        more = len(labels) - MAX_IMAGE_LABELS
        text = ", ".join(_BRACKETED_NUMBER.sub(r"(\1)", lb) for lb in labels[:MAX_IMAGE_LABELS])
        out.append(f"- UI labels: {text}" + (f" and {more} more" if more > 0 else ""))
    return out


def _ocr_lines(hit: Hit) -> list[str]:
    """The lines of an image's OCR text (an image hit, or a text region of an image file),
    without icons read as glyphs."""
    text = _without_title(hit)
    latin = mostly_latin([text])
    lines = (strip_glyphs(ln) if latin else " ".join(ln.split()) for ln in text.split("\n"))
    return [ln for ln in lines if _WORD.search(ln) and not _INJECTION.search(ln)]


@dataclass(frozen=True)
class _Match:
    """A quote from a hit (or, for a screenshot in the knowledge base, the UI labels it shares
    with the question's image) and how well it matches."""

    text: str
    n: int
    order: int
    terms: frozenset[str]
    labels: bool = False


def _image_units(hits: list[Hit]) -> list[_Match]:
    """What can match a question's image: sentences of text hits, lines of OCR text, and each
    image file's short OCR items (its UI labels), gathered once per file."""
    units: list[_Match] = []
    labels: dict[str, tuple[int, list[str]]] = {}
    for n, hit in enumerate(hits, start=1):
        if not (hit.is_image or is_image_region(hit)):
            units += [_Match(s, n, i, frozenset(terms(s)))
                      for i, s in enumerate(sentences(_without_title(hit)))
                      if not _INJECTION.search(s)]
            continue
        for i, line in enumerate(_ocr_lines(hit)):
            if is_sentence(line):
                units.append(_Match(line, n, i, frozenset(terms(line))))
            elif label := as_label(line):
                labels.setdefault(hit.source, (n, []))[1].append(label)
    for n, items in labels.values():
        for label in dict.fromkeys(items):
            units.append(_Match(label, n, -1, frozenset(terms(label)), labels=True))
    return units


def _matches(found: set[str], strong: set[str]) -> bool:
    """Shared terms that make a match: a word (not a bare number: page numbers, dates and
    counts are everywhere) of the image's lines or the question, or ``MIN_LABEL_TERMS`` words
    of its UI labels."""
    words = {t for t in found if not t.isdigit()}
    return bool(words & strong) or len(words) >= MIN_LABEL_TERMS


def _image_matches(
    hits: list[Hit], strong: set[str], weak: set[str], asked: set[str]
) -> tuple[list[tuple[float, _Match]], list[_Match]]:
    """The matches for an image's text: sentences sharing its words, scored, best first (rare
    terms count more, the question's ``ASKED_WEIGHT``, label terms ``LABEL_WEIGHT``); and per
    image file the UI labels it shows too, files sharing more first."""
    units = _image_units(hits)
    df: dict[str, int] = {}
    for unit in units:
        for term in unit.terms:
            df[term] = df.get(term, 0) + 1

    def score(found: set[str]) -> float:
        return sum(math.log(1.0 + len(units) / df[t]) * (
            ASKED_WEIGHT if t in asked else 1.0 if t in strong else LABEL_WEIGHT) for t in found)

    scored: list[tuple[float, _Match]] = []
    shared: dict[int, list[_Match]] = {}
    for unit in units:
        found = unit.terms & (strong | weak)
        if unit.labels and unit.terms and unit.terms <= strong | weak:
            shared.setdefault(unit.n, []).append(unit)  # a label the image shows too
        elif not unit.labels and _matches(found, strong):
            scored.append((score(found) + len(found) / (len(unit.terms) + 1), unit))
    labels = []
    for n, items in sorted(shared.items(), key=lambda kv: -len(kv[1])):
        if _matches(set().union(*(u.terms for u in items)), strong):
            text = ", ".join(u.text for u in items[:MAX_SHARED_LABELS])
            more = len(items) - MAX_SHARED_LABELS
            text += f" and {more} more" if more > 0 else ""
            labels.append(_Match(text, n, -1, frozenset(), labels=True))
    return sorted(scored, key=lambda sm: (-sm[0], sm[1].n, sm[1].order)), labels


def _pick(scored: list[tuple[float, _Match]]) -> list[_Match]:
    """Up to ``MAX_EXTRACTS`` matches, best first, while they score ``STOP_RATIO`` of the
    best; at most ``MAX_PER_SOURCE`` per hit, no repeats. The sentence right after the best
    one comes next when it matches too: what an error means is often followed by the fix."""
    if not scored:
        return []
    top, best = scored[0]
    after = next((m for _, m in scored if m.n == best.n and m.order == best.order + 1), None)
    chosen: list[_Match] = []
    seen = _Seen()
    for score, match in scored:
        if len(chosen) >= MAX_EXTRACTS:
            break
        if score < STOP_RATIO * top and match is not after:
            continue
        if match.text in seen or sum(c.n == match.n for c in chosen) >= MAX_PER_SOURCE:
            continue
        chosen.append(match)
        seen.add(match.text)
    if after is not None and after in chosen:
        chosen.remove(after)
        chosen.insert(1, after)
    return chosen


_ANAPHOR = re.compile(
    r"^(?:these|this|those|that|they|their|it|its|such|he|she|his|her)\b", re.IGNORECASE
)
HEADING_WORDS = 6  # a line this short without a full stop is a heading ("Region-based
# segmentation"): the sentence under it says what it is about


def _is_heading(sentence: str) -> bool:
    sentence = plain(sentence)
    return len(sentence.split()) <= HEADING_WORDS and not re.search(r"[.!?:;=]$|\d", sentence)


def _with_continuations(
    chosen: list[_Candidate], candidates: list[_Candidate], seen: _Seen
) -> list[_Candidate]:
    """Each quote followed by the sentence that continues it: the one right after a heading,
    or one that opens by referring back ("These devices, like the Wang 1200, ..."), which
    means nothing alone and often holds the particulars."""
    following = {(c.rank, c.order): c for c in candidates}
    out: list[_Candidate] = []
    for cand in chosen:
        out.append(cand)
        nxt = following.get((cand.rank, cand.order + 1))
        if (
            nxt is not None and nxt.sentence not in seen and len(out) < MAX_EXTRACTS + 1
            and (_is_heading(cand.sentence) or _ANAPHOR.match(nxt.sentence))
            and not _is_heading(nxt.sentence)
        ):
            out.append(nxt)
            seen.add(nxt.sentence)
    return out


CONTEXT_WEIGHT = 0.5
"""What a question term found only in a row's table title or column headers is worth."""


def _in_context(lines: list[str]) -> list[tuple[str, set[str]]]:
    """Each sentence with the terms of the table it is a row of: the "Columns: ..." line above
    it and the title right above that ("Domestic segment stores open at the end of the second
    quarters of fiscal 2024 and 2023 were as follows:"); an empty set outside tables."""
    out: list[tuple[str, set[str]]] = []
    context: set[str] = set()
    for i, line in enumerate(lines):
        if line.startswith(COLUMNS_PREFIX):
            title = lines[i - 1] if i and not _row_label(lines[i - 1]) else ""
            context = terms(f"{title} {line.removeprefix(COLUMNS_PREFIX)}")
        elif not _row_label(line):
            context = set()
        out.append((line, context))
    return out


def _parallel_row(cand: _Candidate, chosen: list[_Candidate]) -> bool:
    """The same line item from another source: the Total of another segment's table, or net
    income in another company's filing. Its words are quoted already, its figures are not."""
    label = _row_label(cand.sentence)
    return bool(label) and any(
        c.n != cand.n and _row_label(c.sentence) == label for c in chosen
    )


def _names(named: str, label: str, companies: set[str]) -> bool:
    """Whether the question (with its metrics' line items) names a row's line item. A row
    labelled with the company's own name ("Best Buy" stores beside "Pacific Sales") is not
    named by a question that names the company to pick its document."""
    return label not in companies and f" {label.removeprefix('total ')} " in named


def _company_keys(hits: list[Hit]) -> set[str]:
    metas = [h.extra.get("doc") for h in hits]
    return {key for meta in metas if isinstance(meta, dict) for key in docmeta.doc_keys(meta)}


def _asked(request: SynthesisRequest) -> str:
    """The question, its periods as filings print them ("Q2" -> "second quarter"), then the
    line items of any metric it names ("operating margin": "operating income ... net sales"),
    whose rows hold the figures the metric is computed from."""
    text = request.matched_text
    return " ".join([text, docmeta.period_words(text), *line_items(text)])


def _asked_terms(request: SynthesisRequest) -> set[str]:
    """The terms of ``_asked``, less the company's name and the period asked about: those
    pick the document and the column, and a sentence that only shares them ("... in the second
    quarter of fiscal 2024") adds nothing to an answer."""
    text = request.matched_text
    period = terms(f"{docmeta.period_words(text)} fiscal quarter year") | {
        str(y) for y in docmeta.parse_query(text).years}
    asked = _without_company(terms(_asked(request)), _company_keys(request.hits))
    return (asked - period) or asked


def _without_company(asked: set[str], companies: set[str]) -> set[str]:
    """Question terms less the company's name, unless that is all there is: the name picked the
    document, and in its filing it says nothing about which sentence answers ("Best Buy" would
    favour the row of Best Buy-branded stores)."""
    return (asked - terms(" ".join(companies))) or asked


def _without_title(hit: Hit) -> str:
    """A hit's text without the words of its file name (stored as an image's caption of last
    resort): a file name says where the evidence is, not what it says."""
    title = _normal(title_words(Path(hit.source)))
    return "\n".join(ln for ln in hit.content().split("\n") if _normal(ln) != title)


def _used(request: SynthesisRequest, chosen: list[_Candidate]) -> str:
    """" (from Amazon.com, Inc. 10-K FY2017)": the documents the quotes come from."""
    labels: list[str] = []
    for cand in chosen:
        if cand.n:
            label = plain(docmeta.label(request.hits[cand.n - 1].extra.get("doc")))
            if label and len(label) <= MAX_LABEL_CHARS and label not in labels:
                labels.append(label)
    return f" (from {'; '.join(labels)})" if labels else ""
