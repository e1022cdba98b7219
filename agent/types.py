"""Plain data shared by the index, the reranker, synthesis and the graph."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Modality = Literal["text", "image", "page", "keyframe", "transcript", "clip"]
MODALITIES: tuple[str, ...] = ("text", "image", "page", "keyframe", "transcript", "clip")
IMAGE_MODALITIES: frozenset[str] = frozenset({"image", "page", "keyframe", "clip"})
TIMED_MODALITIES: frozenset[str] = frozenset({"keyframe", "transcript", "clip"})


def clock(seconds: float) -> str:
    """``83.4`` -> ``01:23``; past an hour ``1:02:03`` (whole seconds, rounded down)."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``, ``0 entries`` (with ``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def time_range(t_start: float, t_end: float | None = None) -> str:
    """``01:23-01:41`` (or just ``01:23`` without an end)."""
    return clock(t_start) + (f"-{clock(t_end)}" if t_end is not None else "")


def locator(
    source: str,
    page: int | None = None,
    bbox: list[float] | None = None,
    t_start: float | None = None,
    t_end: float | None = None,
) -> str:
    """Human-readable location: ``file.pdf p.3 [x0,y0,x1,y1]`` or ``talk.mp4 @ 01:23-01:41``."""
    parts = [source.replace("\\", "/").rsplit("/", 1)[-1]]
    if page is not None:
        parts.append(f"p.{page}")
    if t_start is not None:
        parts.append(f"@ {time_range(t_start, t_end)}")
    if bbox:
        parts.append("[" + ",".join(f"{v:.0f}" for v in bbox) + "]")
    return " ".join(parts)


class Hit(BaseModel):
    """One retrieved point with everything needed to cite it."""

    id: str
    score: float
    modality: str
    doc_id: str
    source: str
    page: int | None = None
    bbox: list[float] | None = None
    t_start: float | None = None
    t_end: float | None = None
    text: str = ""
    blob: str | None = None
    content_hash: str | None = None
    owner: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_image(self) -> bool:
        return self.modality in IMAGE_MODALITIES

    def content(self) -> str:
        """The hit's text plus any OCR text or caption kept in ``extra`` and not already in it.

        What rerankers score and synthesizers quote; an image hit with no text of its own is
        represented by its OCR text or caption.
        """
        text = self.text or ""
        for key in ("ocr_text", "ocr", "caption"):
            value = self.extra.get(key)
            if isinstance(value, str) and value.strip() and value.strip() not in text:
                text = f"{text}\n{value.strip()}" if text else value.strip()
        return text

    def to_public(self) -> dict[str, Any]:
        """The JSON shape printed by ``vistarag search --json``."""
        return {
            "id": self.id,
            "score": round(float(self.score), 6),
            "modality": self.modality,
            "doc_id": self.doc_id,
            "source": self.source,
            "page": self.page,
            "bbox": self.bbox,
            "t_start": self.t_start,
            "t_end": self.t_end,
            "text": self.text,
            "blob": self.blob,
            "doc": self.extra.get("doc"),
            "modalities": self.extra.get("modalities") or [self.modality],
        }

    def locator(self) -> str:
        return locator(self.source, self.page, self.bbox, self.t_start, self.t_end)


class Citation(BaseModel):
    """A numbered source as cited in an answer (``[n]``)."""

    n: int
    hit_id: str
    doc_id: str
    source: str
    modality: str
    page: int | None = None
    bbox: list[float] | None = None
    t_start: float | None = None
    t_end: float | None = None
    blob: str | None = None
    snippet: str = ""
    region: int | None = None
    """Which text region of an image file this cites (1 = the first its OCR read), else None."""
    boxes: list[list[float]] = Field(default_factory=list)
    """The boxes of every passage merged into this citation (one page's chunks), when several."""

    def locator(self) -> str:
        return locator(self.source, self.page, self.bbox, self.t_start, self.t_end)

    def name(self) -> str:
        """What the citation points to: ``report.pdf p. 4``, ``excel.png region 2``,
        ``talk.mp4 @ 01:23`` (the cited start), or the file name for a whole file or image."""
        where = locator(self.source)
        if self.t_start is not None:
            return f"{where} @ {clock(self.t_start)}"
        if self.page is not None:
            return f"{where} p. {self.page}"
        if self.region is not None:
            return f"{where} region {self.region}"
        return where

    def drawn_boxes(self) -> list[list[float]]:
        """The boxes a side view outlines: every merged passage's, else the citation's own."""
        return self.boxes or ([self.bbox] if self.bbox else [])

    @classmethod
    def from_hit(cls, n: int, hit: Hit, snippet_chars: int = 240) -> Citation:
        return cls(
            n=n,
            hit_id=hit.id,
            doc_id=hit.doc_id,
            source=hit.source,
            modality=hit.modality,
            page=hit.page,
            bbox=hit.bbox,
            t_start=hit.t_start,
            t_end=hit.t_end,
            blob=hit.blob,
            snippet=hit.text[:snippet_chars],
        )
