"""Ingest on a Ray cluster: Ray Data actors extract and embed, the driver writes.

The driver plans each file with ``Ingestor.plan`` (ids, unchanged-skip), a pool of Ray Data
actors that load the models once runs ``write_version`` on each planned file into memory (its
points, its ``set_payload`` calls and its blobs), and the driver replays those into the
knowledge base and the blob store, then settles the file with ``Ingestor.conclude``
(replace-on-change). Both paths run the same code, so ids, payloads and statuses are the same as
a local ingest's. Writes happen on the driver because the embedded store opens in one process
only; with ``QDRANT_URL`` the driver writes to the server.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vistarag.agent import docmeta
from vistarag.agent.blobs import BlobStore
from vistarag.agent.errors import IngestError, VistaRAGError
from vistarag.agent.index import PointRecord
from vistarag.agent.ingest.discover import Selection, kind_of
from vistarag.agent.ingest.pipeline import (
    FilePlan,
    FileResult,
    Ingestor,
    IngestReport,
    write_version,
)
from vistarag.agent.models import Models
from vistarag.agent.settings import Settings

__all__ = ["RayOptions", "ingest_with_ray"]

INSTALL_HINT = "Ray is not installed: `pip install 'vistarag[ray]'` (or `uv sync --extra ray`)"


@dataclass(frozen=True)
class RayOptions:
    """Where and how the extract+embed stage runs."""

    address: str | None = None  # None: a local Ray instance; "auto", "ray://host:10001": a cluster
    actors: int | None = None  # model-holding actors; None: the cluster's CPUs / cpus_per_actor
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    files_per_batch: int = 1  # files one actor call takes


@dataclass
class _Outcome:
    """What an actor made of one planned file: sink calls and blobs to replay, or an error."""

    index: int
    result: FileResult | None = None
    ops: list[tuple[str, list[Any], dict[str, Any] | None]] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)  # "ab/ref" -> bytes
    error: str = ""


class _Collector:
    """A ``PointSink`` that records upserts and payload updates, in order."""

    def __init__(self, ops: list[tuple[str, list[Any], dict[str, Any] | None]]) -> None:
        self.ops = ops

    def upsert(self, points: Sequence[PointRecord]) -> None:
        self.ops.append(("upsert", list(points), None))

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        self.ops.append(("set_payload", list(ids), dict(payload)))


class _CollectingBlobs(BlobStore):
    """A blob store that keeps what it is given in memory, for the driver to store."""

    def __init__(self, written: dict[str, bytes]) -> None:
        super().__init__(Path("/nonexistent-vistarag-ray-blobs"))
        self.written = written

    def _write(self, target: Path, data: bytes) -> None:
        self.written[f"{target.parent.name}/{target.name}"] = data


class ExtractEmbed:
    """The Ray Data stage: loads the models once, then writes planned files into memory.
    ``model_runs``: texts in the text model at once, the CPUs the actor was given (without it
    each actor would run as many as the node has cores, beside the node's other actors)."""

    def __init__(self, settings: Settings, model_runs: int | None = None) -> None:
        self.settings = settings
        self.model_runs = model_runs
        self.models = Models(settings)
        self.models.text_encoder  # noqa: B018  (loaded here, once per actor)
        self.models.joint  # noqa: B018

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[bytes]]:
        out = []
        for item in batch["plan"]:
            index, plan = pickle.loads(item)
            out.append(pickle.dumps(self.one(index, plan)))
        return {"outcome": out}

    def one(self, index: int, plan: FilePlan) -> _Outcome:
        outcome = _Outcome(index)
        blobs = _CollectingBlobs(outcome.blobs)
        try:
            outcome.result = write_version(
                plan, self.settings, self.models, blobs, _Collector(outcome.ops),
                model_runs=self.model_runs,
            )
        except IngestError as exc:
            outcome.error = exc.problem
        except Exception as exc:  # one bad file must not stop the batch, as in a local ingest
            outcome.error = f"{exc.__class__.__name__}: {exc}"
        if outcome.error:
            outcome.ops, outcome.blobs = [], {}
        return outcome


def _store(ingestor: Ingestor, plan: FilePlan, outcome: _Outcome) -> FileResult:
    """Replay an actor's writes on the driver and settle the file as a local ingest does."""
    if outcome.error or outcome.result is None:
        return FileResult(plan.path, "error", message=outcome.error, kind=plan.kind)
    try:
        for rel, data in outcome.blobs.items():
            target = ingestor.blobs.root / rel
            if not target.is_file():
                ingestor.blobs._write(target, data)  # noqa: SLF001  (content-addressed name)
        started = time.perf_counter()
        for op, arg, payload in outcome.ops:
            if op == "upsert":
                ingestor.kb.upsert(arg)
            else:
                ingestor.kb.set_payload(arg, payload or {})
        docmeta.invalidate_catalog()
        outcome.result.stats["driver_write_s"] = round(time.perf_counter() - started, 3)
    except BaseException:
        ingestor.abandon(plan)
        raise
    return ingestor.conclude(plan, outcome.result)


def _init_ray(options: RayOptions) -> Any:
    try:
        import ray
    except ImportError as exc:
        raise VistaRAGError(INSTALL_HINT) from exc
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its progress lines, per dataset
    if not ray.is_initialized():
        try:
            ray.init(address=options.address, include_dashboard=False, log_to_driver=False)
        except ConnectionError as exc:
            raise VistaRAGError(
                f"cannot reach the Ray cluster at {options.address!r} ({exc}): start it "
                "(`ray start --head` on the head node) or pass its address, e.g. `--ray auto`"
            ) from exc
    return ray


def ingest_with_ray(
    ingestor: Ingestor,
    selection: Selection,
    options: RayOptions | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> IngestReport:
    """Ingest what ``discover.select`` chose with Ray Data actors doing extraction and
    embedding; results come in the selection's order, as from ``Ingestor.ingest_selection``."""
    options = options or RayOptions()
    ray = _init_ray(options)
    started = time.perf_counter()
    results: dict[int, FileResult] = {}
    skipped = [FileResult(str(p), "skipped", message=why) for p, why in selection.skipped]
    for result in skipped if on_result else []:
        on_result(result)
    plans: dict[int, FilePlan] = {}
    for i, path in enumerate(selection.files):
        try:
            planned = ingestor.plan(Path(path))
        except IngestError as exc:
            planned = FileResult(str(path), "error", message=exc.problem, kind=kind_of(path))
        if isinstance(planned, FileResult):
            results[i] = planned
            if on_result:
                on_result(planned)
        else:
            plans[i] = planned
    if plans:
        cpus = float(ray.cluster_resources().get("CPU", 1))
        actors = options.actors or max(1, int(cpus // max(options.cpus_per_actor, 0.01)))
        items = [{"plan": pickle.dumps((i, plan))} for i, plan in plans.items()]
        ds = ray.data.from_items(items).map_batches(
            ExtractEmbed,
            fn_constructor_args=(ingestor.settings, max(1, int(options.cpus_per_actor))),
            batch_size=max(1, options.files_per_batch),
            compute=ray.data.ActorPoolStrategy(size=min(actors, len(plans))),
            num_cpus=options.cpus_per_actor,
            num_gpus=options.gpus_per_actor or None,
        )
        for row in ds.iter_rows():  # streamed: each file is written as soon as it is embedded
            outcome: _Outcome = pickle.loads(row["outcome"])
            plan = plans[outcome.index]
            try:
                result = _store(ingestor, plan, outcome)
            except IngestError as exc:
                result = FileResult(plan.path, "error", message=exc.problem, kind=plan.kind)
            except Exception as exc:  # as ``Ingestor.ingest_file``: the batch goes on
                message = f"{exc.__class__.__name__}: {exc}"
                result = FileResult(plan.path, "error", message=message, kind=plan.kind)
            results[outcome.index] = result
            if on_result:
                on_result(result)
    report = IngestReport(results=skipped + [results[i] for i in sorted(results)])
    report.seconds = time.perf_counter() - started
    return report
