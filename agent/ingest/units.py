"""A retrievable unit extracted from a file, before it is embedded and stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from vistarag.agent.blobs import PageRender


@dataclass
class Unit:
    """One future point: a text chunk, an image, a page render or a keyframe.

    ``image`` is set for image-like units (they get a joint vector and a thumbnail blob);
    ``blob_of`` points at another unit's key whose image this unit should cite (OCR text chunks
    cite their screenshot, PDF text chunks cite their page render).
    """

    key: str
    modality: str
    text: str = ""
    image: Image.Image | None = None
    page: int | None = None
    bbox: list[float] | None = None
    t_start: float | None = None
    t_end: float | None = None
    blob_of: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    dense_text: str | None = None
    """What the dense text model reads, when it should not read all of ``text`` (a table row
    chunk without its figures); the lexical vector and the stored payload keep ``text``."""
    text_vector_from: tuple[str, ...] = ()
    """Keys of units in the same group whose text vectors, averaged, are this unit's text
    vector (a page render's from its chunks: the page's text is not embedded twice)."""
    render: PageRender | None = None
    """A PDF page image made when first asked for, in place of ``image`` (see ``blobs``)."""
    pool: dict[str, tuple[str, ...]] | None = None
    """Summary units (a video's clip point): per named space, the modalities of this
    document's earlier units whose vectors are averaged (normalised) into this unit's vector."""


@dataclass
class Extraction:
    """Everything extracted from one file."""

    units: list[Unit]
    kind: str
    pages: int = 0
    warnings: list[str] = field(default_factory=list)
