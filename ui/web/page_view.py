"""The cited region of a PDF page, drawn: ``/vistarag/page/<doc_id>/<page>.png?box=x0,y0,x1,y1``.

The page is rendered to the side panel's width with the hit's box (PDF points, as stored on the
point) outlined and lightly filled, so a citation shows where on the page its words are. The
route is owner-checked like the source route: only a document this user's points cite renders.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chainlit.auth import get_current_user
from fastapi import Depends, FastAPI, HTTPException, Response

from vistarag.agent.types import Citation
from vistarag.ui.web.routes import Access

WIDTH = 1100
"""Rendered width in pixels: sharp in a side panel up to about 550 CSS pixels at 2x."""
BOX_RGB = (0.86, 0.15, 0.15)
NOT_FOUND = HTTPException(status_code=404, detail="Not found")


def region_url(c: Citation) -> str | None:
    """The drawn-region URL of a PDF citation with a page and a box, else None."""
    if c.page is None or not c.bbox or len(c.bbox) != 4 or not c.doc_id:
        return None
    box = ",".join(f"{v:.1f}" for v in c.bbox)
    return f"/vistarag/page/{quote(c.doc_id)}/{int(c.page)}.png?box={box}"


def parse_box(box: str) -> tuple[float, float, float, float]:
    """``"72,80,540,200"`` -> a tuple; ValueError when it is not four numbers."""
    values = tuple(float(v) for v in box.split(","))
    if len(values) != 4:
        raise ValueError(f"box needs four numbers, got {box!r}")
    return values  # type: ignore[return-value]


def render_region(path: Path, page: int, box: tuple[float, float, float, float],
                  width: int = WIDTH) -> bytes:
    """PNG of ``page`` (1-based) of the PDF at ``path``, ``width`` pixels wide, ``box`` drawn."""
    import pymupdf

    with pymupdf.open(path) as doc:
        if not 1 <= page <= doc.page_count:
            raise ValueError(f"{path.name} has {doc.page_count} pages, not {page}")
        pdf_page = doc[page - 1]
        rect = pymupdf.Rect(box) & pdf_page.rect
        shape = pdf_page.new_shape()
        shape.draw_rect(rect + (-3, -3, 3, 3))
        shape.finish(color=BOX_RGB, fill=BOX_RGB, fill_opacity=0.12, width=2.5)
        shape.commit()
        zoom = width / pdf_page.rect.width
        pix = pdf_page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
        return pix.tobytes("png")


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
            png = await asyncio.to_thread(render_region, path, page, parse_box(box))
        except ValueError:
            raise NOT_FOUND from None
        return Response(png, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})

    app.add_api_route("/vistarag/page/{doc_id}/{page}.png", region, methods=["GET"])
    routes = app.router.routes
    ours = [r for r in routes if str(getattr(r, "path", "")).startswith("/vistarag/page/")]
    routes[:] = ours + [r for r in routes if r not in ours]
