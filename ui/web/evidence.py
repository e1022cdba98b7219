"""A turn's citations and retrieved images as Chainlit elements.

Each citation becomes a side element named like the line that lists it under the answer, so
the line is a link: a PDF opens at the cited page (and its "cited region" chip shows that page
fitted to the panel with the hit's box drawn), a video plays from the cited moment (a
``#t=`` media fragment), an image shows the image. Retrieved images, page renders and keyframes
are shown inline under the answer. Every URL is an owner-checked ``/vistarag/...`` route.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePath
from urllib.parse import quote

import chainlit as cl

from vistarag.agent.types import Citation, Hit, time_range
from vistarag.ui.web.page_view import region_url

PDF_SUFFIXES = {".pdf"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".m4v", ".ogv", ".ogg"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
MAX_INLINE_IMAGES = 4


def file_name(source: str) -> str:
    return PurePath(source.replace("\\", "/")).name or source


def label(c: Citation) -> str:
    """``[2] report.pdf, p. 3`` / ``[1] demo.mp4 @ 00:12-00:31`` / ``[3] shot.png``."""
    where = file_name(c.source)
    if c.page is not None:
        where += f", p. {c.page}"
    if c.t_start is not None:
        where += f" @ {time_range(c.t_start, c.t_end)}"
    return f"[{c.n}] {where}"


def source_url(c: Citation) -> str:
    return f"/vistarag/source/{quote(c.doc_id)}/{quote(file_name(c.source))}"


def blob_url(ref: str) -> str:
    return f"/vistarag/blob/{quote(ref)}"


def citation_element(c: Citation) -> cl.Element:
    """The side element a citation's link opens."""
    name = label(c)
    suffix = PurePath(c.source).suffix.lower()
    if suffix in PDF_SUFFIXES:
        return cl.Pdf(name=name, url=source_url(c), page=c.page or 1, display="side")
    if suffix in VIDEO_SUFFIXES:
        start = f"#t={int(c.t_start)}" if c.t_start else ""
        return cl.Video(name=name, url=source_url(c) + start, display="side")
    if c.blob and (suffix in IMAGE_SUFFIXES or c.modality in ("image", "page", "keyframe")):
        return cl.Image(name=name, url=blob_url(c.blob), display="side", size="large")
    return cl.Text(name=name, content=c.snippet or "(no text)", display="side")


def visible(citations: Iterable[Citation], sources: Iterable[Hit], owner: str) -> list[Citation]:
    """Citations whose point belongs to ``owner`` (or whose owner is unknown)."""
    owners = {h.id: h.owner for h in sources}
    return [c for c in citations if owners.get(c.hit_id) in (None, owner)]


def region_name(c: Citation) -> str:
    """``cited region 2 (p. 3)``: the chip that opens the page with the hit's box drawn."""
    return f"cited region {c.n} (p. {c.page})"


def region_element(c: Citation) -> cl.Image | None:
    """A PDF citation's page, fitted to the side panel, its cited region outlined."""
    url = region_url(c) if PurePath(c.source).suffix.lower() in PDF_SUFFIXES else None
    return cl.Image(name=region_name(c), url=url, display="side", size="large") if url else None


def sources_markdown(citations: list[Citation]) -> str:
    if not citations:
        return ""
    lines = [f"- {label(c)}" + (f" · {region_name(c)}" if region_element(c) else "")
             for c in citations]
    return "\n\n**Sources**\n" + "\n".join(lines)


def inline_images(citations: list[Citation]) -> list[cl.Image]:
    """The cited images, page renders and keyframes, once each, shown under the answer."""
    seen: set[str] = set()
    images: list[cl.Image] = []
    for c in citations:
        if not c.blob or c.blob in seen:
            continue
        seen.add(c.blob)
        images.append(
            cl.Image(name=f"evidence {c.n}", url=blob_url(c.blob), display="inline", size="medium")
        )
        if len(images) == MAX_INLINE_IMAGES:
            break
    return images


def elements_for(citations: list[Citation]) -> list[cl.Element]:
    regions = [e for e in (region_element(c) for c in citations) if e is not None]
    return [*(citation_element(c) for c in citations), *regions, *inline_images(citations)]
