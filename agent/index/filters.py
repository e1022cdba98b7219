"""Filters and sparse vectors without importing qdrant-client (about 0.7-1.5 s at start-up).

The classes mirror qdrant-client's ``models`` names and fields, so code reads the same
(``models.FieldCondition(key=..., match=models.MatchValue(value=...))``). Each backend
translates them (``server.to_qdrant``, ``edge_convert``); both also accept qdrant-client's own
models, matched by class name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class SparseVector:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class MatchValue:
    value: Any


@dataclass(frozen=True)
class MatchAny:
    any: list[Any]


@dataclass(frozen=True)
class MatchExcept:
    except_: list[Any]


@dataclass(frozen=True)
class Range:
    gte: float | None = None
    gt: float | None = None
    lte: float | None = None
    lt: float | None = None


@dataclass(frozen=True)
class FieldCondition:
    key: str
    match: Any = None
    range: Range | None = None


@dataclass
class Filter:
    must: list[Any] | None = None
    should: list[Any] | None = None
    must_not: list[Any] | None = None


def name_of(obj: Any) -> str:
    """The class name, which is the same in qdrant-client's models and here."""
    return type(obj).__name__


def field_filter(**conditions: Any) -> Filter:
    """A must-filter of exact matches, e.g. ``field_filter(doc_id="d1", modality="page")``."""
    return Filter(must=[FieldCondition(key=k, match=MatchValue(value=v))
                        for k, v in conditions.items()])
