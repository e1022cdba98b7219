"""Files -> units -> vectors -> Qdrant points, with dedupe, replace-on-change and clean errors.

A changed file's new points are written before its old ones are removed, so a failure never
loses what was stored; bad files are reported one line each and the batch goes on.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from qdrant_client import models

from vistarag.agent.blobs import BlobStore, sha256_file
from vistarag.agent.docmeta import annotate
from vistarag.agent.errors import IngestError
from vistarag.agent.index import KnowledgeBase, PointRecord, field_filter, point_id
from vistarag.agent.ingest.discover import kind_of, select
from vistarag.agent.ingest.images import extract_image
from vistarag.agent.ingest.pdf import extract_pdf
from vistarag.agent.ingest.textfiles import extract_text_file
from vistarag.agent.ingest.units import Extraction, Unit
from vistarag.agent.models import Models
from vistarag.agent.settings import Settings
from vistarag.agent.sparse import LEXICAL_VECTOR, document_vector

Status = Literal["added", "replaced", "unchanged", "skipped", "error"]
CITATION_FIELDS = ("doc_id", "source", "modality", "page", "bbox", "t_start", "t_end", "blob")


def doc_id_for(source: str) -> str:
    """Stable document id derived from where the document comes from."""
    return "d" + hashlib.sha1(source.encode("utf-8")).hexdigest()[:15]


@dataclass
class FileResult:
    path: str
    status: Status
    doc_id: str | None = None
    points: int = 0
    pages: int = 0
    images: int = 0
    message: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass
class IngestReport:
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, *statuses: Status) -> int:
        return sum(1 for r in self.results if r.status in statuses)

    @property
    def points(self) -> int:
        return sum(r.points for r in self.results)

    @property
    def errors(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "error"]

    def summary(self) -> dict[str, float | int]:
        return {
            "files": len(self.results),
            "added": self.count("added"),
            "replaced": self.count("replaced"),
            "unchanged": self.count("unchanged"),
            "skipped": self.count("skipped"),
            "errors": self.count("error"),
            "points": self.points,
            "pages": sum(r.pages for r in self.results),
            "images": sum(r.images for r in self.results),
            "seconds": round(self.seconds, 2),
        }


class Ingestor:
    """Ingests files into one knowledge base."""

    def __init__(self, settings: Settings, models: Models, kb: KnowledgeBase, blobs: BlobStore):
        self.settings = settings
        self.models = models
        self.kb = kb
        self.blobs = blobs

    def ingest_paths(
        self,
        paths: Iterable[Path | str],
        on_file: Callable[[Path], None] | None = None,
        on_result: Callable[[FileResult], None] | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> IngestReport:
        """Ingest files and folders (recursively); never stops on a bad file.

        ``include`` / ``exclude`` globs and sidecars (``report.md`` beside ``report.pdf``) are
        applied by ``discover.select``; what it leaves out is reported as skipped.
        """
        started = time.perf_counter()
        report = IngestReport()
        selection = select([Path(p) for p in paths], include, exclude)
        for path, reason in selection.skipped:
            report.results.append(FileResult(str(path), "skipped", message=reason))
            if on_result:
                on_result(report.results[-1])
        for path in selection.files:
            if on_file:
                on_file(path)
            result = self.ingest_file(path)
            report.results.append(result)
            if on_result:
                on_result(result)
        report.seconds = time.perf_counter() - started
        return report

    def ingest_file(self, path: Path, source: str | None = None) -> FileResult:
        """Ingest one file; ``source`` overrides the recorded origin (e.g. an upload's name)."""
        path = Path(path)
        try:
            return self._ingest(path, source)
        except IngestError as exc:
            return FileResult(str(path), "error", message=exc.problem)
        except Exception as exc:  # an unexpected failure still must not stop the batch
            return FileResult(str(path), "error", message=f"{exc.__class__.__name__}: {exc}")

    def _ingest(self, path: Path, source: str | None) -> FileResult:
        kind = kind_of(path)
        if not path.exists():
            raise IngestError(str(path), "file not found")
        if kind is None:
            return FileResult(
                str(path), "skipped", message=f"unsupported file type {path.suffix!r}"
            )
        if kind == "video":
            return FileResult(str(path), "skipped", message="video ingestion is not supported yet")
        self._check_readable(path)
        source = source or str(path.resolve())
        doc_id = doc_id_for(source)
        content_hash = sha256_file(path)
        self.kb.ensure(self.models.record(), owner=self.settings.owner)
        stored = self.kb.doc_versions(doc_id)
        if stored == {content_hash}:
            return FileResult(str(path), "unchanged", doc_id=doc_id)
        extraction = self._extract(path, kind)
        annotate(extraction, path)  # document metadata (company, form, fiscal year) on each unit
        points = self._points(extraction, doc_id, source, content_hash)
        self.kb.upsert(points)
        old = stored - {content_hash}
        for old_hash in old:
            self._delete_version(doc_id, old_hash)
        return FileResult(
            str(path),
            "replaced" if old else "added",
            doc_id=doc_id,
            points=len(points),
            pages=extraction.pages,
            images=sum(1 for p in points if p.payload["modality"] == "image"),
            warnings=extraction.warnings,
        )

    def _check_readable(self, path: Path) -> None:
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                f.read(1)
        except OSError as exc:
            raise IngestError(str(path), f"cannot read the file ({exc.strerror or exc})") from exc
        if size == 0:
            raise IngestError(str(path), "file is empty (0 bytes)")
        if size > self.settings.max_file_bytes:
            raise IngestError(
                str(path),
                f"file is {size / 1e6:.1f} MB, over the limit of {self.settings.max_file_mb} MB "
                "(raise VISTARAG_MAX_FILE_MB)",
            )

    def _extract(self, path: Path, kind: str) -> Extraction:
        s = self.settings
        if kind == "image":
            return extract_image(path, self.models.ocr, s.max_image_pixels, s.chunk_chars)
        if kind == "pdf":
            return extract_pdf(
                path, self.models.ocr, s.max_pdf_pages, s.chunk_chars, s.page_render_dpi
            )
        return extract_text_file(path, s.chunk_chars)

    def _points(
        self, extraction: Extraction, doc_id: str, source: str, content_hash: str
    ) -> list[PointRecord]:
        units = extraction.units
        vectors: list[dict[str, Any]] = [{} for _ in units]
        text_idx = [i for i, u in enumerate(units) if u.text.strip()]
        if text_idx:
            text_vecs = self.models.text.encode_document([units[i].text for i in text_idx])
            for i, vec in zip(text_idx, text_vecs, strict=True):
                vectors[i]["text"] = vec.tolist()
        joint = self.models.joint
        image_idx = [i for i, u in enumerate(units) if u.image is not None]
        if joint is not None and image_idx:
            joint_vecs = joint.encode_document([_rgb(units[i]) for i in image_idx], batch_size=16)
            for i, vec in zip(image_idx, joint_vecs, strict=True):
                vectors[i]["joint"] = vec.tolist()
        for i in text_idx:
            sparse = document_vector(units[i].text)
            if sparse is not None:
                vectors[i][LEXICAL_VECTOR] = sparse
        # A unit with no vector (an uncaptioned figure in text-bridge mode) is not stored, and
        # neither is its image unless a stored unit cites it.
        kept = [(u, v) for u, v in zip(units, vectors, strict=True) if v]
        cited = {u.key for u, _ in kept} | {u.blob_of for u, _ in kept if u.blob_of}
        blob_refs = {
            u.key: self.blobs.put_image(u.image, max_side=self.settings.thumbnail_px)
            for u in units
            if u.image is not None and u.key in cited
        }
        points = []
        for unit, vecs in kept:
            blob = blob_refs.get(unit.key) or blob_refs.get(unit.blob_of or "")
            payload = {
                "doc_id": doc_id,
                "source": source,
                "modality": unit.modality,
                "page": unit.page,
                "bbox": unit.bbox,
                "t_start": unit.t_start,
                "t_end": unit.t_end,
                "text": unit.text,
                "blob": blob,
                "content_hash": content_hash,
                "owner": self.settings.owner,
                "kind": extraction.kind,
                "unit": unit.key,
                **unit.payload,
            }
            # The citation again under "metadata", where langchain-qdrant's QdrantVectorStore
            # looks for it, so the collection is usable as a LangChain VectorStore as it is.
            payload["metadata"] = {key: payload[key] for key in CITATION_FIELDS}
            points.append(PointRecord(point_id(doc_id, content_hash, unit.key), vecs, payload))
        return points

    def _delete_version(self, doc_id: str, content_hash: str) -> None:
        flt = field_filter(doc_id=doc_id, content_hash=content_hash)
        self._delete_where(flt)

    def _delete_where(self, flt: models.Filter) -> int:
        """Delete matching points, then the blobs no remaining point references."""
        refs = {p.payload.get("blob") for p in self.kb.scroll(flt, fields=["blob"])} - {None}
        count = self.kb.count(flt)
        self.kb.delete_points(flt)
        for ref in refs:
            if self.kb.count(field_filter(blob=ref)) == 0:
                self.blobs.delete(ref)
        return count

    def delete_document(self, doc_id: str) -> int:
        """Remove every point of a document and the blobs no other point uses."""
        if not self.kb.exists():
            return 0
        return self._delete_where(field_filter(doc_id=doc_id))


def _rgb(unit: Unit) -> Image.Image:
    image = unit.image
    assert image is not None
    return image if image.mode == "RGB" else image.convert("RGB")
