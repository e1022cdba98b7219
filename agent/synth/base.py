"""Request/result types shared by every synthesizer, and ``[n]`` citation parsing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from vistarag.agent.citations import marker_groups, marker_numbers, renumber
from vistarag.agent.types import Citation, Hit

TokenCallback = Callable[[str], None]


class SynthesisRequest(BaseModel):
    """Everything one answer is built from. Sources are numbered ``[1..n]`` in ``hits`` order."""

    question: str
    hits: list[Hit] = Field(default_factory=list)
    user_images: list[str] = Field(default_factory=list)
    user_image_text: list[str] = Field(default_factory=list)
    history: list[dict] = Field(default_factory=list)
    search_text: str = ""
    """What was searched for, when it differs from ``question``: a follow-up resolved against
    the previous turn ("and the year before?" -> "Adobe's operating income in fiscal 2021?")."""

    @property
    def matched_text(self) -> str:
        """The text quotes are matched against: the resolved follow-up, else the question."""
        return self.search_text or self.question


class SynthesisResult(BaseModel):
    """An answer, the sources it cites, who wrote it, and an optional notice for the user."""

    answer: str
    citations: list[Citation]
    synthesizer: str
    notice: str | None = None


@runtime_checkable
class Synthesizer(Protocol):
    """Anything that turns a ``SynthesisRequest`` into a ``SynthesisResult``.

    ``on_token`` receives the answer as it is produced (streamed deltas). If a remote attempt
    fails part-way and is retried or replaced by the extractive answer, deltas of the failed
    attempt may already have been sent: ``SynthesisResult.answer`` is always authoritative.
    """

    name: str

    def synthesize(
        self, request: SynthesisRequest, on_token: TokenCallback | None = None
    ) -> SynthesisResult: ...


def cited_numbers(answer: str) -> list[int]:
    """Source numbers cited in ``answer`` ("[3]", "[1, 2]", "[1;2]", "[2-4]"), in order of first
    appearance, without repeats."""
    numbers = (n for group in marker_groups(answer) for n in marker_numbers(group))
    return list(dict.fromkeys(numbers))


def parse_citations(answer: str, hits: list[Hit]) -> list[Citation]:
    """``Citation`` objects for the ``[n]`` markers in ``answer``; out-of-range numbers dropped."""
    return [
        Citation.from_hit(n, hits[n - 1])
        for n in sorted(cited_numbers(answer))
        if 1 <= n <= len(hits)
    ]


def make_result(
    answer: str, hits: list[Hit], synthesizer: str, notice: str | None = None, query: str = ""
) -> SynthesisResult:
    """A ``SynthesisResult`` with the answer's citations numbered 1, 2, 3 in order of first use,
    each showing the sentence or row of its source that best matches ``query``
    (``citations.renumber``)."""
    text, citations = renumber(answer, hits, query)
    return SynthesisResult(
        answer=text,
        citations=citations,
        synthesizer=synthesizer,
        notice=notice,
    )
