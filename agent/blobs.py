"""Content-addressed blob store for images, thumbnails and keyframes.

A blob reference is ``"<sha256>.<ext>"`` (jpg, png; older stores also hold webp); files live
under ``<home>/blobs/<aa>/<ref>``.
State and checkpoints carry these references, never image bytes.

A PDF page whose text layer says it all is not rendered at ingest: ``put_render`` stores how
to render it (a small ``<ref>.render.json`` beside where the image will be) and the image is
made the first time anyone asks for the reference's path (a hit shown in the chat, an image
sent to the vision model). That saves a render and about 100 KB of disk per page; if the PDF
has since moved or changed, the reference stays without an image.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from vistarag.agent.settings import private_dir

log = logging.getLogger(__name__)
RENDER_SUFFIX = ".render.json"
JPEG_QUALITY = 88


@dataclass(frozen=True)
class PageRender:
    """A PDF page to render when its image is first asked for."""

    pdf: str  # resolved path of the file as ingested
    sha256: str  # its content then: a file changed since is not rendered
    page: int  # 0-based
    dpi: float
    max_side: int | None

    @property
    def ref(self) -> str:
        """Its blob reference: the same page of the same content (a copy of the file in
        another folder) is one blob, as a rendered image would be."""
        key = f"{self.sha256}|{self.page}|{self.dpi}|{self.max_side}"
        return f"{sha256_bytes(key.encode())}.jpg"

    def render(self) -> Image.Image | None:
        """The page image, or None when the file is gone or no longer the one ingested."""
        from vistarag.agent.pdflib import pymupdf

        try:
            if sha256_file(Path(self.pdf)) != self.sha256:
                return None
        except OSError:
            return None
        from vistarag.agent.imaging import render_page

        with pymupdf.open(self.pdf) as doc:
            return render_page(doc.load_page(self.page), self.dpi, max_side=self.max_side)


def _jpeg(image: Image.Image) -> bytes:
    """JPEG at quality 88 with full-resolution colour, so small coloured text stays legible."""
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buf.getvalue()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class BlobStore:
    """Stores bytes by content hash; idempotent and safe against partial writes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _file(self, ref: str) -> Path:
        if "/" in ref or "\\" in ref or ref.startswith("."):
            raise ValueError(f"not a blob reference: {ref!r}")
        return self.root / ref[:2] / ref

    def path(self, ref: str) -> Path:
        """Filesystem path of a blob reference (it may not exist); a page stored by
        ``put_render`` is rendered into it now if it was not yet."""
        target = self._file(ref)
        if not target.is_file():
            self._materialise(target)
        return target

    def exists(self, ref: str) -> bool:
        return self.path(ref).is_file()

    def has(self, ref: str) -> bool:
        """True when the blob is stored: its file, or for a PDF page still to be rendered its
        ``.render.json`` sidecar. Renders nothing (unlike ``path`` and ``exists``)."""
        target = self._file(ref)
        return target.is_file() or target.with_name(target.name + RENDER_SUFFIX).is_file()

    def put_render(self, render: PageRender) -> str:
        """A reference to a PDF page's image, rendered on first use (see the module doc)."""
        ref = render.ref
        target = self._file(ref)
        sidecar = target.with_name(target.name + RENDER_SUFFIX)
        if not target.is_file() and not sidecar.is_file():
            self._write(sidecar, json.dumps(asdict(render)).encode())
        return ref

    def _materialise(self, target: Path) -> None:
        sidecar = target.with_name(target.name + RENDER_SUFFIX)
        try:
            render = PageRender(**json.loads(sidecar.read_text()))
            image = render.render()
        except FileNotFoundError:
            return
        except Exception as exc:  # a damaged PDF or sidecar: the reference has no image
            log.warning("page image %s could not be rendered (%s)", target.name, exc)
            return
        if image is None:
            log.info("page image %s not rendered: %s moved or changed", target.name, render.pdf)
            return
        self._write(target, _jpeg(image))

    def _write(self, target: Path, data: bytes) -> None:
        if not target.parent.is_dir():
            private_dir(target.parent)  # 0700, like the data dir; mkstemp makes files 0600
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, data: bytes, ext: str) -> str:
        """Store ``data`` and return its reference."""
        ref = f"{sha256_bytes(data)}.{ext.lstrip('.').lower()}"
        target = self._file(ref)
        if not target.is_file():
            self._write(target, data)
        return ref

    def put_image(self, image: Image.Image, max_side: int | None = None) -> str:
        """Store an image: JPEG (``_jpeg``) unless it has transparency, which PNG keeps. A page
        render encodes in about 2 ms as JPEG against 28 ms as WebP, which cost a tenth of
        ingestion time."""
        img = image
        if max_side and max(img.size) > max_side:
            img = img.copy()
            img.thumbnail((max_side, max_side))
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            buf = io.BytesIO()
            img.convert("RGBA").save(buf, format="PNG", compress_level=1)
            return self.put_bytes(buf.getvalue(), "png")
        return self.put_bytes(_jpeg(img), "jpg")

    def open_image(self, ref: str) -> Image.Image:
        with Image.open(self.path(ref)) as im:
            im.load()
            return im

    def delete(self, ref: str) -> None:
        target = self._file(ref)
        target.unlink(missing_ok=True)
        target.with_name(target.name + RENDER_SUFFIX).unlink(missing_ok=True)

    def all_refs(self) -> set[str]:
        """Every stored reference, pages still to be rendered included."""
        if not self.root.exists():
            return set()
        return {p.name.removesuffix(RENDER_SUFFIX) for p in self.root.glob("*/*")
                if p.is_file() and not p.name.startswith(".")}
