"""The offline answer to a question that comes with a screenshot (issue 22 item 1): what the
image holds (its lines and UI labels, icon noise dropped), then what in the knowledge base
matches it, with citations. Real OCR on a rendered 1920x1080 screenshot, a real index."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.fixtures_media import font
from tests.llm_servers import text_hit
from tests.test_query_ocr import MESSAGE, ui_screenshot
from vistarag.agent.engine import Engine
from vistarag.agent.ocr import OcrLine
from vistarag.agent.qdrant import close_all
from vistarag.agent.query_ocr import QueryOcr, tidy
from vistarag.agent.settings import Settings
from vistarag.agent.synth.base import SynthesisRequest
from vistarag.agent.synth.extractive import ExtractiveSynthesizer
from vistarag.agent.types import Hit
from vistarag.graphs import build_graph, run_turn

NOTES = ("Proxy troubleshooting. Error code QX-4471 means the proxy certificate expired. "
         "Renew it with certtool renew on the proxy host, then restart the browser.")
HARBOUR = "The new container quay of the harbour expansion opens in May 2027."
NOISE = ("\u25a1", "\u65e5", "\u53e3", "\u00d7")  # what icons are read as: □ 日 口 ×


def noisy_screenshot() -> Image.Image:
    """``ui_screenshot`` with a title bar (app, document, window controls) and ribbon icons:
    the squares and crosses OCR reads as glyphs."""
    image = ui_screenshot()
    draw = ImageDraw.Draw(image)
    draw.text((20, 8), "AutoSave", fill="white", font=font(18))
    draw.text((120, 8), "On", fill="white", font=font(18))
    draw.text((760, 8), "Document 10.docx - Saved", fill="white", font=font(18))
    draw.line([1760, 20, 1774, 20], fill="white", width=2)  # minimise
    draw.rectangle([1810, 13, 1824, 27], outline="white", width=2)  # maximise
    draw.line([1860, 13, 1874, 27], fill="white", width=2)  # close
    draw.line([1860, 27, 1874, 13], fill="white", width=2)
    for x in range(1000, 1160, 40):  # ribbon icons beside the menu
        draw.rectangle([x, 62, x + 16, 78], outline="black", width=2)
        draw.line([x + 4, 66, x + 12, 74], fill="black", width=2)
    return image


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    root = tmp_path_factory.mktemp("shot-answer")
    (root / "proxy_notes.md").write_text(NOTES, encoding="utf-8")
    (root / "harbour_plan.md").write_text(HARBOUR, encoding="utf-8")
    settings = Settings(home=root / "home", joint_model="none", synthesizer="extractive",
                        checkpointer="memory", _env_file=None)
    engine = Engine(settings)
    report = engine.ingestor().ingest_paths([root / "proxy_notes.md", root / "harbour_plan.md"])
    assert report.count("added") == 2, report.results
    yield build_graph(engine=engine)
    close_all()


def test_offline_screenshot_answer_says_what_it_holds_then_what_matches(
    graph: object, tmp_path: Path
) -> None:
    """The image's message is quoted as a line, its menu as UI labels, the icons OCR read as
    glyphs are gone; then the knowledge base's matching sentence, cited; no "(from ...)"."""
    shot = tmp_path / "shot.png"
    noisy_screenshot().save(shot)
    raw = " ".join(ln.text for ln in QueryOcr().lines(Image.open(shot))[0])
    assert any(glyph in raw for glyph in NOISE), raw  # the fixture does produce icon noise

    started = time.perf_counter()
    result = run_turn(graph, "What does this screenshot show?", images=[shot])
    print(f"offline screenshot turn: {time.perf_counter() - started:.2f} s")
    answer = result.answer
    assert result.synthesizer == "extractive" and result.modality == "text+image"
    holds, _, matches = answer.partition("What in your knowledge base matches it:")
    assert "Your image holds this text:" in holds, answer
    assert f'- "{MESSAGE}"' in holds
    assert '- "Document 10.docx - Saved"' in holds
    assert "- UI labels: AutoSave, On, File, Home, Insert, Design, Layout, Review" in holds
    for glyph in NOISE:
        assert glyph not in answer, answer
    assert ", X," not in answer and "(from " not in answer
    assert "QX-4471 means the proxy certificate expired" in matches and "[1]" in matches
    assert "certtool renew" in matches  # the sentence after it: the fix
    assert [Path(c.source).name for c in result.citations] == ["proxy_notes.md"]


def test_a_knowledge_base_screenshot_is_quoted_without_its_icon_glyphs() -> None:
    """A screenshot in the knowledge base (OCR kept at ingest, noise and all) that shares the
    question image's labels: named with the labels they share, no glyphs, and not quoted as
    a sentence it is not."""
    excel = Hit(id="x", score=1.0, modality="image", doc_id="excel", source="/kb/excel.png",
                text="Search \u51b2 AutoSave Off\n8 \u2463 \u53e3 \u00d7\nFile\nHome\nInsert\n"
                     "\u7701Copy\n10\n11")
    request = SynthesisRequest(question="What is this?", user_images=["0" * 64 + ".png"],
                               user_image_text=["UI labels: AutoSave, File, Home, Copy"],
                               hits=[excel])
    answer = ExtractiveSynthesizer().answer_text(request)
    assert "excel.png has the same UI labels: File, Home, Copy [1]" in answer, answer
    assert "Search AutoSave Off" not in answer  # one shared label word is not a match
    for glyph in (*NOISE, "\u2463", "\u51b2", "\u7701"):
        assert glyph not in answer, answer


def test_a_screenshot_that_matches_nothing_says_so_and_names_the_closest() -> None:
    """No shared words: the answer says so, and names the closest results (not as quotes)."""
    request = SynthesisRequest(
        question="What does this error mean?", user_images=["0" * 64 + ".png"],
        user_image_text=["Error code ZZ-9: disk quota exceeded\nUI labels: File, Edit"],
        hits=[text_hit(1, HARBOUR, doc="harbour", page=None)])
    answer = ExtractiveSynthesizer().answer_text(request)
    assert '- "Error code ZZ-9: disk quota exceeded"' in answer
    assert "Nothing in your knowledge base shares its words" in answer
    assert "closest results were [1] harbour.pdf" in answer and "May 2027" not in answer


def test_tidy_cleans_what_icons_leave_in_labels_and_lines() -> None:
    """Latin-script screenshots lose CJK glyphs and symbols read from icons; stray single
    letters at a label's ends ("X Cut", "Share v") and bare numbers (row numbers) go."""
    items = ["X Cut", "Share v", "\u7701Copy", "\u53ef", "10", "B I U", "\u2211AutoSum",
             "Accessibility: Good to go \u66f2\u5df4"]
    found = [OcrLine(t, 0.95, (20.0 + 100 * i, 60.0, 90.0 + 100 * i, 80.0))
             for i, t in enumerate(items)]
    lines, labels = tidy(found)
    assert lines == ["Accessibility: Good to go"]
    assert labels == ["Cut", "Share", "Copy", "AutoSum"]


def test_a_chinese_screenshot_keeps_its_script() -> None:
    """Glyphs are dropped only where the text is Latin script."""
    found = [OcrLine("\u6587\u4ef6\u7ba1\u7406", 0.98, (10.0, 10.0, 90.0, 30.0)),
             OcrLine("\u8fde\u63a5\u5931\u8d25\uff0c\u8bf7\u91cd\u8bd5\u3002\u9519\u8bef\u4ee3"
                     "\u7801 QX-4471 \u8bc1\u4e66\u8fc7\u671f", 0.98, (10.0, 50.0, 400.0, 70.0))]
    lines, labels = tidy(found)
    assert labels == ["\u6587\u4ef6\u7ba1\u7406"]
    assert len(lines) == 1 and "QX-4471" in lines[0] and "\u8bc1\u4e66" in lines[0]
