"""Time reading a query screenshot: the ingestion OCR (what queries used before) against the
query reader (``agent/query_ocr``), on one image scaled to 1920x1080.

    python -m vistarag.evals.bench_query_ocr /path/to/screenshot.png
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PIL import Image


def timed(fn: object, *args: object) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)  # type: ignore[operator]
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(path: str) -> None:
    from vistarag.agent.imaging import flatten, ocr_image
    from vistarag.agent.ocr import get_ocr
    from vistarag.agent.query_ocr import QueryOcr

    image = flatten(Image.open(Path(path)).convert("RGB").resize((1920, 1080)))
    old, new = get_ocr(), QueryOcr()
    ocr_image(old, image)  # load both models and warm their arenas
    new.read(image.copy().rotate(180))
    lines, wall, cpu = timed(ocr_image, old, image)
    print(f"ingestion OCR: {wall:.2f} s wall, {cpu:.2f} s CPU, {len(lines)} lines")  # type: ignore[arg-type]
    read, wall, cpu = timed(new.read, image)
    print(f"query reader:  {wall:.2f} s wall, {cpu:.2f} s CPU, {read.summary()}")  # type: ignore[attr-defined]
    _, wall, _ = timed(new.read, image)
    print(f"query reader, cached: {wall * 1000:.0f} ms")


if __name__ == "__main__":
    main(sys.argv[1])
