"""A question naming a moment of a recording ranks the video spans around it first."""

from __future__ import annotations

import pytest

from tests.test_rerank import hit
from vistarag.agent.rerank import HybridReranker, RerankQuery
from vistarag.agent.time_mentions import moments


@pytest.mark.parametrize(("text", "want"), [
    ("Show me the part of the test video that starts around six and a half seconds in", [6.5]),
    ("what is on screen at 1:23?", [83.0]),
    ("from 01:02:03 to 0:05.5", [3723.0, 5.5]),
    ("2 min 30 s in", [150.0]),
    ("1m30s", [90.0]),
    ("a minute and a half into the talk", [90.0]),
    ("twenty-five seconds", [25.0]),
    ("three minutes 10 seconds", [190.0]),
    ("at 12.5s", [12.5]),
    # not moments
    ("What was revenue in the last 12 months?", []),
    ("sales in the 1990s", []),
    ("a second opinion on the 10-K for 2019, Q2 2024", []),
    ("someone said it twice", []),
])
def test_moments(text: str, want: list[float]) -> None:
    assert moments(text) == pytest.approx(want)


def keyframes() -> list:
    """Three scenes of one video that read alike (the same words on screen): retrieval ties
    them, in whatever order the index returns them; the first is not the one asked about."""
    spans = [(12.579, 24.024), (0.5, 6.607), (6.607, 12.579)]
    return [hit(f"k{i}", "A test video with a frame counter", 0.5, {"text": 0.6},
                modality="keyframe", t_start=a, t_end=b) for i, (a, b) in enumerate(spans)]


def test_a_named_moment_reorders_the_video_spans_around_it() -> None:
    query = "Show me the part of the test video that starts around six and a half seconds in"
    ranked = HybridReranker().rerank(RerankQuery(text=query), keyframes(), top_k=3)
    assert ranked[0].t_end >= 6.0 and ranked[0].t_start <= 7.2  # a span at 6.5 s
    assert ranked[-1].t_start == 12.579  # nothing dropped: the far scene is last
    assert ranked[0].extra["rerank"]["time"] > 0 == ranked[-1].extra["rerank"]["time"]
    untimed = HybridReranker().rerank(RerankQuery(text="Show me the test video"), keyframes(), 3)
    assert [h.id for h in untimed] == ["k0", "k1", "k2"]  # no moment named: retrieval order


def test_documents_are_not_moved_by_a_duration_in_the_question() -> None:
    """Untimed hits (pages, chunks) get no time preference: a '10 minutes' in a question about
    a document leaves its ranking to the other signals."""
    docs = [hit("a", "Each lorry is inspected every 10 minutes by the driver.", 0.5, {"text": 0.7}),
            hit("b", "Brake checks happen weekly.", 0.4, {"text": 0.5})]
    ranked = HybridReranker().rerank(RerankQuery(text="what takes 10 minutes?"), docs, top_k=2)
    assert [h.id for h in ranked] == ["a", "b"]
    assert all(h.extra["rerank"]["time"] == 0 for h in ranked)
