"""A turn's citations and retrieved images as Chainlit elements.

Each citation is one chip named for what it points to (``report.pdf p. 4``, ``excel.png
region 2``, ``talk.mp4 @ 01:23``, ``notes.md``), listed under the answer as ``[n] name``. Chainlit
turns an element's name in the message into a link to it, so each citation's view is sent twice:
under the chip's name and under ``[n]``, which makes the answer's inline markers links too.

The view: a PDF citation with a box shows its page fitted to the panel with the cited region
drawn (a PDF without a box opens the PDF at the page; every cited PDF is also listed whole), an
image region shows the image with the region drawn, a video plays from the cited second (a
``#t=`` media fragment, autoplay), an image shows the image. Retrieved images, page renders and
keyframes are shown inline under the answer. Every URL is an owner-checked ``/vistarag/...``
route.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePath
from urllib.parse import quote

import chainlit as cl

from vistarag.agent.types import Citation, Hit
from vistarag.ui.web.page_view import region_url

PDF_SUFFIXES = {".pdf"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".m4v", ".ogv", ".ogg"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
MAX_INLINE_IMAGES = 4
AUTOPLAY = {"file": {"attributes": {"autoPlay": True}}}
"""react-player's config: the side view's video starts playing (the user's click allows sound)."""
_GROUP = re.compile(r"\[(\d+(?:\s*,\s*\d+)+)\]")


def file_name(source: str) -> str:
    return PurePath(source.replace("\\", "/")).name or source


def suffix(c: Citation) -> str:
    return PurePath(c.source.replace("\\", "/")).suffix.lower()


def chip_names(citations: Iterable[Citation]) -> dict[int, str]:
    """Each citation's chip name (``Citation.name``), made unique: a second ``report.pdf p. 4``
    from another folder reads ``report.pdf p. 4 (2)``."""
    names: dict[int, str] = {}
    seen: dict[str, int] = {}
    for c in citations:
        name = c.name()
        seen[name] = seen.get(name, 0) + 1
        names[c.n] = name if seen[name] == 1 else f"{name} ({seen[name]})"
    return names


def marker(c: Citation) -> str:
    """The inline marker naming this citation in the answer: ``[2]``."""
    return f"[{c.n}]"


def source_url(c: Citation) -> str:
    return f"/vistarag/source/{quote(c.doc_id)}/{quote(file_name(c.source))}"


def blob_url(ref: str) -> str:
    return f"/vistarag/blob/{quote(ref)}"


def citation_element(c: Citation, name: str | None = None) -> cl.Element:
    """The side element a citation's chip (or marker, by ``name``) opens."""
    name = name or c.name()
    drawn = region_url(c)
    if drawn:  # a PDF page or an image with the cited region outlined
        return cl.Image(name=name, url=drawn, display="side", size="large")
    if suffix(c) in PDF_SUFFIXES:
        return cl.Pdf(name=name, url=source_url(c), page=c.page or 1, display="side")
    if suffix(c) in VIDEO_SUFFIXES:
        start = f"#t={int(c.t_start)}" if c.t_start else ""
        return cl.Video(name=name, url=source_url(c) + start, display="side",
                        player_config=AUTOPLAY)
    if c.blob and (suffix(c) in IMAGE_SUFFIXES or c.modality in ("image", "page", "keyframe")):
        return cl.Image(name=name, url=blob_url(c.blob), display="side", size="large")
    return cl.Text(name=name, content=c.snippet or "(no text)", display="side")


def visible(citations: Iterable[Citation], sources: Iterable[Hit], owner: str) -> list[Citation]:
    """Citations whose point belongs to ``owner`` (or whose owner is unknown)."""
    owners = {h.id: h.owner for h in sources}
    return [c for c in citations if owners.get(c.hit_id) in (None, owner)]


def whole_pdfs(citations: list[Citation]) -> dict[str, Citation]:
    """``report.pdf (all pages)`` -> the first citation of each PDF whose chip shows a drawn
    region rather than the PDF itself, so the whole document is one click away too."""
    out: dict[str, Citation] = {}
    for c in citations:
        if suffix(c) in PDF_SUFFIXES and region_url(c):
            out.setdefault(f"{file_name(c.source)} (all pages)", c)
    return out


def sources_markdown(citations: list[Citation]) -> str:
    """``**Sources**`` then ``- [n] chip`` per citation (both links), and the whole PDFs."""
    if not citations:
        return ""
    names = chip_names(citations)
    lines = [f"- {marker(c)} {names[c.n]}" for c in citations]
    pdfs = whole_pdfs(citations)
    if pdfs:
        lines.append("\nWhole documents: " + " · ".join(pdfs))
    return "\n\n**Sources**\n" + "\n".join(lines)


def linkable_markers(text: str) -> str:
    """``[1, 3]`` -> ``[1][3]``: each number its own link (``[n]`` is an element's name)."""
    return _GROUP.sub(lambda m: "".join(f"[{n.strip()}]" for n in m.group(1).split(",")), text)


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


def elements_for(citations: list[Citation], markers: bool = True) -> list[cl.Element]:
    """Every citation's view under its chip name (and its ``[n]`` marker), the whole PDFs, and
    the inline evidence images. Chips of the same name (search results on one page) are sent
    once: the first one's view."""
    names = chip_names(citations)
    views: dict[str, cl.Element] = {}
    for c in citations:
        views.setdefault(names[c.n], citation_element(c, names[c.n]))
        if markers:
            views.setdefault(marker(c), citation_element(c, marker(c)))
    for name, c in whole_pdfs(citations).items():
        views[name] = cl.Pdf(name=name, url=source_url(c), page=c.page or 1, display="side")
    return [*views.values(), *inline_images(citations)]
