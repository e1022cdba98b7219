"""Query images: read fast (cached by content), tidied into lines and UI labels; the chat keeps
a question's image out of the knowledge base."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image, ImageDraw

from tests.fixtures_media import font
from vistarag.agent.ocr import OcrLine
from vistarag.agent.query_ocr import QueryOcr, tidy

LABELS = ["File", "Home", "Insert", "Design", "Layout", "Review", "View", "Help"]
MESSAGE = "Error code QX-4471: the proxy certificate expired yesterday"


def ui_screenshot(size: tuple[int, int] = (1920, 1080)) -> Image.Image:
    """A 1920x1080 desktop-app screenshot: a menu bar of labels, icons, and a dialog."""
    image = Image.new("RGB", size, "#f3f3f3")
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, size[0], 40], fill="#2b579a")
    x = 20
    for label in LABELS:
        draw.text((x, 60), label, fill="black", font=font(18))
        x += 110
    for i in range(6):  # toolbar icons: squares and crosses, no text
        draw.rectangle([1500 + 40 * i, 55, 1525 + 40 * i, 80], outline="black", width=2)
    draw.rectangle([560, 400, 1360, 640], fill="white", outline="#888888", width=2)
    draw.text((600, 440), "Connection failed", fill="black", font=font(28))
    draw.text((600, 500), MESSAGE, fill="black", font=font(20))
    return image


def test_tidy_drops_icon_noise_and_groups_labels() -> None:
    """Icons read as glyphs go; short items become UI labels; long ones stay lines."""
    row = [("AutoSave", 0.98, 10), ("On", 0.95, 90), ("Document 10.docx - Last Modified: Just now",
                                                         0.93, 300),
           ("8", 0.7, 1500), ("\u53e3", 0.6, 1600), ("\u00d7", 0.8, 1700)]
    found = [OcrLine(t, s, (x, 5.0, x + 50.0, 25.0)) for t, s, x in row]
    found += [OcrLine(t, 0.99, (20.0 + 90 * i, 60.0, 80.0 + 90 * i, 80.0))
              for i, t in enumerate(["File", "Home", "Insert", "File"])]
    lines, labels = tidy(found)
    assert lines == ["Document 10.docx - Last Modified: Just now"]
    assert labels == ["AutoSave", "On", "File", "Home", "Insert"]
    text = " ".join([*lines, *labels])
    assert "\u53e3" not in text and "\u00d7" not in text and " 8" not in text


def test_a_1920x1080_screenshot_is_read_once_then_from_the_cache() -> None:
    """The reading finds the dialog's message as a line and the menu as labels; the second
    read of the same pixels (the search, after the chat's own step) is a cache hit."""
    reader = QueryOcr()
    reader.warm_up()
    shot = ui_screenshot()
    first = reader.read(shot)
    assert not first.cached
    assert any("QX-4471" in line for line in first.lines), first.text
    assert {"File", "Home", "Insert"} <= set(first.labels), first.labels
    started = time.perf_counter()
    again = reader.read(shot.copy())
    assert again.cached and again.text == first.text
    assert time.perf_counter() - started < 0.5
    print(f"query OCR of a 1920x1080 screenshot: {first.ms:.0f} ms cold, {again.ms:.0f} ms cached")


@pytest.fixture
def chat_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> object:
    pytest.importorskip("chainlit")
    monkeypatch.setenv("VISTARAG_HOME", str(tmp_path / "home"))
    from vistarag.ui import chainlit_app

    return chainlit_app


def element(path: Path, name: str) -> SimpleNamespace:
    return SimpleNamespace(path=str(path), name=name)


def test_an_image_sent_with_a_question_is_the_query_not_a_document(
    chat_app: object, tmp_path: Path
) -> None:
    """Attached under its own name with a question: the question's image. Without a question,
    or with "add attachments" on, it goes into the knowledge base; a pasted one never does."""
    shot = tmp_path / "excel.png"
    ui_screenshot((400, 300)).save(shot)
    pasted = tmp_path / "image.png"
    ui_screenshot((400, 300)).save(pasted)
    classify = chat_app.classify  # type: ignore[attr-defined]

    images, uploads, problems = classify([element(shot, "excel.png")], True, False)
    assert images == [str(shot)] and uploads == [] and problems == []
    images, uploads, _ = classify([element(shot, "excel.png")], False, False)
    assert images == [] and uploads == [(shot, "excel.png")]
    images, uploads, _ = classify([element(shot, "excel.png")], True, True)
    assert images == [] and uploads == [(shot, "excel.png")]
    images, uploads, _ = classify([element(pasted, "image.png")], False, True)
    assert images == [str(pasted)] and uploads == []


def test_chat_settings_become_the_turns_context() -> None:
    """The panel's values (or a resumed thread's) set the turn's kb, k and modalities; values
    out of range or unknown fall back instead of failing the turn."""
    pytest.importorskip("chainlit")
    from vistarag.ui.web.chat_prefs import ChatPrefs

    defaults = ChatPrefs(kb="default", top_k=5)
    prefs = ChatPrefs.from_values({"kb": "harbour", "top_k": 3.0, "modality": "images",
                                   "add_attachments": True}, defaults)
    ctx = prefs.context("alice")
    assert (ctx.kb, ctx.top_k, ctx.owner, ctx.modality) == ("harbour", 3, "alice",
                                                            ["image", "page"])
    assert prefs.add_attachments
    assert ChatPrefs.from_values(prefs.values(), defaults) == prefs  # round trip (metadata)
    odd = ChatPrefs.from_values({"kb": " ", "top_k": 999, "modality": "smell"}, defaults)
    assert (odd.kb, odd.top_k, odd.modality) == ("default", 20, "all")
    assert ChatPrefs.from_values(None, defaults) == defaults
