"""Tokenizer and candidate-set BM25 for reranking.

The tokenizer keeps identifiers whole *and* split into parts, so ``ERR_CONN_RESET``,
``0x80070005``, ``A7-3391-XL``, ``report_q3.xlsx`` and ``getUserName`` match both exactly and
by their pieces. Runs of CJK / Hangul / Kana characters become character bigrams.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

STOPWORDS: frozenset[str] = frozenset([
    "a", "about", "above", "according", "after", "again", "against", "all", "also", "an", "and",
    "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between",
    "both", "but", "by", "can", "could", "describe", "did", "do", "does", "doing", "done",
    "during", "each", "explain", "few", "find", "for", "from", "further", "get", "give", "had",
    "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in",
    "into", "is", "it", "its", "itself", "just", "may", "me", "might", "more", "most", "must",
    "my", "no", "nor", "not", "of", "off", "on", "once", "only", "or", "other", "our", "ours",
    "out", "over", "own", "per", "please", "said", "same", "say", "says", "shall", "she",
    "should", "show", "so", "some", "such", "tell", "than", "that", "the", "their", "theirs",
    "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under",
    "until", "up", "upon", "very", "via", "was", "we", "were", "what", "when", "where", "which",
    "while", "who", "whom", "why", "will", "with", "within", "without", "would", "you", "your",
    "yours",
])

# A compound token: alphanumeric parts glued by identifier punctuation (_ . - / : # @ +).
_COMPOUND = re.compile(r"[^\W_]+(?:[_.\-/:#@+]+[^\W_]+)*|_+[^\W_]+(?:_+[^\W_]+)*", re.UNICODE)
_PART = re.compile(r"[^\W_]+", re.UNICODE)
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_CJK = re.compile(
    r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"
)
_CJK_RUN = re.compile("(" + _CJK.pattern + "+)")
_ID_PUNCT = re.compile(r"[_.\-/:#@+]")
_DIGIT = re.compile(r"\d")
_QUOTED = re.compile(r"[\"“”`]([^\"“”`]{2,80})[\"“”`]|(?<!\w)'([^']{2,80})'(?!\w)")


@lru_cache(maxsize=1 << 16)  # a document repeats its words: stem each once
def _stem(word: str) -> str:
    """A very light English suffix stripper (plural / -ing / -ed); identifiers are untouched."""
    if not word.isalpha() or not word.isascii() or len(word) <= 4:
        return word
    for suf, rep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suf) and len(word) - len(suf) >= 3 and not word.endswith("ss"):
            return word[: len(word) - len(suf)] + rep
    return word


def is_identifier(token: str) -> bool:
    """True for ID-like tokens: digits mixed in, identifier punctuation, or long all-digit."""
    if token.isalpha():
        return False
    if _ID_PUNCT.search(token):
        return True
    return _DIGIT.search(token) is not None and (len(token) >= 3 or not token.isdigit())


def _cjk_bigrams(run: str) -> list[str]:
    return [run] if len(run) < 2 else [run[i : i + 2] for i in range(len(run) - 1)]


def _split_cjk(tok: str) -> list[str]:
    """CJK runs become character bigrams; embedded Latin/digit runs stay whole."""
    out: list[str] = []
    for i, piece in enumerate(_CJK_RUN.split(tok)):
        if i % 2:
            out.extend(_cjk_bigrams(piece))
        else:
            out.extend(p.lower() for p in _PART.findall(piece))
    return out


PART_WEIGHT = 0.3  # query weight of the pieces of a compound identifier (the whole gets 1.0)


def _terms(text: str) -> tuple[list[tuple[str, bool]], list[str]]:
    """(index terms with an is-part flag, base tokens in order)."""
    terms: list[tuple[str, bool]] = []
    seq: list[str] = []
    for m in _COMPOUND.finditer(text):
        tok = m.group(0)
        if tok.isascii() and tok.isalpha() and (tok.islower() or tok[1:].islower()):
            low = tok.lower()  # the common case: a plain word
            if low not in STOPWORDS:
                stem = _stem(low)
                terms.append((stem, False))
                seq.append(stem)
            continue
        if _CJK.search(tok):
            grams = _split_cjk(tok)
            terms.extend((g, False) for g in grams)
            seq.extend(grams)
            continue
        low = tok.lower()
        if not is_identifier(low):
            if low not in STOPWORDS:
                stem = _stem(low)
                terms.append((stem, False))
                seq.append(stem)
            # camelCase words: also index their parts
            if any(c.isupper() for c in tok[1:]) and any(c.islower() for c in tok):
                terms.extend((p.lower(), True) for p in _CAMEL.findall(tok) if len(p) > 1)
            continue
        terms.append((low, False))
        seq.append(low)
        parts = _PART.findall(tok)
        if len(parts) > 1:
            terms.extend((p.lower(), True) for p in parts if p.lower() not in STOPWORDS)
        for p in parts:
            camel = _CAMEL.findall(p)
            if len(camel) > 1:
                terms.extend((c.lower(), True) for c in camel if len(c) > 1)
    return terms, seq


def tokenize(text: str) -> list[str]:
    """Bag of index terms: base tokens plus the parts of compound / camelCase identifiers."""
    return [t for t, _ in _terms(text)[0]]


def words(text: str) -> list[str]:
    """Base tokens in order (lowercased, stemmed, no stopwords); used for phrase matching."""
    return _terms(text)[1]


@dataclass(frozen=True)
class Analyzed:
    """A document as the lexical scorer sees it."""

    tf: Counter[str]
    length: int
    bigrams: frozenset[tuple[str, str]]


@lru_cache(maxsize=4096)
def analyze(text: str) -> Analyzed:
    """Term frequencies, length and word bigrams of a text (cached: chunks recur)."""
    terms, seq = _terms(text)
    tf = Counter(t for t, _ in terms)
    return Analyzed(tf, sum(tf.values()), frozenset(zip(seq, seq[1:], strict=False)))


# Words that start requests; capitalised, they are still not names.
_REQUEST_WORDS = frozenset(
    ["open", "list", "search", "look", "find", "compare", "summarize", "summarise"]
)


def entity_terms(text: str) -> set[str]:
    """Query terms that name something exactly: identifiers, Capitalised or ALLCAPS words."""
    out: set[str] = set()
    for m in _COMPOUND.finditer(text):
        tok = m.group(0)
        low = tok.lower()
        if _CJK.search(tok) or low in STOPWORDS or low in _REQUEST_WORDS:
            continue
        if is_identifier(low):
            out.add(low)
        elif tok[0].isupper() and len(tok) > 1:
            out.add(_stem(low))
    return out


def query_terms(text: str) -> dict[str, float]:
    """Query term -> weight: whole tokens 1.0 (repeats up to 2.0), identifier parts 0.3."""
    weights: dict[str, float] = {}
    for t, is_part in _terms(text)[0]:
        w = PART_WEIGHT if is_part else 1.0
        weights[t] = min(2.0, max(weights.get(t, 0.0), w) if is_part else weights.get(t, 0.0) + w)
    return weights


def quoted_phrases(text: str) -> list[str]:
    """Phrases the user put in quotes (exact-match requests)."""
    found = ((m.group(1) or m.group(2) or "").strip() for m in _QUOTED.finditer(text))
    return [p for p in found if p]


@dataclass(frozen=True)
class LexicalScores:
    """BM25 over the candidate set plus the evidence needed to judge its reliability."""

    bm25: list[float]  # per document
    coverage: list[float]  # per document: matched share of the query's weighted IDF mass
    idf: dict[str, float]  # per query term, computed over the candidates
    df: dict[str, int]  # per query term: candidates containing it
    weights: dict[str, float]  # per query term: query weight


class BM25:
    """Okapi BM25 whose statistics come from the candidate documents themselves."""

    def __init__(self, docs: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.docs = [analyze(d) for d in docs]
        self.avg = (sum(a.length for a in self.docs) / len(self.docs)) if self.docs else 0.0
        self.avg = self.avg or 1.0

    def idf(self, term: str) -> tuple[float, int]:
        n = len(self.docs)
        df = sum(1 for a in self.docs if term in a.tf)
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5)), df

    def score(self, query: str | dict[str, float]) -> LexicalScores:
        qw = query_terms(query) if isinstance(query, str) else query
        idf: dict[str, float] = {}
        df: dict[str, int] = {}
        for t in qw:
            idf[t], df[t] = self.idf(t)
        total = sum(idf[t] * w for t, w in qw.items()) or 1.0
        bm25: list[float] = []
        coverage: list[float] = []
        for a in self.docs:
            norm = self.k1 * (1.0 - self.b + self.b * a.length / self.avg)
            s = cov = 0.0
            for t, w in qw.items():
                f = a.tf.get(t, 0)
                if f:
                    s += w * idf[t] * f * (self.k1 + 1.0) / (f + norm)
                    cov += w * idf[t]
            bm25.append(s)
            coverage.append(cov / total)
        return LexicalScores(bm25, coverage, idf, df, qw)
