"""Every supported image format ingests; animated GIFs use their first frame."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures_media import text_image
from vistarag.agent.engine import Engine
from vistarag.agent.query import encode_query


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"])
def test_each_format_is_ingested_with_its_ocr_text(settings, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"label.{fmt.lower()}"
    text_image(["Batch LOT-5581"], size=(520, 90), font_size=40).save(path, format=fmt)
    result = Engine(settings).ingestor().ingest_file(path)
    assert result.status == "added", result.message
    assert result.images == 1
    hits = Engine(settings).find("LOT-5581", k=2)
    assert Path(hits[0].source).name == path.name


def test_animated_gif_uses_the_first_frame(settings, tmp_path: Path) -> None:
    frames = [text_image([word], size=(520, 90), font_size=40) for word in ("FIRST", "SECOND")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=200, loop=0)
    engine = Engine(settings)
    assert engine.ingestor().ingest_file(path).status == "added"
    texts = " ".join(p.payload["text"] for p in engine.kb().scroll(fields=["text"]))
    assert "FIRST" in texts and "SECOND" not in texts, texts


def test_composed_query_uses_the_image_and_the_instruction(joint_settings, tmp_path) -> None:
    engine = Engine(joint_settings)
    chart = text_image(["Revenue by quarter 2022"], size=(700, 120), font_size=40)
    query = encode_query(engine.models, "same chart but for 2023", [chart])
    assert "2022" in query.image_text[0]
    assert query.rerank_text.startswith("same chart but for 2023")
    # text space: the instruction, the image's OCR text, and both together
    assert len(query.vectors.text) == 3
    # joint space: the instruction and the image
    assert len(query.vectors.joint) == 2
    assert all(v.shape == (16,) for v in query.vectors.joint)
    assert query.vectors.lexical and len(query.vectors.lexical[0].indices) >= 4
