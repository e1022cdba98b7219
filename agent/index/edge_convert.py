"""Filters and sparse vectors (``filters``' classes or qdrant-client's) for Qdrant Edge."""

from __future__ import annotations

from typing import Any

import numpy as np
import qdrant_edge as qe

from vistarag.agent.errors import VistaRAGError
from vistarag.agent.index.filters import SparseVector, name_of


def vector(value: Any) -> Any:
    """A dense list as it is; a sparse vector (ours or qdrant-client's) as Edge's."""
    if hasattr(value, "indices") and hasattr(value, "values"):
        return qe.SparseVector(indices=list(value.indices), values=list(value.values))
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def vectors(named: dict[str, Any]) -> dict[str, Any]:
    return {name: vector(v) for name, v in named.items() if v is not None}


def from_edge_vector(value: Any) -> Any:
    if isinstance(value, qe.SparseVector):
        return SparseVector(indices=list(value.indices), values=list(value.values))
    return value


def edge_filter(flt: Any) -> qe.Filter | None:
    if flt is None:
        return None
    return qe.Filter(
        must=_conditions(flt.must), should=_conditions(flt.should),
        must_not=_conditions(flt.must_not),
    )


def _conditions(items: Any) -> list[Any] | None:
    if items is None:
        return None
    items = items if isinstance(items, list) else [items]
    return [_condition(c) for c in items]


def _condition(cond: Any) -> Any:
    kind = name_of(cond)
    if kind == "Filter":
        return edge_filter(cond)
    if kind == "FieldCondition":
        if cond.match is not None:
            return qe.FieldCondition(key=cond.key, match=_match(cond.match))
        if cond.range is not None:
            r = cond.range
            return qe.FieldCondition(
                key=cond.key, range=qe.RangeFloat(gte=r.gte, gt=r.gt, lte=r.lte, lt=r.lt))
    if kind == "IsEmptyCondition":
        return qe.IsEmptyCondition(key=cond.is_empty.key)
    if kind == "IsNullCondition":
        return qe.IsNullCondition(key=cond.is_null.key)
    if kind == "HasIdCondition":
        return qe.HasIdCondition(point_ids={str(i) for i in cond.has_id})
    raise VistaRAGError(
        f"the embedded index (Qdrant Edge) cannot translate the filter condition {cond!r}: "
        "use match, range, is_empty, is_null or has_id conditions, or set QDRANT_URL"
    )


def _match(match: Any) -> Any:
    kind = name_of(match)
    if kind == "MatchValue":
        value = match.value
        if isinstance(value, bool):  # qdrant-edge-py 0.9.0 reads a Python bool as the int 1/0
            value = np.bool_(value)  # (which matches nothing); numpy's bool arrives as a bool
        return qe.MatchValue(value)
    if kind == "MatchAny":
        return qe.MatchAny(any=list(match.any))
    if kind == "MatchExcept":
        return qe.MatchExcept(except_=list(match.except_))
    if kind == "MatchText":
        return qe.MatchText(match.text)
    raise VistaRAGError(
        f"the embedded index (Qdrant Edge) cannot translate the match {match!r}: "
        "use MatchValue, MatchAny, MatchExcept or MatchText"
    )
