"""Bar charts read from OCR boxes: values paired with the category under them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from vistarag.agent.charts import chart_readings
from vistarag.agent.ingest.images import extract_image
from vistarag.agent.ocr import get_ocr, lines_to_text
from vistarag.evals.sample_corpus import make_chart


@dataclass
class B:
    text: str
    bbox: tuple[float, float, float, float]


def _chart(labels: list[str], values: list[str], title: str = "Units sold") -> list[B]:
    """Values drawn over bars of different heights, in OCR's top-to-bottom order."""
    boxes = [B(title, (20, 10, 300, 40))]
    heights = [200 - 30 * i for i in range(len(values))]
    for i, (value, h) in sorted(enumerate(zip(values, heights, strict=True)),
                                key=lambda item: 400 - item[1][1]):
        x = 80 + 150 * i
        boxes.append(B(value, (x, 400 - h - 30, x + 50, 400 - h - 5)))
    boxes += [B(label, (80 + 150 * i, 410, 130 + 150 * i, 435)) for i, label in enumerate(labels)]
    return boxes


def test_each_category_gets_the_value_over_its_bar() -> None:
    boxes = _chart(["North", "South", "East", "West"], ["1,240", "980", "$75", "12%"])
    assert chart_readings(boxes) == "Units sold: North = 1,240; South = 980; East = $75; West = 12%"
    years = _chart(["2021", "2022", "2023"], ["4.1", "5.3", "6.0"], title="Revenue ($bn)")
    assert chart_readings(years) == "Revenue ($bn): 2021 = 4.1; 2022 = 5.3; 2023 = 6.0"


def test_layouts_that_are_no_bar_chart_read_as_nothing() -> None:
    assert chart_readings(_chart(["North", "South"], ["1", "2"])) == ""  # two bars: too few
    table = [B("Region Units Share", (20, 10, 300, 40))]  # several values in each column
    for row, y in enumerate((50, 80, 110)):
        table += [B(str(10 * row + c), (80 + 150 * c, y, 130 + 150 * c, y + 20)) for c in range(3)]
    table += [B(name, (80 + 150 * c, 140, 130 + 150 * c, 160))
              for c, name in enumerate(["Alpha", "Beta", "Gamma"])]
    assert chart_readings(table) == ""
    prose = [B("Sign in failed", (10, 10, 200, 30)), B("Error AUTH-502", (10, 40, 200, 60)),
             B("OK", (10, 70, 40, 90)), B("Cancel", (60, 70, 120, 90)),
             B("Help", (140, 70, 190, 90))]
    assert chart_readings(prose) == ""  # a row of buttons with no value over each


def test_a_rendered_chart_is_read_through_real_ocr(tmp_path: Path) -> None:
    """RapidOCR on a drawn bar chart: the image's text and its OCR chunks carry the pairing,
    so an answer can quote Q4's value though OCR read 530 first and Q4 last."""
    path = make_chart(tmp_path / "revenue.png", "Revenue by quarter 2024 (kEUR)",
                      {"Q1": 410, "Q2": 455, "Q3": 472, "Q4": 530})
    text = lines_to_text(get_ocr().read(Image.open(path)))
    assert text.splitlines()[-1] == (
        "Revenue by quarter 2024 (kEUR): Q1 = 410; Q2 = 455; Q3 = 472; Q4 = 530")
    units = extract_image(path, get_ocr(), 50_000_000, 900).units
    assert any("Q4 = 530" in u.text for u in units if u.modality == "text")
