"""Rerankers: the offline ``hybrid`` lexical+dense fusion, ``none``, and CrossEncoders.

``make_reranker(spec)`` is what the graph calls. Every reranker returns *copies* of the top_k
hits with ``score`` set to its own score, the retrieval score kept in
``extra["retrieval_score"]`` and its component scores in ``extra["rerank"]``.
"""

from __future__ import annotations

import copy
import logging
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from vistarag.agent import docmeta, metric_terms, time_mentions
from vistarag.agent.ingest.tables import chunk_title
from vistarag.agent.lexical import BM25, LexicalScores, analyze, entity_terms, quoted_phrases
from vistarag.agent.types import Hit

log = logging.getLogger(__name__)


class RerankQuery(BaseModel):
    """What the reranker compares hits against."""

    text: str = ""
    image_refs: list[str] = Field(default_factory=list)
    statements: list[str] = Field(default_factory=list)
    """Financial statements the question names ("income statement"): a table titled as one
    ("CONSOLIDATED STATEMENTS OF OPERATIONS") is what it asks for."""
    plain_text: str = ""
    """The question as asked when ``text`` adds words to it (a metric's line items): lexical
    evidence for the question itself then counts as well, so an expansion never hides it."""


@runtime_checkable
class Reranker(Protocol):
    """Reorders retrieved hits and keeps the best ``top_k``."""

    name: str

    def rerank(self, query: RerankQuery, hits: list[Hit], top_k: int) -> list[Hit]: ...


def _finish(
    hits: Sequence[Hit],
    scores: Sequence[float],
    parts: Sequence[dict[str, Any]],
    top_k: int,
    name: str,
    keep_score: bool = False,
) -> list[Hit]:
    """Sort by score (stable: ties keep retrieval order) and return annotated copies."""
    order = sorted(range(len(hits)), key=lambda i: -scores[i])[: max(top_k, 0)]
    out: list[Hit] = []
    for i in order:
        h = hits[i]
        extra = copy.deepcopy(h.extra)
        extra.setdefault("retrieval_score", h.score)
        extra["retrieval_rank"] = extra.get("retrieval_rank", i)
        extra["rerank"] = {"name": name, **parts[i]}
        score = h.score if keep_score else float(scores[i])
        out.append(h.model_copy(update={"score": score, "extra": extra}))
    return out


class NoReranker:
    """``none``: keep retrieval order (the list order as given), truncate to top_k."""

    name = "none"

    def rerank(self, query: RerankQuery, hits: list[Hit], top_k: int) -> list[Hit]:
        kept = hits[: max(top_k, 0)]
        order = [-float(i) for i in range(len(kept))]
        return _finish(kept, order, [{} for _ in kept], top_k, self.name, keep_score=True)


# ----------------------------------------------------------------------------------- hybrid


@dataclass
class HybridConfig:
    """Knobs of the hybrid reranker (defaults chosen on evals/rerank_eval.py)."""

    dense_weights: dict[str, float] = field(default_factory=lambda: {"text": 1.0, "joint": 1.0})
    lexical_weight: float = 3.0  # z-units a full-coverage lexical match is worth
    min_coverage: float = 0.35  # below this share of the query's IDF mass, lexical is noise
    phrase_weight: float = 0.5  # share of lexical_weight for matched query word bigrams
    identifier_boost: float = 3.0  # z-units when every query identifier matches whole
    exact_boost: float = 2.0  # z-units when a short query / quoted phrase occurs verbatim
    doc_weight: float = 1.0  # z-units for a document whose company / year / form the query names
    # z-units for a table titled as the statement the query names: more than a full lexical
    # match (3.0), which at equal weight left the named statement and another table to a
    # dense tie (0.003 cosine apart in tests/test_metric_terms) that int8 noise decided
    statement_weight: float = 3.5
    time_weight: float = 2.0  # z-units for a video span holding a moment the query names
    time_window: float = 5.0  # seconds away from that moment at which the preference is gone


def _zscores(values: Sequence[float]) -> list[float]:
    n = len(values)
    if n == 0:
        return []
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / n
    sd = math.sqrt(var)
    if sd < 1e-9:
        return [0.0] * n
    return [(v - mean) / sd for v in values]


def dense_signal(hits: Sequence[Hit], weights: dict[str, float]) -> list[float]:
    """Per-hit dense evidence: weighted mean of per-key z-scores over the candidates.

    Keys a hit lacks are skipped for that hit; hits with no dense keys at all get the lowest
    value seen. Without any dense scores the retrieval score (rank-based RRF) is used.
    """
    keys = sorted({k for h in hits for k in (h.extra.get("dense") or {})})
    per_key: dict[str, dict[int, float]] = {}
    for k in keys:
        idx = [i for i, h in enumerate(hits) if _num((h.extra.get("dense") or {}).get(k))]
        z = _zscores([float(hits[i].extra["dense"][k]) for i in idx])
        per_key[k] = dict(zip(idx, z, strict=True))
    if not keys:
        return _zscores([float(h.score) for h in hits])
    out: list[float | None] = []
    for i in range(len(hits)):
        num = den = 0.0
        for k in keys:
            if i in per_key[k]:
                w = weights.get(k, 1.0)
                num += w * per_key[k][i]
                den += w
        out.append(num / den if den else None)
    floor = min((v for v in out if v is not None), default=0.0)
    return [floor if v is None else v for v in out]


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


_WS = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _WS.sub(" ", text).strip().lower()


def lexical_signal(
    query: str, texts: Sequence[str], cfg: HybridConfig, identifiers_from: str | None = None,
    heading_only: frozenset[str] = frozenset(), headings: Sequence[str] = (),
) -> list[float]:
    """Per-hit lexical evidence in z-units; 0 where the lexical evidence is uninformative.
    Identifiers are read from ``identifiers_from`` (the query less its metric names); those in
    ``heading_only`` count where a text's heading (``headings``, by ``chunk_title``) prints
    them."""
    n = len(texts)
    if not query.strip() or n == 0:
        return [0.0] * n
    bm = BM25(texts)
    lex: LexicalScores = bm.score(query)
    qbig = _query_bigrams(query)
    idents = [t for t in entity_terms(identifiers_from or query) if 0 < lex.df.get(t, 0) < n]
    ident_mass = sum(lex.idf[t] for t in idents)
    phrases = [_norm(p) for p in quoted_phrases(query)]
    qnorm = _norm(query)
    verbatim = 3 <= len(qnorm) <= 80 and len(qnorm.split()) <= 8
    max_bm = max(lex.bm25) or 1.0
    out: list[float] = []
    for i, text in enumerate(texts):
        doc = bm.docs[i]
        # gate: below min_coverage nothing counts; full coverage counts fully
        gate = max(0.0, (lex.coverage[i] - cfg.min_coverage) / (1.0 - cfg.min_coverage))
        s = gate * (0.5 + 0.5 * lex.bm25[i] / max_bm)
        if qbig:
            s += cfg.phrase_weight * gate * len(qbig & doc.bigrams) / len(qbig)
        s *= cfg.lexical_weight
        if ident_mass:
            heading = analyze(headings[i]).tf if heading_only else doc.tf
            found = [t for t in idents if t in (heading if t in heading_only else doc.tf)]
            s += cfg.identifier_boost * sum(lex.idf[t] for t in found) / ident_mass
        if (phrases or verbatim) and _exact(text, phrases, qnorm if verbatim else None):
            s += cfg.exact_boost
        out.append(s)
    return out


def _query_bigrams(query: str) -> frozenset[tuple[str, str]]:
    return analyze(query).bigrams


def _exact(text: str, phrases: Sequence[str], qnorm: str | None) -> bool:
    """A quoted phrase or the whole short query occurs verbatim (at word boundaries)."""
    t = _norm(text)
    return any(_contains(t, p) for p in phrases) or (qnorm is not None and _contains(t, qnorm))


def _contains(text: str, needle: str) -> bool:
    start = text.find(needle)
    while start >= 0:
        end = start + len(needle)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() and needle[0].isalnum()) and not (
            after.isalnum() and needle[-1].isalnum()
        ):
            return True
        start = text.find(needle, start + 1)
    return False


def company_terms(query: str, hits: Sequence[Hit]) -> frozenset[str]:
    """The terms of the company names the query uses, of the candidates' companies."""
    metas = [m for h in hits if isinstance(m := h.extra.get("doc"), dict)]
    keys = {k for m in metas for k in docmeta.doc_keys(m)}
    named = docmeta.parse_query(query, keys).companies if metas else set()
    return frozenset(analyze(" ".join(named)).tf)


def doc_signal(query: str, hits: Sequence[Hit], weight: float) -> list[float]:
    """Per-hit preference for documents whose company, fiscal year, quarter or form the query
    names (``docmeta.match``: -1 contradicts .. 1 fits), in z-units; 0 without metadata."""
    metas = [h.extra.get("doc") if isinstance(h.extra.get("doc"), dict) else None for h in hits]
    if not query.strip() or not any(metas):
        return [0.0] * len(hits)
    keys = {k for m in metas if m for k in docmeta.doc_keys(m)}
    scope = docmeta.parse_query(query, keys)
    if scope.empty():
        return [0.0] * len(hits)
    return [weight * docmeta.match(scope, m) for m in metas]


def time_signal(query: str, hits: Sequence[Hit], weight: float, window: float) -> list[float]:
    """Per-hit preference for the moments a query names ("at 1:23", "six and a half seconds
    in"): ``weight`` z-units for a timed hit (keyframe, transcript line, clip) whose span holds
    one, falling to 0 at ``window`` seconds from it; 0 for untimed hits or no moment named."""
    if not any(h.t_start is not None for h in hits):
        return [0.0] * len(hits)
    wanted = time_mentions.moments(query)
    if not wanted:
        return [0.0] * len(hits)
    out = []
    for h in hits:
        if h.t_start is None:
            out.append(0.0)
            continue
        end = h.t_end if h.t_end is not None else h.t_start
        gap = min(max(0.0, h.t_start - t, t - end) for t in wanted)
        out.append(weight * max(0.0, 1.0 - gap / window))
    return out


def statement_signal(
    statements: Sequence[str], titles: Sequence[str], weight: float
) -> list[float]:
    """``weight`` for a chunk titled (``chunk_title``) as a statement the question names:
    "income statement" asks for the table titled "CONSOLIDATED STATEMENTS OF OPERATIONS", not
    for the prose that mentions it or the cash-flow statement beside it."""
    if not statements:
        return [0.0] * len(titles)
    return [weight if metric_terms.titled_as(t, list(statements)) else 0.0 for t in titles]


class HybridReranker:
    """Offline default: dense similarity z-scores plus lexical evidence that only counts when
    it is informative (enough of the query's rare terms, identifiers, phrases or the verbatim
    query). Paraphrased questions with thin lexical overlap therefore keep the dense order."""

    name = "hybrid"

    def __init__(self, config: HybridConfig | None = None) -> None:
        self.config = config or HybridConfig()

    def rerank(self, query: RerankQuery, hits: list[Hit], top_k: int) -> list[Hit]:
        if not hits:
            return []
        dense = dense_signal(hits, self.config.dense_weights)
        # A metric's name is no identifier that singles out a chunk ("Free cashflow
        # conversion": the "free" trials). A company's name is one only in a heading: a filing
        # prints it over its statements, and in its prose and rows everywhere ("Best Buy"
        # stores, "Adobe Premiere Pro").
        names = metric_terms.without_metric_names(query.text)
        texts = [h.content() for h in hits]
        titles = [chunk_title(t) for t in texts]  # read once: headings and statement titles
        lexical = lexical_signal(query.text, texts, self.config, names,
                                 company_terms(query.text, hits), titles)
        plain = query.plain_text.strip()
        if plain and plain != query.text.strip():  # the words asked beat their expansion
            asked = lexical_signal(plain, texts, self.config,
                                   metric_terms.without_metric_names(plain),
                                   company_terms(plain, hits), titles)
            lexical = [max(a, b) for a, b in zip(lexical, asked, strict=True)]
        meta = doc_signal(query.text, hits, self.config.doc_weight)
        table = statement_signal(query.statements, titles, self.config.statement_weight)
        moment = time_signal(plain or query.text, hits, self.config.time_weight,
                             self.config.time_window)
        scores = [sum(parts) for parts in zip(dense, lexical, meta, table, moment, strict=True)]
        parts = [
            {"dense": round(d, 4), "lexical": round(x, 4), "doc": round(m, 4),
             "statement": round(t, 4), "time": round(w, 4)}
            for d, x, m, t, w in zip(dense, lexical, meta, table, moment, strict=True)
        ]
        return _finish(hits, scores, parts, top_k, self.name)


# ------------------------------------------------------------------------------ cross-encoder

_CE_CACHE: dict[tuple[str, str | None], Any] = {}
_CE_LOCK = threading.Lock()


def _load_cross_encoder(spec: str, device: str | None) -> Any:
    """Load a sentence-transformers CrossEncoder once per process (cached by spec, device)."""
    key = (spec, device)
    with _CE_LOCK:
        if key not in _CE_CACHE:
            from sentence_transformers import CrossEncoder

            _CE_CACHE[key] = CrossEncoder(spec, device=device)
        return _CE_CACHE[key]


def _supports(model: Any, modality: Any) -> bool:
    """Whether a CrossEncoder accepts a modality (``"image"``, ``("image", "text")``...)."""
    try:
        return bool(model.supports(modality))
    except Exception:  # older sentence-transformers: text only
        return False


class CrossEncoderReranker:
    """Scores (query, hit) pairs with a CrossEncoder; passes images to multimodal ones."""

    max_image_side = 1024  # images are downscaled to this before scoring

    def __init__(
        self,
        spec: str,
        *,
        device: str | None = None,
        blob_path: Callable[[str], Path] | None = None,
        batch_size: int = 16,
    ) -> None:
        self.name = self.spec = spec
        self.device, self.blob_path, self.batch_size = device, blob_path, batch_size
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = _load_cross_encoder(self.spec, self.device)
        return self._model

    def _image(self, ref: str | None) -> Any:
        if not ref or self.blob_path is None:
            return None
        try:
            from PIL import Image

            with Image.open(self.blob_path(ref)) as im:
                img = im.convert("RGB")
            img.thumbnail((self.max_image_side, self.max_image_side))
            return img
        except Exception as exc:  # missing / unreadable blob: fall back to text
            log.warning("rerank: cannot load image %s: %s", ref, exc)
            return None

    def _query_input(self, query: RerankQuery) -> Any:
        images = []
        if query.image_refs and _supports(self.model, "image"):
            images = [im for im in (self._image(r) for r in query.image_refs[:1]) if im is not None]
        if images and query.text.strip() and _supports(self.model, ("image", "text")):
            return {"text": query.text, "image": images[0]}
        if images and not query.text.strip():
            return images[0]
        return query.text

    def _doc_input(self, hit: Hit) -> Any:
        text = hit.content()
        if hit.is_image and _supports(self.model, "image"):
            img = self._image(hit.blob)
            if img is not None:
                if text and _supports(self.model, ("image", "text")):
                    return {"text": text, "image": img}
                return img
        return text or None

    def rerank(self, query: RerankQuery, hits: list[Hit], top_k: int) -> list[Hit]:
        if not hits:
            return []
        q = self._query_input(query)
        if isinstance(q, str) and not q.strip():
            # nothing this model can read in the query (image-only query, text-only model)
            return HybridReranker().rerank(query, hits, top_k)
        docs = [self._doc_input(h) for h in hits]
        groups: dict[str, list[int]] = {}
        for i, d in enumerate(docs):
            if d is not None:
                groups.setdefault(type(d).__name__, []).append(i)
        raw: dict[int, float] = {}
        for idx in groups.values():  # one predict per input kind: batches must share modality
            pred = self.model.predict(
                [(q, docs[i]) for i in idx],
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
            for i, v in zip(idx, pred, strict=True):
                value = float(v[-1] if getattr(v, "ndim", 0) else v)  # multi-label: last class
                if math.isfinite(value):
                    raw[i] = value
        floor = min(raw.values(), default=0.0) - 1.0
        scores = [raw.get(i, floor) for i in range(len(hits))]
        parts = [{"cross_encoder": raw.get(i)} for i in range(len(hits))]
        return _finish(hits, scores, parts, top_k, self.name)


# -------------------------------------------------------------------------------- relevance

# Calibrated with evals/relevance_floor.py on the rerank eval material (answerable queries)
# against off-topic questions over the same corpora; see that script for the figures.
RELEVANCE_FLOOR = 0.40  # hybrid: best of (cosine + COVERAGE_WEIGHT * lexical coverage)
COVERAGE_WEIGHT = 0.5
CROSS_ENCODER_FLOOR = 0.0  # logit: sigmoid 0.5, the model's own "relevant" boundary
RELEVANCE_DEPTH = 3  # hits looked at
# Evidence this strong (same scale) settles a search scoped by what the question seems to name;
# weaker, and the unscoped search runs too (``Engine.search``) and the better evidence wins.
STRONG_EVIDENCE = RELEVANCE_FLOOR + 0.2


def relevance(hits: Sequence[Hit], query: str) -> float:
    """How well the best hits answer ``query``, on the scale ``RELEVANCE_FLOOR`` is set in.

    Reranked hits carry what each reranker measured in ``extra``; the score used is absolute
    (not a z-score relative to the candidates): for the hybrid reranker, the raw cosine of the
    text embedding plus the share of the question's (IDF-weighted) terms the hit contains.
    """
    top = list(hits[:RELEVANCE_DEPTH])
    if not top:
        return float("-inf")
    ce = [h.extra.get("rerank", {}).get("cross_encoder") for h in top]
    if any(_num(v) for v in ce):
        return max(float(v) for v in ce if _num(v)) - CROSS_ENCODER_FLOOR + RELEVANCE_FLOOR
    coverage = [0.0] * len(top)
    if query.strip():
        coverage = BM25([h.content() for h in hits]).score(query).coverage[: len(top)]
    best = float("-inf")
    for hit, cov in zip(top, coverage, strict=True):
        dense = hit.extra.get("dense") or {}
        cos = max((float(v) for k, v in dense.items() if k == "text" and _num(v)), default=None)
        if cos is None:  # no text-space cosine kept (image-only hits): lexical evidence alone
            cos = 0.0
        best = max(best, cos + COVERAGE_WEIGHT * cov)
    return best


def is_relevant(hits: Sequence[Hit], query: str, floor: float | None = None) -> bool:
    """Whether the documents answer ``query`` at all: below the floor, say "not found"."""
    if not hits:
        return False
    if not query.strip():
        return True  # an image-only query: nothing to judge the hits against
    return relevance(hits, query) >= (RELEVANCE_FLOOR if floor is None else floor)


# ------------------------------------------------------------------------------------ factory


def make_reranker(
    spec: str, *, device: str | None = None, blob_path: Callable[[str], Path] | None = None
) -> Reranker:
    """``hybrid`` (default, offline), ``none``, or a CrossEncoder hub id / local path."""
    key = (spec or "hybrid").strip()
    if key.lower() == "hybrid":
        return HybridReranker()
    if key.lower() == "none":
        return NoReranker()
    return CrossEncoderReranker(key, device=device, blob_path=blob_path)
