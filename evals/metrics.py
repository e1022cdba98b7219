"""Metric functions: retrieval (recall@k, MRR, nDCG@k), answer checks, citations, trajectories.

Relevance is judged per *item*: each ``all_of`` source is one item, and the ``any_of`` list
together is one item (any of its sources satisfies it). A retrieved hit is relevant when it
matches a source; each item is credited once, at its first matching rank.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vistarag.evals.suite import AnswerExpect, SourcesExpect, SourceSpec, ToolsExpect


class Located(Protocol):
    """What a hit or a citation offers to be matched against a source."""

    doc_id: str
    source: str
    modality: str
    page: int | None
    t_start: float | None
    t_end: float | None


# ---- source matching ---------------------------------------------------------------------------
def _document_matches(pattern: str, hit: Located) -> bool:
    source = hit.source.replace("\\", "/")
    if pattern == hit.doc_id:
        return True
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatch(source, pattern) or fnmatch.fnmatch(source, f"*/{pattern}")
    return source == pattern or source.endswith("/" + pattern.lstrip("/"))


def source_matches(spec: SourceSpec, hit: Located) -> bool:
    """Does a retrieved hit (or a citation) match one expected source?"""
    if spec.document is not None and not _document_matches(spec.document, hit):
        return False
    if spec.modality is not None and hit.modality not in spec.modality:
        return False
    if spec.page is not None and hit.page != spec.page:
        return False
    if spec.pages is not None and (
        hit.page is None or not spec.pages[0] <= hit.page <= spec.pages[1]
    ):
        return False
    if spec.time is not None:
        if hit.t_start is None:
            return False
        end = hit.t_end if hit.t_end is not None else hit.t_start
        if end < spec.time[0] or hit.t_start > spec.time[1]:
            return False
    return True


def relevance_items(expect: SourcesExpect) -> list[list[SourceSpec]]:
    """The items to find: each all_of source alone, and the any_of sources as one item."""
    items = [[spec] for spec in expect.all_of]
    if expect.any_of:
        items.append(list(expect.any_of))
    return items


def item_ranks(hits: Sequence[Located], items: list[list[SourceSpec]]) -> list[int | None]:
    """For each retrieved hit (by rank), the index of the item it credits first, else None."""
    credited: set[int] = set()
    out: list[int | None] = []
    for hit in hits:
        found = None
        for i, alternatives in enumerate(items):
            if i not in credited and any(source_matches(s, hit) for s in alternatives):
                found = i
                credited.add(i)
                break
        out.append(found)
    return out


def is_relevant(hit: Located, items: list[list[SourceSpec]]) -> bool:
    return any(source_matches(s, hit) for alternatives in items for s in alternatives)


def recall_at_k(credits: Sequence[int | None], n_items: int, k: int) -> float:
    """Share of relevant items found in the top k."""
    if n_items == 0:
        return 0.0
    return len({c for c in credits[:k] if c is not None}) / n_items


def mrr(relevant: Sequence[bool]) -> float:
    """Reciprocal rank of the first relevant hit (0 when none is)."""
    return next((1.0 / rank for rank, r in enumerate(relevant, 1) if r), 0.0)


def ndcg_at_k(credits: Sequence[int | None], n_items: int, k: int) -> float:
    """Binary-gain nDCG@k: a hit gains 1 when it credits a new item."""
    if n_items == 0:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 1) for rank, c in enumerate(credits[:k], 1) if c is not None)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(n_items, k) + 1))
    return dcg / ideal


@dataclass
class CitationScores:
    precision: float | None
    recall: float


def citation_scores(citations: Sequence[Located], items: list[list[SourceSpec]]) -> CitationScores:
    """Precision: cited sources that are relevant; recall: items some citation covers."""
    if not items:
        return CitationScores(None, 0.0)
    precision = (
        sum(is_relevant(c, items) for c in citations) / len(citations) if citations else None
    )
    covered = {i for c in citations for i, alts in enumerate(items)
               if any(source_matches(s, c) for s in alts)}
    return CitationScores(precision, len(covered) / len(items))


# ---- answer checks ---------------------------------------------------------------------------
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:[,\u202f\u00a0]\d{3})+(?!\d)|\d+)(?:\.\d+)?")


def numbers_in(text: str) -> list[float]:
    """Numbers written in a text: ``4,250``, ``-3.5``, ``14%`` (as 14); not the 4 of ``Q4``."""
    values = []
    for match in _NUMBER.finditer(text):
        raw = re.sub(r"[,\u202f\u00a0]", "", match.group())
        try:
            values.append(float(raw))
        except ValueError:
            continue
    return values


@dataclass
class Check:
    """One answer check's outcome, with what was expected and what was seen."""

    name: str
    passed: bool
    expected: str
    actual: str = ""


def answer_checks(answer: str, expect: AnswerExpect) -> list[Check]:
    """Run every check of ``expect`` on the answer."""
    flags = 0 if expect.case_sensitive else re.IGNORECASE
    norm = (lambda s: s) if expect.case_sensitive else str.lower
    excerpt = " ".join(answer.split())[:300]
    checks: list[Check] = []
    for needle in expect.contains:
        checks.append(Check("contains", norm(needle) in norm(answer), repr(needle), excerpt))
    for pattern in expect.regex:
        checks.append(Check("regex", re.search(pattern, answer, flags) is not None,
                            f"/{pattern}/", excerpt))
    for needle in expect.not_contains:
        found = norm(needle) in norm(answer)
        checks.append(Check("not_contains", not found, f"not {needle!r}",
                            excerpt if found else ""))
    stated = numbers_in(answer)
    for num in expect.numbers:
        tol = num.tolerance * abs(num.value) if num.relative else num.tolerance
        ok = any(abs(v - num.value) <= tol + 1e-9 for v in stated)
        checks.append(Check("number", ok, f"{num.value:g} ± {tol:g}",
                            ", ".join(f"{v:g}" for v in stated[:12]) or "no numbers"))
    return checks


# ---- tool trajectories (agentevals) ----------------------------------------------------------
_EXPECTED = "__vistarag_expected__"


def _messages(calls: Iterable[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One assistant message per call, so strict mode also checks their order."""
    out: list[dict[str, Any]] = [{"role": "user", "content": "turn"}]
    for i, (name, args) in enumerate(calls):
        out.append({"role": "assistant", "content": "", "tool_calls": [
            {"id": f"c{i}", "type": "function",
             "function": {"name": name, "arguments": json.dumps(args, default=str)}}]})
    return out


def _args_match(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Expected arguments are a subset of the actual ones, whichever side agentevals passes."""
    expected, actual = (a, b) if _EXPECTED in a else (b, a)
    return all(k in actual and actual[k] == v for k, v in expected.items() if k != _EXPECTED)


def trajectory_match(actual: Sequence[tuple[str, dict[str, Any]]], expect: ToolsExpect) -> bool:
    """agentevals' trajectory match (strict/unordered/subset/superset), arguments by subset."""
    from agentevals.trajectory.match import create_trajectory_match_evaluator

    names = {c.name for c in expect.calls} | {name for name, _ in actual}
    evaluator = create_trajectory_match_evaluator(
        trajectory_match_mode=expect.match,
        tool_args_match_mode="exact",
        tool_args_match_overrides={name: _args_match for name in names},
    )
    reference = [(c.name, {**c.args, _EXPECTED: True}) for c in expect.calls]
    result = evaluator(outputs=_messages(actual), reference_outputs=_messages(reference))
    return bool(result["score"])


# ---- aggregation -----------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
