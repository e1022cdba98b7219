"""Lexical retrieval in Qdrant: BM25-style sparse vectors with server-side IDF.

Documents store saturated term frequencies, queries store term weights; the collection's
``lexical`` sparse vector uses ``Modifier.IDF`` so Qdrant applies inverse document frequency over
the whole knowledge base. Terms come from the same tokenizer as the reranker, so exact names,
error codes and identifiers in screenshots are found even when dense retrieval misses them.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from functools import lru_cache

from vistarag.agent.index.filters import SparseVector
from vistarag.agent.lexical import query_terms, tokenize

LEXICAL_VECTOR = "lexical"
LEXICAL_SCHEME = "bm25-blake2b32-v1"
K1 = 1.2
B = 0.75
AVG_DOC_TERMS = 120.0


@lru_cache(maxsize=1 << 16)
def term_index(term: str) -> int:
    """A stable 31-bit index for a term (collisions are rare and merely add noise)."""
    digest = hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


def _sparse(weights: dict[int, float]) -> SparseVector:
    items = sorted(weights.items())
    return SparseVector(indices=[i for i, _ in items], values=[v for _, v in items])


def document_vector(text: str) -> SparseVector | None:
    """BM25 term-frequency part for a document; None when it has no terms."""
    counts = Counter(tokenize(text))
    if not counts:
        return None
    norm = K1 * (1 - B + B * sum(counts.values()) / AVG_DOC_TERMS)
    weights: dict[int, float] = {}
    for term, tf in counts.items():
        idx = term_index(term)
        weights[idx] = weights.get(idx, 0.0) + tf * (K1 + 1) / (tf + norm)
    return _sparse(weights)


def query_vector(text: str) -> SparseVector | None:
    """Query term weights (identifier parts weigh less than whole tokens)."""
    weights: dict[int, float] = {}
    for term, weight in query_terms(text).items():
        idx = term_index(term)
        weights[idx] = weights.get(idx, 0.0) + weight
    return _sparse(weights) if weights else None
