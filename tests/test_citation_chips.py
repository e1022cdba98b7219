"""Citation chips (issue 22 item 2), without a browser: what each chip is named, which sources
merge into one, how the answer's markers follow, and what the chat sends for them."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from vistarag.agent.citations import Renumberer, cite_hits, numbering_for, renumber
from vistarag.agent.index.records import point_id
from vistarag.agent.types import Hit

SHOT = "/data/shots/excel.png"


def hit(n: int, source: str, **kw: object) -> Hit:
    return Hit(id=kw.pop("id", f"h{n}"), score=1.0 - n / 100, modality=kw.pop("modality", "text"),
               doc_id=kw.pop("doc_id", source.rsplit("/", 1)[-1]), source=source,
               text=kw.pop("text", f"passage {n}"), **kw)


def ocr_region(i: int, bbox: list[float], text: str = "") -> Hit:
    """The i-th OCR region of excel.png, with the point id ingest gives it."""
    return hit(i, SHOT, id=point_id("excel.png", "sha-1", f"image-ocr{i}"), content_hash="sha-1",
               bbox=bbox, text=text or f"cells {i}")


def test_chips_name_the_page_region_or_moment() -> None:
    hits = [
        hit(1, "/docs/report.pdf", page=4, bbox=[72, 80, 540, 200]),
        ocr_region(1, [10, 40, 300, 60]),
        hit(3, SHOT, modality="image", bbox=[0, 0, 800, 600], blob="b1"),
        hit(4, "/media/talk.mp4", modality="transcript", t_start=83.6, t_end=95.0),
        hit(5, "/docs/notes.md"),
    ]
    _, cited = renumber("a [1] b [2] c [3] d [4] e [5]", hits)
    assert [c.name() for c in cited] == [
        "report.pdf p. 4", "excel.png region 2", "excel.png", "talk.mp4 @ 01:23", "notes.md"]


def test_identical_sources_merge_and_markers_do_not_double() -> None:
    """Two passages of one PDF page and two hits of one OCR region are one source each: one
    number, one citation (with both passages' boxes), and "[1] [1]" reads "[1]"."""
    hits = [
        hit(1, "/docs/report.pdf", page=4, bbox=[72, 80, 540, 200], text="Lorries are inspected."),
        hit(2, "/docs/report.pdf", page=4, bbox=[72, 300, 540, 340], text="Every 40,000 km."),
        ocr_region(0, [10, 10, 200, 30]),
        ocr_region(0, [10, 10, 200, 30]),
        hit(5, "/docs/report.pdf", page=5),
    ]
    text, cited = renumber("Inspected [1] [2]. Cells [3], again [4]. Also [2, 5].", hits)
    assert text == "Inspected [1]. Cells [2], again [2]. Also [1, 3]."
    assert [c.n for c in cited] == [1, 2, 3]
    assert [c.name() for c in cited] == ["report.pdf p. 4", "excel.png region 1",
                                         "report.pdf p. 5"]
    assert cited[0].drawn_boxes() == [[72, 80, 540, 200], [72, 300, 540, 340]]


def test_the_streamed_answer_has_the_final_numbers() -> None:
    hits = [hit(1, "/docs/a.pdf", page=1), hit(2, "/docs/b.pdf", page=2),
            hit(3, "/docs/a.pdf", page=1)]
    answer = "First [3]. Then [2] and [1] [3]. End [2]."
    final, _ = renumber(answer, hits)
    stream = numbering_for(hits)
    pieces = [stream.feed(answer[i : i + 3]) for i in range(0, len(answer), 3)]
    assert "".join(pieces) + stream.flush() == final == "First [1]. Then [2] and [1]. End [2]."
    assert Renumberer().feed("x [1] [1].") == "x [1]."  # no sources known: only the repeat goes


def test_a_keyframe_and_the_words_said_that_second_are_one_source() -> None:
    hits = [hit(1, "/m/talk.mp4", modality="keyframe", t_start=4.0, t_end=4.0, blob="k"),
            hit(2, "/m/talk.mp4", modality="transcript", t_start=4.4, t_end=9.0),
            hit(3, "/m/talk.mp4", modality="transcript", t_start=12.0, t_end=15.0)]
    text, cited = renumber("Opens [1][2]; later [3].", hits)
    assert text == "Opens [1]; later [2]."
    assert [c.name() for c in cited] == ["talk.mp4 @ 00:04", "talk.mp4 @ 00:12"]
    assert cited[0].t_end == 9.0 and cited[0].blob == "k"


def test_a_region_without_a_known_number_gets_a_free_one() -> None:
    """An id that is not ``image-ocr<i>`` (another ingest) still gets a number of its own."""
    hits = [ocr_region(0, [0, 0, 50, 10]),
            hit(2, SHOT, id="other", content_hash="sha-1", bbox=[0, 20, 50, 30])]
    _, cited = renumber("[1] [2]", hits)
    assert [c.name() for c in cited] == ["excel.png region 1", "excel.png region 2"]


def test_search_results_are_one_line_per_source() -> None:
    hits = [hit(1, "/docs/r.pdf", page=2, text="Brakes are checked."),
            hit(2, "/docs/r.pdf", page=2, text="Tyres are checked."),
            hit(3, "/docs/r.pdf", page=3)]
    cited = cite_hits(hits, "tyres")
    assert [(c.n, c.name()) for c in cited] == [(1, "r.pdf p. 2"), (2, "r.pdf p. 3")]
    assert "Tyres" in cited[0].snippet


chainlit = pytest.importorskip("chainlit")


def test_the_chat_sends_each_view_under_its_chip_and_its_marker() -> None:
    asyncio.run(_chat_elements())


async def _chat_elements() -> None:
    from chainlit.context import init_http_context

    from vistarag.ui.web import evidence

    init_http_context()  # elements belong to a session's thread

    hits = [hit(1, "/docs/report.pdf", page=4, bbox=[72, 80, 540, 200]),
            hit(2, "/media/talk.mp4", modality="transcript", t_start=83.0, t_end=90.0),
            hit(3, "/other/report.pdf", doc_id="report-2", page=4, bbox=[1, 2, 3, 4])]
    _, cited = renumber("a [1] b [2] c [3]", hits)
    md = evidence.sources_markdown(cited)
    assert "- [1] report.pdf p. 4\n- [2] talk.mp4 @ 01:23\n- [3] report.pdf p. 4 (2)" in md
    assert "Whole documents: report.pdf (all pages)" in md
    views = {e.name: e for e in evidence.elements_for(cited)}
    assert set(views) == {"report.pdf p. 4", "[1]", "talk.mp4 @ 01:23", "[2]",
                          "report.pdf p. 4 (2)", "[3]", "report.pdf (all pages)"}
    assert views["[1]"].url == views["report.pdf p. 4"].url
    assert views["[1]"].url.startswith("/vistarag/page/report.pdf/4.png?box=72.0,80.0")
    video = views["talk.mp4 @ 01:23"]
    assert video.url.endswith("/talk.mp4#t=83")
    assert video.player_config == {"file": {"attributes": {"autoPlay": True}}}
    assert isinstance(views["report.pdf (all pages)"], chainlit.Pdf)
    assert evidence.linkable_markers("see [1, 3] and [2]") == "see [1][3] and [2]"


def test_an_image_region_is_drawn_on_the_image(tmp_path) -> None:
    from vistarag.ui.web.page_view import parse_boxes, region_url, render_image_region

    _, cited = renumber("[1]", [ocr_region(1, [100, 50, 300, 80])])
    url = region_url(cited[0])
    assert url == "/vistarag/region/excel.png.png?box=100.0,50.0,300.0,80.0"
    path = tmp_path / "excel.png"
    Image.new("RGB", (2200, 400), "white").save(path)
    png = Image.open(io.BytesIO(render_image_region(path, parse_boxes(url.split("box=")[1]),
                                                    10_000_000)))
    assert png.width == 1100  # fitted to the side panel's render width: half the size
    assert png.getpixel((25, 12)) == (255, 255, 255)  # outside the box
    r, g, b = png.getpixel((50 - 2, 40))  # the left edge of the (halved) box
    assert r > 180 and g < 90 and b < 90
    with pytest.raises(ValueError):
        parse_boxes("1,2,3")


def test_thread_titles_are_distinct() -> None:
    from vistarag.ui.web.persistence import TITLE_CHARS, thread_title

    assert thread_title("What is X?") == "What is X?"
    assert thread_title("What is X?", ["What is X?"]) == "What is X? (2)"
    assert thread_title("What is X?", ["What is X?", "What is X? (2)"]) == "What is X? (3)"
    long = thread_title("word " * 40, ["x"])
    assert len(long) <= TITLE_CHARS and long.endswith("\u2026")
