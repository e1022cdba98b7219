"""Files -> units -> vectors -> Qdrant points, with dedupe, replace-on-change and clean errors.

Extractors come from one registry (``registry.py``) and yield groups of units as they read a
file; groups are embedded and upserted in batches, so memory stays bounded whatever the file's
length (a 2,000-page PDF, a two-hour video). A changed file's new points are written before its
old ones are removed, and a version counts as stored only once its last batch is marked
complete, so a failure (or a crash) never loses what was stored and never passes for done; bad
files are reported one line each and the batch goes on.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from PIL import Image

from vistarag.agent import docmeta
from vistarag.agent.blobs import BlobStore, sha256_file
from vistarag.agent.docid import doc_id_for, legacy_doc_id, secret_key
from vistarag.agent.errors import IngestError
from vistarag.agent.index import KnowledgeBase, PointRecord, blobs_in_use, field_filter, point_id
from vistarag.agent.index import filters as models
from vistarag.agent.ingest.discover import Selection, kind_of, select
from vistarag.agent.ingest.parallel import default_workers, map_ordered, read_ahead
from vistarag.agent.ingest.registry import ExtractContext, ProgressCallback, get_extractor
from vistarag.agent.ingest.units import Unit
from vistarag.agent.memory import release_freed_memory
from vistarag.agent.models import Models
from vistarag.agent.settings import Settings
from vistarag.agent.sparse import LEXICAL_VECTOR, document_vector
from vistarag.agent.types import plural

Status = Literal["added", "replaced", "unchanged", "skipped", "error"]
CITATION_FIELDS = ("doc_id", "source", "modality", "page", "bbox", "t_start", "t_end", "blob")
COMPLETE = "complete"  # payload flag on a version's last point: every batch before it landed
TEXT_BATCH = 8  # texts per forward pass: sorted by length, small batches barely pad (1.6x -> 1.1x)
IMAGES_PER_BATCH = 8  # page renders and crops held at once (a 200 dpi page is 11 MB as RGB)
FIRST_BATCH_UNITS = 16  # a document's first batch (about two pages), see ``_BatchWriter.add``
MAX_HELD_POINTS = 512  # points held back for the document's metadata, at most
FileProgress = Callable[[Path, str, float, "float | None"], None]


__all__ = ["FilePlan", "FileResult", "IngestReport", "Ingestor", "PointSink", "doc_id_for",
           "write_version"]


class PointSink(Protocol):
    """Where a version's points go: the knowledge base, or a collector (``ray_ingest``)."""

    def upsert(self, points: Sequence[PointRecord]) -> None: ...

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None: ...


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
    kind: str | None = None
    by_modality: dict[str, int] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)  # extractor counts (duration_s, ...)

    @property
    def keyframes(self) -> int:
        return self.by_modality.get("keyframe", 0)

    @property
    def transcript_segments(self) -> int:
        """Timed text segments read (spoken or subtitle), before merging into chunks."""
        return int(self.stats.get("transcript_segments", 0))


@dataclass
class FilePlan:
    """One file's version still to be written: its ids and what the index holds of it."""

    path: str
    source: str
    kind: str
    file_hash: str
    content_hash: str
    doc_id: str
    stored: set[str] = field(default_factory=set)
    legacy_stored: set[str] = field(default_factory=set)
    missing_blobs: bool = False  # stored and complete, but its images left the blob store


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
            "videos": sum(1 for r in self.results if r.kind == "video" and r.points),
            "keyframes": sum(r.keyframes for r in self.results),
            "transcript_segments": sum(r.transcript_segments for r in self.results),
            "seconds": round(self.seconds, 2),
        }


class Ingestor:
    """Ingests files into one knowledge base."""

    def __init__(self, settings: Settings, models: Models, kb: KnowledgeBase, blobs: BlobStore):
        self.settings = settings
        self.models = models
        self.kb = kb
        self.blobs = blobs

    def doc_id(self, source: str) -> str:
        """The id this owner's document from ``source`` gets: keyed by the data dir's secret."""
        return doc_id_for(source, secret_key(self.settings.home), self.settings.owner)

    def doc_ids(self, source: str) -> list[str]:
        """Ids a document from ``source`` may be stored under: keyed, then the unkeyed one of
        knowledge bases built before keyed ids."""
        return [self.doc_id(source), legacy_doc_id(source)]

    def prepare_models(self, workers: int | None = None) -> None:
        """Load the models an ingest uses and get the text model ready for bulk work with
        ``workers`` (default: the cores; ``OnnxTextEncoder.prepare_bulk``), before the first
        file: what ``vistarag ingest`` does while it says it is loading models. Optional: a
        first bulk encode prepares the text model itself, with the lanes waiting."""
        encoder = self.models.text_encoder
        self.models.joint  # noqa: B018
        prepare_bulk = getattr(encoder, "prepare_bulk", None)
        if prepare_bulk is not None:
            prepare_bulk(self.settings.text_max_tokens, workers or default_workers())

    def ingest_paths(
        self,
        paths: Iterable[Path | str],
        on_file: Callable[[Path], None] | None = None,
        on_result: Callable[[FileResult], None] | None = None,
        on_progress: FileProgress | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> IngestReport:
        """Ingest files and folders (recursively); never stops on a bad file.

        ``on_progress(path, stage, done, total)`` reports progress inside a file (seconds of
        video decoded, pages read). ``include`` / ``exclude`` globs and sidecars
        (``report.md`` beside ``report.pdf``) are applied by ``discover.select``; what it
        leaves out is reported as skipped.
        """
        selection = select([Path(p) for p in paths], include, exclude)
        return self.ingest_selection(selection, on_file, on_result, on_progress)

    def ingest_selection(
        self,
        selection: Selection,
        on_file: Callable[[Path], None] | None = None,
        on_result: Callable[[FileResult], None] | None = None,
        on_progress: FileProgress | None = None,
        workers: int | None = None,
    ) -> IngestReport:
        """Ingest what ``discover.select`` chose; what it left out is reported as skipped.

        ``workers`` (default: the cores) is how much of the machine the ingest takes: that
        many files at once (threads; results still come in order), and that many texts in the
        text model at once. One worker leaves the other cores to, say, a chat being served."""
        workers = workers or default_workers()
        started = time.perf_counter()
        report = IngestReport()
        for path, reason in selection.skipped:
            report.results.append(FileResult(str(path), "skipped", message=reason))
            if on_result:
                on_result(report.results[-1])

        def one(path: Path) -> FileResult:
            if on_file:
                on_file(path)
            progress = functools.partial(on_progress, path) if on_progress else None
            return self.ingest_file(path, on_progress=progress, model_runs=workers)

        for result in map_ordered(one, list(selection.files), workers):
            report.results.append(result)
            if on_result:
                on_result(result)
        report.seconds = time.perf_counter() - started
        return report

    def ingest_file(
        self,
        path: Path,
        source: str | None = None,
        on_progress: ProgressCallback | None = None,
        model_runs: int | None = None,
    ) -> FileResult:
        """Ingest one file; ``source`` overrides the recorded origin (e.g. an upload's name);
        ``model_runs`` caps the texts in the text model at once (default: the cores)."""
        path = Path(path)
        try:
            return self._ingest(path, source, on_progress, model_runs)
        except IngestError as exc:
            return FileResult(str(path), "error", message=exc.problem, kind=kind_of(path))
        except Exception as exc:  # an unexpected failure still must not stop the batch
            return FileResult(
                str(path), "error", message=f"{exc.__class__.__name__}: {exc}", kind=kind_of(path)
            )
        finally:
            release_freed_memory()  # one file's peak is not carried into the next file's

    def _ingest(
        self, path: Path, source: str | None, on_progress: ProgressCallback | None = None,
        model_runs: int | None = None,
    ) -> FileResult:
        plan = self.plan(path, source)
        if isinstance(plan, FileResult):
            return plan
        try:
            written = write_version(
                plan, self.settings, self.models, self.blobs, self.kb, on_progress, model_runs
            )
        except BaseException:
            self.abandon(plan)
            raise
        return self.conclude(plan, written)

    def plan(self, path: Path, source: str | None = None) -> FilePlan | FileResult:
        """What ingesting ``path`` must write, or its FileResult when nothing is to be written
        (unsupported type, unchanged). Raises IngestError for a missing or unreadable file."""
        kind = kind_of(path)
        if not path.exists():
            raise IngestError(str(path), "file not found")
        if kind is None:
            return FileResult(
                str(path), "skipped", message=f"unsupported file type {path.suffix!r}"
            )
        spec = get_extractor(kind)
        self._check_readable(path)
        source = source or str(path.resolve())
        file_hash = content_hash = sha256_file(path)
        if spec.companions is not None and (extra := spec.companions(path)):
            parts = [file_hash, *(f"{p.name}:{sha256_file(p)}" for p in extra)]
            content_hash = hashlib.sha256("\n".join(parts).encode()).hexdigest()
        self.kb.ensure(self.models.record(), owner=self.settings.owner)
        doc_id, stored, legacy_stored = self._stored(source, content_hash)
        missing_blobs = False
        if stored == {content_hash} and self._complete(doc_id, content_hash):
            missing_blobs = not self._blobs_present(doc_id)
            if not missing_blobs:
                return FileResult(str(path), "unchanged", doc_id=doc_id, kind=kind)
        return FilePlan(str(path), source, kind, file_hash, content_hash, doc_id, stored,
                        legacy_stored, missing_blobs)

    def abandon(self, plan: FilePlan) -> None:
        """A write failed: what it stored of the new version goes; stored versions stay (a
        complete version whose images were being restored is such a stored version)."""
        if not plan.missing_blobs:
            self._delete_version(plan.doc_id, plan.content_hash)

    def conclude(self, plan: FilePlan, written: FileResult) -> FileResult:
        """After ``write_version``: older versions go, and the result says added or replaced.
        Raises IngestError when nothing retrievable was written."""
        doc_id, content_hash, source = plan.doc_id, plan.content_hash, plan.source
        if not written.points:
            self._delete_version(doc_id, content_hash)
            raise IngestError(plan.path, _nothing_found(written))
        old = plan.stored - {content_hash}
        for old_hash in old:
            self._delete_version(doc_id, old_hash)
        for old_hash in plan.legacy_stored:  # the same document under its unkeyed id: replaced
            self._delete_version(legacy_doc_id(source), old_hash, self.settings.owner)
        written.status = "replaced" if old or plan.legacy_stored or plan.missing_blobs else "added"
        if plan.missing_blobs:
            written.message = "its images were missing from the blob store; stored again"
        return written

    def _stored(self, source: str, content_hash: str) -> tuple[str, set[str], set[str]]:
        """(doc_id, its stored versions, versions under the unkeyed id to replace).

        A document stored by older versions under its unkeyed id (``legacy_doc_id``) keeps that
        id while its content is the same; changed, it moves to the keyed id.
        """
        doc_id = self.doc_id(source)
        stored = self.kb.doc_versions(doc_id)
        if stored:
            return doc_id, stored, set()
        legacy, owner = legacy_doc_id(source), self.settings.owner
        legacy_stored = self.kb.doc_versions(legacy, owner)
        if legacy_stored == {content_hash} and self._complete(legacy, content_hash, owner):
            return legacy, legacy_stored, set()
        return doc_id, stored, legacy_stored

    def _complete(self, doc_id: str, content_hash: str, owner: str | None = None) -> bool:
        """True when this version's last batch landed (it carries the ``complete`` flag)."""
        mine = {"owner": owner} if owner is not None else {}
        flt = field_filter(doc_id=doc_id, content_hash=content_hash, **mine, **{COMPLETE: True})
        return self.kb.count(flt) > 0

    def _blobs_present(self, doc_id: str) -> bool:
        """True when every blob the document's points reference is in the blob store."""
        refs = {p.payload.get("blob") for p in self.kb.scroll(field_filter(doc_id=doc_id),
                                                              fields=["blob"])} - {None}
        return all(self.blobs.has(ref) for ref in refs)

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

    def _delete_version(self, doc_id: str, content_hash: str, owner: str | None = None) -> None:
        mine = {"owner": owner} if owner is not None else {}
        flt = field_filter(doc_id=doc_id, content_hash=content_hash, **mine)
        self._delete_where(flt)

    def _delete_where(self, flt: models.Filter) -> int:
        """Delete matching points, then the blobs no point of any knowledge base references
        (the blob store is shared by all of them)."""
        refs = {p.payload.get("blob") for p in self.kb.scroll(flt, fields=["blob"])} - {None}
        count = self.kb.count(flt)
        self.kb.delete_points(flt)
        for ref in refs - blobs_in_use(self.kb.backend, refs):
            self.blobs.delete(ref)
        return count

    def delete_document(self, doc_id: str) -> int:
        """Remove every point of a document and the blobs no other point uses."""
        if not self.kb.exists():
            return 0
        return self._delete_where(field_filter(doc_id=doc_id))

    def delete_source(self, source: str) -> int:
        """Remove this owner's document ingested from ``source`` (a resolved path or an upload's
        name), under its keyed id or the unkeyed one of older knowledge bases."""
        if not self.kb.exists():
            return 0
        keyed, legacy = self.doc_ids(source)
        flt = field_filter(doc_id=legacy, owner=self.settings.owner)
        return self._delete_where(field_filter(doc_id=keyed)) + self._delete_where(flt)


def write_version(
    plan: FilePlan,
    settings: Settings,
    models: Models,
    blobs: BlobStore,
    sink: PointSink,
    on_progress: ProgressCallback | None = None,
    model_runs: int | None = None,
) -> FileResult:
    """Extract, embed and write one file's version into ``sink``, its last point flagged
    complete; the result's status ("added") is settled by ``Ingestor.conclude``.
    ``model_runs`` caps the texts in the text model at once (default: the cores)."""
    ctx = ExtractContext(settings, models, on_progress, file_sha256=plan.file_hash)
    writer = _BatchWriter(settings, models, blobs, sink, plan, model_runs)
    if on_progress is not None:
        writer.on_stored = lambda page: ctx.progress("stored", page, ctx.stats.get("pages"))
    started = time.perf_counter()
    spec = get_extractor(plan.kind)
    # the next groups are extracted while this one is embedded (bounded read-ahead)
    with contextlib.closing(read_ahead(spec.extract(Path(plan.path), ctx))) as groups, \
            contextlib.closing(writer):
        for group in groups:
            writer.add(group)
        writer.finish()
    writer.seconds["total_s"] = time.perf_counter() - started
    return FileResult(
        plan.path,
        "added",
        doc_id=plan.doc_id,
        points=writer.points,
        pages=int(ctx.stats.get("pages", 0)),
        images=writer.by_modality.get("image", 0),
        warnings=ctx.warnings,
        kind=plan.kind,
        by_modality=dict(writer.by_modality),
        stats={**ctx.stats, **{k: round(v, 3) for k, v in writer.seconds.items()}},
    )


def _nothing_found(written: FileResult) -> str:
    """Why a file gave no point: how many pages had nothing to read, and what the extractor
    warned of (a damaged PDF that was repaired), so the one error line says it all."""
    why = "nothing retrievable was found in it"
    if written.pages:
        why += f" ({plural(written.pages, 'page')}, no text in the text layer or by OCR)"
    return "; ".join([why, *written.warnings])


class _BatchWriter:
    """Embeds and upserts one document's unit groups in batches; keeps only small state.

    What it keeps across batches: blob references by unit key (so a later unit may cite an
    earlier unit's image), per-space running sums for pooled summary units, and counts.

    One batch is in flight: a batch's texts start embedding (on the encoder's threads) as soon
    as it is full, and the batch before it is written (lexical vectors, blobs, upsert) while
    they run, so the cores are not left idle between batches. Batches are written in order.
    """

    def __init__(
        self, settings: Settings, models: Models, blobs: BlobStore, sink: PointSink,
        plan: FilePlan, model_runs: int | None = None,
    ) -> None:
        self.settings = settings
        self.model_runs = model_runs
        self.models = models
        self.blobs = blobs
        self.sink = sink
        self.doc_id = plan.doc_id
        self.source = plan.source
        self.content_hash = plan.content_hash
        self.kind = plan.kind
        self.groups: list[list[Unit]] = []
        self.pending_units = 0
        self.pending_images = 0
        self.blob_refs: dict[str, str] = {}
        self.sums: dict[tuple[str, str], np.ndarray] = {}
        self.points = 0
        self.by_modality: Counter[str] = Counter()
        self.last_id: str | None = None
        self.first_id: str | None = None
        self.head_texts: dict[int, list[str]] = {}  # first pages' text, for document metadata
        self.pdf_meta: dict[str, Any] = {}
        self.doc: dict[str, Any] | None = None  # document metadata, known after the head pages
        self.held: list[PointRecord] = []  # points waiting for it
        self.seconds: Counter[str] = Counter()  # where the time went: embed, blobs, upsert
        self.in_flight: _Batch | None = None  # embedding; written at the next flush or finish
        self.on_stored: Callable[[int], None] | None = None  # the last page with points stored
        self.stored_page = 0
        self._embedder: ThreadPoolExecutor | None = None
        batch = max(1, settings.ingest_batch_units)
        self.max_units = batch
        self.max_images = max(2, min(IMAGES_PER_BATCH, batch // 4))

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - started

    def add(self, group: list[Unit]) -> None:
        self.groups.append(group)
        self.pending_units += len(group)
        self.pending_images += sum(1 for u in group if u.image is not None)
        # The first batch (none in flight yet) is small, so the text model starts while the
        # rest is being read.
        first = self.in_flight is None
        max_units = min(self.max_units, FIRST_BATCH_UNITS) if first else self.max_units
        if self.pending_units >= max_units or self.pending_images >= self.max_images:
            self.flush()

    def finish(self) -> None:
        """Write what is left (with the document's metadata: company, form, fiscal year, see
        ``docmeta``), then flag the last point: the version is complete."""
        self.flush()
        self._write(self._take_in_flight())
        self._describe()
        if self.last_id is None:
            return
        self.sink.set_payload([self.first_id], {"doc_head": True})
        self.sink.set_payload([self.last_id], {COMPLETE: True})
        docmeta.invalidate_catalog()

    def close(self) -> None:
        """Wait for the batch in flight, written or not (an extractor failed), and stop the
        embedding thread."""
        batch = self._take_in_flight()
        if batch is not None and batch.text_vectors is not None:
            with contextlib.suppress(Exception):
                batch.text_vectors.result()
        if self._embedder is not None:
            self._embedder.shutdown(wait=True)
            self._embedder = None

    def flush(self) -> None:
        """Start embedding the pending groups, and write the batch that was in flight."""
        if not self.groups:
            return
        groups, self.groups = self.groups, []
        self.pending_units = self.pending_images = 0
        started = self._start(groups)
        self._write(self._take_in_flight())
        self.in_flight = started

    def _take_in_flight(self) -> _Batch | None:
        batch, self.in_flight = self.in_flight, None
        return batch

    def _start(self, groups: list[list[Unit]]) -> _Batch:
        """The batch of ``groups``, its texts embedding on another thread (the encoder's
        threads release the GIL; this one only waits for them)."""
        units = [u for g in groups for u in g]
        by_key = {u.key: i for i, u in enumerate(units)}
        pooled: dict[int, list[int]] = {}  # unit -> the units whose text vectors make its own
        for i, unit in enumerate(units):
            sources = [by_key[k] for k in unit.text_vector_from
                       if k in by_key and units[by_key[k]].text.strip()]
            if sources:
                pooled[i] = sources
        text_idx = [i for i, u in enumerate(units) if u.text.strip() and i not in pooled]
        batch = _Batch(units, pooled, text_idx)
        if text_idx:
            if self._embedder is None:
                self._embedder = ThreadPoolExecutor(1, thread_name_prefix="ingest-embed")
            texts = [units[i].dense_text or units[i].text for i in text_idx]
            batch.text_vectors = self._embedder.submit(self._embed_texts, texts)
        return batch

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        with self.timed("embed_text_s"):
            return self.models.text_encoder.encode_document(
                texts, batch_size=TEXT_BATCH, max_tokens=self.settings.text_max_tokens,
                runs=self.model_runs,
            )

    def _write(self, batch: _Batch | None) -> None:
        """Vectors, blobs and points of ``batch``; upserted once the document is described."""
        if batch is None:
            return
        units = batch.units
        if self.doc is None:
            docmeta.head_texts(units, self.head_texts)
        if not self.pdf_meta and units and units[0].payload.get("pdf_title"):
            self.pdf_meta["title"] = units[0].payload["pdf_title"]
        self.held += self._points(batch)
        past_head = any((u.page or 0) > docmeta.BODY_PAGES for u in units)
        if self.doc is not None or past_head or len(self.held) >= MAX_HELD_POINTS:
            self._describe()

    def _describe(self) -> None:
        """Once the first pages are read: the document's metadata goes on every point, the held
        ones and all later ones, as they are upserted (one write per point, no second pass)."""
        if self.doc is None:
            name = Path(self.source).name
            self.doc = docmeta.describe_pages(name, self.head_texts, self.pdf_meta)
            self.head_texts = {}
        points, self.held = self.held, []
        if not points:
            return
        for point in points:
            point.payload["doc"] = self.doc
        with self.timed("upsert_s"):
            self.sink.upsert(points)
        if self.on_stored is not None:  # batches go in page order: all pages up to it stored
            page = max(int(p.payload.get("page") or 0) for p in points)
            if page > self.stored_page:
                self.stored_page = page
                self.on_stored(page)
        self.points += len(points)
        self.last_id = points[-1].id
        self.first_id = self.first_id or points[0].id
        self.by_modality.update(p.payload["modality"] for p in points)

    def _vectors(self, batch: _Batch) -> list[dict[str, Any]]:
        models_ = self.models
        units = batch.units
        vectors: list[dict[str, Any]] = [{} for _ in units]
        # Lexical vectors first: they are made on this thread while the texts embed.
        lexical = [document_vector(u.text) if u.text.strip() else None for u in units]
        if batch.text_vectors is not None:
            text_vecs = batch.text_vectors.result()
            for i, vec in zip(batch.text_idx, text_vecs, strict=True):
                vectors[i]["text"] = np.asarray(vec, dtype=np.float32)
        for i, sources in batch.pooled.items():
            total = np.sum([vectors[j]["text"] for j in sources], axis=0)
            vectors[i]["text"] = total / max(float(np.linalg.norm(total)), 1e-12)
        joint = models_.joint
        image_idx = [i for i, u in enumerate(units) if u.image is not None]
        if joint is not None and image_idx:
            with self.timed("embed_joint_s"):
                images = [_rgb(units[i]) for i in image_idx]
                joint_vecs = joint.encode_document(images, batch_size=16)
            for i, vec in zip(image_idx, joint_vecs, strict=True):
                vectors[i]["joint"] = np.asarray(vec, dtype=np.float32)
        for unit, vecs in zip(units, vectors, strict=True):
            if unit.pool:
                continue
            for space, vec in vecs.items():
                key = (space, unit.modality)
                self.sums[key] = self.sums.get(key, 0) + vec
        for unit, vecs in zip(units, vectors, strict=True):
            for space, modalities in (unit.pool or {}).items():
                parts = [self.sums[(space, m)] for m in modalities if (space, m) in self.sums]
                if parts:
                    total = np.sum(parts, axis=0)
                    norm = float(np.linalg.norm(total))
                    if norm > 0:
                        vecs[space] = total / norm
        out = []
        for vecs, sparse in zip(vectors, lexical, strict=True):
            dense = {space: vec.tolist() for space, vec in vecs.items()}
            if sparse is not None:
                dense[LEXICAL_VECTOR] = sparse
            out.append(dense)
        return out

    def _points(self, batch: _Batch) -> list[PointRecord]:
        units = batch.units
        vectors = self._vectors(batch)
        # A unit with no vector (an uncaptioned figure in text-bridge mode) is not stored, and
        # neither is its image unless a stored unit of its group cites it.
        kept = [(u, v) for u, v in zip(units, vectors, strict=True) if v]
        cited = {u.key for u, _ in kept} | {u.blob_of for u, _ in kept if u.blob_of}
        settings = self.settings
        for unit in units:
            if unit.key not in cited:
                continue
            if unit.image is not None:
                with self.timed("blobs_s"):
                    ref = self.blobs.put_image(unit.image, max_side=settings.thumbnail_px)
                self.blob_refs[unit.key] = ref
            elif unit.render is not None:
                self.blob_refs[unit.key] = self.blobs.put_render(unit.render)
        points = []
        for unit, vecs in kept:
            blob = self.blob_refs.get(unit.key) or self.blob_refs.get(unit.blob_of or "")
            payload = {
                "doc_id": self.doc_id,
                "source": self.source,
                "modality": unit.modality,
                "page": unit.page,
                "bbox": unit.bbox,
                "t_start": unit.t_start,
                "t_end": unit.t_end,
                "text": unit.text,
                "blob": blob,
                "content_hash": self.content_hash,
                "owner": settings.owner,
                "kind": self.kind,
                "unit": unit.key,
                **unit.payload,
            }
            # The citation again under "metadata", where langchain-qdrant's QdrantVectorStore
            # looks for it, so the collection is usable as a LangChain VectorStore as it is.
            payload["metadata"] = {key: payload[key] for key in CITATION_FIELDS}
            pid = point_id(self.doc_id, self.content_hash, unit.key)
            points.append(PointRecord(pid, vecs, payload))
        return points


@dataclass
class _Batch:
    """Units embedded and written together: which embed their text, which pool others'."""

    units: list[Unit]
    pooled: dict[int, list[int]]  # unit -> the units whose text vectors make its own
    text_idx: list[int]  # units whose own text is embedded
    text_vectors: Future[np.ndarray] | None = None


def _rgb(unit: Unit) -> Image.Image:
    image = unit.image
    assert image is not None
    return image if image.mode == "RGB" else image.convert("RGB")
