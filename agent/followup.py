"""Follow-up questions resolved against the previous turn (pure functions, no I/O).

- "the same for 2019" / "and for FY2019?" / "what about Q3?": the previous question with its
  years (or quarter) swapped (``swap_period``); "and the year before?" moves them by one
  (``shift_year``);
- "that figure" / "this chart" / "the table above": the previous turn's figure citation
  (``referenced_citation``);
- "the next page" / "the previous page": the page after / before the one cited
  (``page_target``).

``resolve`` applies all three and returns what the graph should search with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_YEAR = re.compile(r"(?<![\d])((?:19|20)\d\d)(?![\d])")
_FY_SHORT = re.compile(r"(?<![a-z0-9])(fy|fiscal\s+year\s+|fiscal\s+)'?(\d{2})(?!\d)", re.I)
_QUARTER = re.compile(r"(?<![a-z0-9])q([1-4])(?![0-9])", re.I)
_ORDINAL_Q = re.compile(r"\b(first|second|third|fourth)\s+quarter\b", re.I)
_ORDINALS = ["first", "second", "third", "fourth"]
_SAME_FOR = re.compile(
    r"^\s*(?:and\s+|now\s+|ok(?:ay)?,?\s+)?(?:(?:do|give\s+me|show\s+me|what\s+about|how\s+about|"
    r"same|the\s+same|and|what\s+is\s+it)\b[^?.!]{0,40}?)?"
    r"\b(?:for|in|of|about)?\s*(?:fy\s*'?|fiscal\s+(?:year\s+)?|q[1-4]\s+(?:of\s+)?)?"
    r"(?:(?:19|20)\d\d|\d{2}|q[1-4]|(?:first|second|third|fourth)\s+quarter)\b[\s?.!]*$",
    re.I,
)
_REFERENCE = re.compile(
    r"\b(?:that|this|the\s+same|the\s+previous|the\s+last|the\s+above)\s+"
    r"(figure|chart|graph|image|picture|diagram|table|screenshot|slide|page|number|one)\b"
    r"|\b(?:it|that)\b(?=[^?]*\?$)",
    re.I,
)
_IMAGE_WORDS = {"figure", "chart", "graph", "image", "picture", "diagram", "screenshot", "slide"}
_NEXT_PAGE = re.compile(r"\b(?:next|following)\s+page\b|\bpage\s+after\b", re.I)
_PREV_PAGE = re.compile(r"\b(?:previous|prior|preceding)\s+page\b|\bpage\s+before\b", re.I)
_MAX_FOLLOWUP_WORDS = 9


def years_in(text: str) -> list[int]:
    """Four-digit years and FY'nn / fiscal nn years, in order of appearance."""
    found: list[tuple[int, int]] = [(m.start(), int(m.group(1))) for m in _YEAR.finditer(text)]
    found += [(m.start(), 2000 + int(m.group(2))) for m in _FY_SHORT.finditer(text)]
    return [y for _, y in sorted(found)]


def _quarter(text: str) -> int | None:
    m = _QUARTER.search(text)
    if m:
        return int(m.group(1))
    m = _ORDINAL_Q.search(text)
    return _ORDINALS.index(m.group(1).lower()) + 1 if m else None


def is_period_followup(text: str) -> bool:
    """A short turn that only names another year or quarter ("the same for 2019?")."""
    return len(text.split()) <= _MAX_FOLLOWUP_WORDS and bool(_SAME_FOR.match(text))


def swap_period(previous: str, followup: str) -> str | None:
    """The previous question asked for the year / quarter the follow-up names, or None.

    Every year in the previous question moves by the same amount, so "change from FY2016 to
    FY2017" followed by "the same for 2019" becomes "change from FY2018 to FY2019"; a quarter
    replaces the previous quarter.
    """
    if not previous.strip() or not is_period_followup(followup):
        return None
    new_years = years_in(followup)
    new_q = _quarter(followup)
    out = previous
    changed = False
    if new_years:
        old = years_in(previous)
        if old:
            shift = new_years[-1] - max(old)

            def move(m: re.Match[str]) -> str:
                return str(int(m.group(1)) + shift)

            def move_short(m: re.Match[str]) -> str:
                return f"{m.group(1)}{(int(m.group(2)) + shift) % 100:02d}"

            out = _FY_SHORT.sub(move_short, _YEAR.sub(move, out))
        else:
            out = f"{out.rstrip(' ?.!')} in {new_years[-1]}?"
        changed = True
    if new_q:
        if _QUARTER.search(out):
            out = _QUARTER.sub(f"Q{new_q}", out, count=1)
        elif _ORDINAL_Q.search(out):
            out = _ORDINAL_Q.sub(f"{_ORDINALS[new_q - 1]} quarter", out, count=1)
        else:
            out = f"{out.rstrip(' ?.!')} in Q{new_q}?"
        changed = True
    return out if changed else None


_RELATIVE_YEAR = re.compile(
    r"\b(?:the\s+|a\s+)?(?:fiscal\s+)?year\s+(before|earlier|after|later)\b"
    r"|\b(previous|prior|preceding|last|following|next)\s+(?:fiscal\s+)?year\b",
    re.I,
)


def shift_year(previous: str, followup: str) -> str | None:
    """"And the year before?" / "what about the following year?": the previous question with
    every year moved back or forward by one, or None."""
    m = _RELATIVE_YEAR.search(followup)
    if not m or len(followup.split()) > _MAX_FOLLOWUP_WORDS or not years_in(previous):
        return None
    word = (m.group(1) or m.group(2)).lower()
    step = -1 if word in ("before", "earlier", "previous", "prior", "preceding", "last") else 1
    out = _YEAR.sub(lambda y: str(int(y.group(1)) + step), previous)
    return _FY_SHORT.sub(lambda y: f"{y.group(1)}{(int(y.group(2)) + step) % 100:02d}", out)


def other_period(previous: str, followup: str) -> str | None:
    """The previous question asked for the period the follow-up names ("the same for 2019")
    or points to ("and the year before?"), or None."""
    return swap_period(previous, followup) or shift_year(previous, followup)


def referenced_citation(
    followup: str, citations: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The previous turn's citation that "that figure" / "this table" / "it" points at.

    A figure word picks the first image-like citation (image, page render, keyframe); any other
    reference picks the first citation.
    """
    m = _REFERENCE.search(followup)
    if not m or not citations:
        return None
    word = (m.group(1) or "").lower()
    if word in _IMAGE_WORDS:
        for c in citations:
            if c.get("modality") in ("image", "page", "keyframe"):
                return c
    return citations[0]


def page_target(
    followup: str, citations: Sequence[Mapping[str, Any]]
) -> tuple[str, int] | None:
    """(doc_id, page) of the page after / before the first cited page, for "the next page"."""
    step = 1 if _NEXT_PAGE.search(followup) else -1 if _PREV_PAGE.search(followup) else 0
    cited = [c for c in citations if c.get("page")]
    if not step or not cited:
        return None
    page = int(cited[0]["page"]) + step
    return (str(cited[0]["doc_id"]), page) if page >= 1 else None


@dataclass
class Resolution:
    """What a follow-up means: the query to search, and the document / page it points at."""

    query: str
    doc_ids: list[str] = field(default_factory=list)
    page: int | None = None
    reason: str = ""


def resolve(
    followup: str, previous_question: str = "", citations: Sequence[Mapping[str, Any]] = ()
) -> Resolution:
    """Resolve a follow-up against the previous question and citations (unchanged if none)."""
    swapped = other_period(previous_question, followup)
    if swapped:
        return Resolution(swapped, reason="same question, other period")
    target = page_target(followup, citations)
    if target:
        return Resolution(
            f"{previous_question}\n{followup}".strip(), [target[0]], target[1], "adjacent page"
        )
    cited = referenced_citation(followup, citations)
    if cited is not None:
        return Resolution(
            f"{previous_question}\n{followup}".strip(),
            [str(cited.get("doc_id"))] if cited.get("doc_id") else [],
            cited.get("page"),
            "the cited source",
        )
    return Resolution(followup)
