"""Eval metric functions against hand-computed values."""

from __future__ import annotations

import math

import pytest

from vistarag.agent.types import Hit
from vistarag.evals import metrics as m
from vistarag.evals.suite import AnswerExpect, SourcesExpect, SourceSpec, ToolsExpect


def hit(source: str, page: int | None = None, modality: str = "text",
        t: tuple[float, float] | None = None) -> Hit:
    return Hit(id=f"{source}-{page}", score=0.5, modality=modality, doc_id="d" + source,
               source=f"/data/corpus/{source}", page=page,
               t_start=t[0] if t else None, t_end=t[1] if t else None)


def test_source_matching_by_document_page_range_time_and_modality() -> None:
    h = hit("report.pdf", page=3)
    assert m.source_matches(SourceSpec(document="report.pdf"), h)
    assert m.source_matches(SourceSpec(document="corpus/report.pdf", page=3), h)
    assert m.source_matches(SourceSpec(document="*.pdf", pages=(2, 4)), h)
    assert m.source_matches(SourceSpec(document="dreport.pdf"), h)  # by doc_id
    assert not m.source_matches(SourceSpec(document="port.pdf"), h)  # not a path suffix
    assert not m.source_matches(SourceSpec(document="report.pdf", page=2), h)
    assert not m.source_matches(SourceSpec(modality=["image", "page"]), h)
    clip = hit("clip.mp4", modality="keyframe", t=(10.0, 12.0))
    assert m.source_matches(SourceSpec(time=(11.5, 20.0)), clip)  # overlaps
    assert not m.source_matches(SourceSpec(time=(12.5, 20.0)), clip)
    assert not m.source_matches(SourceSpec(time=(0, 5)), hit("report.pdf", page=1))


def test_recall_mrr_ndcg_hand_computed() -> None:
    # Two all_of items (p.2 and p.5) and an any_of item (chart.png or table.png).
    expect = SourcesExpect(
        all_of=[SourceSpec(document="a.pdf", page=2), SourceSpec(document="a.pdf", page=5)],
        any_of=[SourceSpec(document="chart.png"), SourceSpec(document="table.png")],
    )
    items = m.relevance_items(expect)
    assert len(items) == 3
    hits = [hit("x.pdf", 1), hit("a.pdf", 5), hit("a.pdf", 5), hit("table.png"), hit("y.md")]
    credits = m.item_ranks(hits, items)
    assert credits == [None, 1, None, 2, None]  # the duplicate p.5 credits nothing new
    assert m.recall_at_k(credits, 3, 1) == 0.0
    assert m.recall_at_k(credits, 3, 2) == pytest.approx(1 / 3)
    assert m.recall_at_k(credits, 3, 5) == pytest.approx(2 / 3)
    relevant = [m.is_relevant(h, items) for h in hits]
    assert relevant == [False, True, True, True, False]
    assert m.mrr(relevant) == 0.5
    assert m.mrr([False, False]) == 0.0
    # DCG@5 = 1/log2(3) + 1/log2(5); IDCG@5 = 1 + 1/log2(3) + 1/log2(4)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 0.5
    assert m.ndcg_at_k(credits, 3, 5) == pytest.approx(dcg / idcg)
    # @2: DCG = 1/log2(3); IDCG = 1 + 1/log2(3)
    assert m.ndcg_at_k(credits, 3, 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert m.ndcg_at_k([0], 1, 1) == 1.0


def test_citation_precision_and_recall() -> None:
    items = m.relevance_items(SourcesExpect(all_of=[SourceSpec(document="a.pdf", page=2),
                                                    SourceSpec(document="b.png")]))
    cited = [hit("a.pdf", 2), hit("a.pdf", 2), hit("c.md"), hit("x.pdf", 9)]
    scores = m.citation_scores(cited, items)
    assert scores.precision == pytest.approx(2 / 4)
    assert scores.recall == pytest.approx(1 / 2)
    none = m.citation_scores([], items)
    assert none.precision is None and none.recall == 0.0


def test_answer_checks_contains_regex_numbers_and_must_not() -> None:
    answer = "Every lorry is inspected after 40,000 kilometres [1]. The total is 4,250.5 EUR."
    expect = AnswerExpect(
        contains=["LORRY", "tyres"], regex=[r"inspected after \d"],
        not_contains=["weekly", "kilometres"],
        numbers=[40000, {"value": 4200, "tolerance": 0.02, "relative": True},
                 {"value": 7, "tolerance": 1}],
    )
    results = [(c.name, c.passed) for c in m.answer_checks(answer, expect)]
    assert results == [("contains", True), ("contains", False), ("regex", True),
                       ("not_contains", True), ("not_contains", False), ("number", True),
                       ("number", True), ("number", False)]
    assert m.numbers_in("Q4: 530, up 14% to -3.5 and 1,234,567.25") == [530, 14, -3.5,
                                                                          1234567.25]
    assert m.numbers_in("Table 1,2024 and 12,34") == [1, 2024, 12, 34]
    strict = AnswerExpect(contains=["LORRY"], case_sensitive=True)
    assert not m.answer_checks(answer, strict)[0].passed


def test_trajectory_match_modes_through_agentevals() -> None:
    actual = [("retrieve", {"query": "revenue", "k": 5}),
              ("search_video_keyframes", {"query": "vest"})]

    def match(mode: str, calls: list[dict]) -> bool:
        return m.trajectory_match(actual, ToolsExpect(match=mode, calls=calls))

    both = [{"name": "retrieve", "args": {"query": "revenue"}},
            {"name": "search_video_keyframes"}]
    assert match("strict", both)
    assert not match("strict", list(reversed(both)))          # order matters
    assert match("unordered", list(reversed(both)))
    assert not match("strict", [{"name": "retrieve", "args": {"query": "other"}},
                                {"name": "search_video_keyframes"}])
    assert match("superset", [{"name": "retrieve"}])          # at least these
    assert not match("subset", [{"name": "retrieve"}])        # a call outside the set
    assert match("subset", [*both, {"name": "retrieve", "args": {"modality": ["image"]}}])
    assert not match("superset", [{"name": "retrieve", "args": {"k": 8}}])
    assert m.trajectory_match([], ToolsExpect(match="strict", calls=[]))


def test_percentile_and_mean() -> None:
    assert m.percentile([10, 20, 30, 40], 50) == 25
    assert m.percentile([10, 20, 30, 40], 95) == pytest.approx(38.5)
    assert m.percentile([], 50) is None
    assert m.mean([1, None, 3]) == 2
    assert m.mean([None]) is None
