"""The cited region of a PDF page or an image file, drawn.

- ``/vistarag/page/<doc_id>/<page>.png?box=x0,y0,x1,y1``: the page rendered to the side panel's
  width with the hit's box (PDF points, as stored on the point) outlined and lightly filled.
- ``/vistarag/region/<doc_id>.png?box=...``: an image file (a screenshot) with the cited OCR
  region outlined the same way (boxes in the image's pixels, as OCR read them).

Several boxes (``box=...;...``) are drawn when one citation stands for several passages. Both
routes are owner-checked like the source route: only a document this user's points cite renders.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chainlit.auth import get_current_user
from fastapi import Depends, FastAPI, HTTPException, Response

from vistarag.agent.errors import VistaRAGError
from vistarag.agent.ingest.images import IMAGE_SUFFIXES
from vistarag.agent.types import Citation
from vistarag.ui.web.routes import Access

WIDTH = 1100
"""Rendered width in pixels: sharp in a side panel up to about 550 CSS pixels at 2x."""
BOX_RGB = (0.86, 0.15, 0.15)
NOT_FOUND = HTTPException(status_code=404, detail="Not found")
MAX_BOXES = 32
Box = tuple[float, float, float, float]


def region_url(c: Citation) -> str | None:
    """The drawn-region URL of a PDF citation with a page and a box, or of an image file's
    region; else None."""
    boxes = [b for b in c.drawn_boxes() if len(b) == 4]
    if not boxes or not c.doc_id:
        return None
    box = ";".join(",".join(f"{v:.1f}" for v in b) for b in boxes[:MAX_BOXES])
    suffix = Path(c.source).suffix.lower()
    if suffix == ".pdf" and c.page is not None:
        return f"/vistarag/page/{quote(c.doc_id)}/{int(c.page)}.png?box={box}"
    if suffix in IMAGE_SUFFIXES and c.region is not None:
        return f"/vistarag/region/{quote(c.doc_id)}.png?box={box}"
    return None


def parse_box(box: str) -> Box:
    """``"72,80,540,200"`` -> a tuple; ValueError when it is not four numbers."""
    values = tuple(float(v) for v in box.split(","))
    if len(values) != 4:
        raise ValueError(f"box needs four numbers, got {box!r}")
    return values  # type: ignore[return-value]


def parse_boxes(boxes: str) -> list[Box]:
    """``"72,80,540,200;72,220,540,260"`` -> the boxes (at most ``MAX_BOXES``); ValueError
    when there is none or one is not four numbers."""
    parts = [b for b in boxes.split(";") if b.strip()]
    if not parts or len(parts) > MAX_BOXES:
        raise ValueError(f"need 1 to {MAX_BOXES} boxes, got {boxes!r}")
    return [parse_box(b) for b in parts]


def render_region(path: Path, page: int, boxes: Box | list[Box], width: int = WIDTH) -> bytes:
    """PNG of ``page`` (1-based) of the PDF at ``path``, ``width`` pixels wide, ``boxes`` drawn."""
    from vistarag.agent.pdflib import pymupdf

    with pymupdf.open(path) as doc:
        if not 1 <= page <= doc.page_count:
            raise ValueError(f"{path.name} has {doc.page_count} pages, not {page}")
        pdf_page = doc[page - 1]
        shape = pdf_page.new_shape()
        for box in boxes if isinstance(boxes, list) else [boxes]:
            shape.draw_rect((pymupdf.Rect(box) & pdf_page.rect) + (-3, -3, 3, 3))
        shape.finish(color=BOX_RGB, fill=BOX_RGB, fill_opacity=0.12, width=2.5)
        shape.commit()
        zoom = width / pdf_page.rect.width
        pix = pdf_page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
        return pix.tobytes("png")


def render_image_region(path: Path, boxes: list[Box], max_pixels: int,
                        width: int = WIDTH) -> bytes:
    """PNG of the image at ``path`` (at most ``width`` pixels wide) with ``boxes`` (in the
    image's pixels, as OCR read them at ingest) outlined and lightly filled."""
    import io

    from PIL import Image, ImageDraw

    from vistarag.agent.imaging import flatten, open_image

    image = flatten(open_image(path, max_pixels)).convert("RGB")
    scale = min(1.0, width / image.width)
    if scale < 1.0:
        image = image.resize((width, max(1, round(image.height * scale))), Image.LANCZOS)
    red = tuple(round(255 * v) for v in BOX_RGB)
    tint = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(tint)
    line = max(2, round(3 * max(image.width, 600) / 1100))
    for box in boxes:
        x0, y0, x1, y1 = (v * scale for v in box)
        outer = [x0 - line - 1, y0 - line - 1, x1 + line + 1, y1 + line + 1]
        draw.rectangle(outer, fill=(*red, 31), outline=(*red, 255), width=line)
    out = io.BytesIO()
    Image.alpha_composite(image.convert("RGBA"), tint).convert("RGB").save(out, "PNG")
    return out.getvalue()


def install_page_route(app: FastAPI, access: Access) -> None:
    """Add the drawn-region route ahead of every other route (Chainlit's catch-all, and the
    ``/vistarag/...`` 404 for unknown paths)."""

    async def region(doc_id: str, page: int, box: str = "",
                     user: Any = Depends(get_current_user)) -> Any:
        owner = access.owner_of(user)
        if not owner:
            raise NOT_FOUND
        path = await asyncio.to_thread(access.source_of, doc_id, owner)
        if path is None or path.suffix.lower() != ".pdf":
            raise NOT_FOUND
        try:
            png = await asyncio.to_thread(render_region, path, page, parse_boxes(box))
        except ValueError:
            raise NOT_FOUND from None
        return _png(png)

    async def image_region(doc_id: str, box: str = "",
                           user: Any = Depends(get_current_user)) -> Any:
        owner = access.owner_of(user)
        if not owner:
            raise NOT_FOUND
        path = await asyncio.to_thread(access.source_of, doc_id, owner)
        if path is None or path.suffix.lower() not in IMAGE_SUFFIXES:
            raise NOT_FOUND
        try:
            png = await asyncio.to_thread(render_image_region, path, parse_boxes(box),
                                          access.engine.settings.max_image_pixels)
        except (ValueError, OSError, VistaRAGError):  # a bad box; an image that no longer
            raise NOT_FOUND from None  # decodes
        return _png(png)

    app.add_api_route("/vistarag/page/{doc_id}/{page}.png", region, methods=["GET"])
    app.add_api_route("/vistarag/region/{doc_id}.png", image_region, methods=["GET"])
    routes = app.router.routes
    ours = [r for r in routes
            if str(getattr(r, "path", "")).startswith(("/vistarag/page/", "/vistarag/region/"))]
    routes[:] = ours + [r for r in routes if r not in ours]


def _png(png: bytes) -> Response:
    return Response(png, media_type="image/png",
                    headers={"Cache-Control": "private, max-age=3600"})
