"""Move a data dir built with qdrant-client's local mode to Qdrant Edge, once and losslessly.

Local mode kept ``<qdrant>/meta.json`` (collections, aliases) and ``<qdrant>/collection/NAME``.
The migration copies every collection (points with all their vectors and payloads, metadata)
and every alias into ``<qdrant>/edge.migrating``, checks the point counts, and renames that
folder to ``<qdrant>/edge`` in one step. Until that rename nothing reads the new folder, so an
interrupted migration changes nothing: the next start builds it again from the old store,
which is never modified (delete it by hand once satisfied; the message says where).
"""

from __future__ import annotations

import shutil
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vistarag.agent.errors import StoreBusyError, VistaRAGError
from vistarag.agent.index.backend import CollectionSpec
from vistarag.agent.index.edge import EdgeBackend, write_json
from vistarag.agent.index.records import PointRecord
from vistarag.agent.locks import path_lock

MARKER = "migrated-from-local-mode.json"
BATCH = 256
Progress = Callable[[str, int, int], None]  # (collection, points copied, points in it)


def needs_migration(qdrant_dir: Path) -> bool:
    """A local-mode store is there and no Edge index has been made from it (or beside it)."""
    edge = qdrant_dir / "edge" / "collections"
    has_edge = edge.is_dir() and any(edge.iterdir())
    return (qdrant_dir / "meta.json").is_file() and not has_edge


def _say(message: str) -> None:
    print(f"vistarag: {message}", file=sys.stderr, flush=True)


def migrate_if_needed(qdrant_dir: Path, progress: Progress | None = None) -> dict | None:
    """Migrate when ``needs_migration``; returns the summary, or None when nothing was to do.

    Two processes starting at once take turns on a lock; the second finds the work done.
    """
    if not needs_migration(qdrant_dir):
        return None
    with path_lock(qdrant_dir / "migrate.lock"):
        if not needs_migration(qdrant_dir):
            return None
        _say(f"moving the index in {qdrant_dir} from qdrant-client local mode to Qdrant Edge "
             "(once; the old store stays as it is until you delete it)")
        summary = migrate(qdrant_dir, progress)
        _say(f"moved {summary['points']} points in {len(summary['collections'])} collections "
             f"and {len(summary['aliases'])} aliases in {summary['seconds']:.1f} s to "
             f"{qdrant_dir / 'edge'}. The old store ({qdrant_dir / 'collection'}, "
             f"{qdrant_dir / 'meta.json'}) is no longer read: delete it when satisfied.")
        return summary


def _open_local(qdrant_dir: Path) -> Any:
    from qdrant_client import QdrantClient  # only here: it takes about a second to import

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return QdrantClient(path=str(qdrant_dir))
    except RuntimeError as exc:
        if "already accessed" not in str(exc):
            raise
        raise StoreBusyError(
            f"the old index in {qdrant_dir} is open in another process (an older VistaRAG): "
            "stop it, then run the command again to move the index to Qdrant Edge"
        ) from exc


def migrate(qdrant_dir: Path, progress: Progress | None = None) -> dict:
    """Copy the local-mode store into a new Edge index beside it, then switch (see module)."""
    started = time.perf_counter()
    staging = qdrant_dir / "edge.migrating"
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted migration
    client = _open_local(qdrant_dir)
    target = EdgeBackend(staging, hold_lock=False)
    counts: dict[str, int] = {}
    try:
        for item in client.get_collections().collections:
            counts[item.name] = _copy_collection(client, target, item.name, progress)
        aliases = {a.alias_name: a.collection_name for a in client.get_aliases().aliases}
        for alias, collection in aliases.items():
            target.set_alias(alias, collection)
        for name, expected in counts.items():
            if target.count(name) != expected:
                raise VistaRAGError(
                    f"{qdrant_dir}: migrating collection {name!r} copied {target.count(name)} "
                    f"of {expected} points; the old store is untouched and still used. "
                    "Run `vistarag kb migrate` again, or report the problem"
                )
        summary = {
            "collections": counts, "aliases": aliases, "points": sum(counts.values()),
            "seconds": time.perf_counter() - started, "from": str(qdrant_dir),
        }
        write_json(staging / MARKER, summary)
    finally:
        target.close()
        client.close()
    final = qdrant_dir / "edge"
    if final.exists():  # an empty index opened before: nothing in it to keep
        shutil.rmtree(final)
    staging.rename(final)  # the switch
    return summary


def _copy_collection(
    client: Any, target: EdgeBackend, name: str, progress: Progress | None
) -> int:
    info = client.get_collection(name)
    params = info.config.params
    dense = {n: int(v.size) for n, v in (params.vectors or {}).items()} if isinstance(
        params.vectors, dict) else {}
    sparse = tuple(params.sparse_vectors or {})
    target.create_collection(name, CollectionSpec(dense, sparse, dict(info.config.metadata or {})))
    total = client.count(name, exact=True).count
    copied = 0
    offset = None
    while True:
        points, offset = client.scroll(
            name, limit=BATCH, offset=offset, with_payload=True, with_vectors=True)
        if points:
            target.upsert(name, [
                PointRecord(str(p.id), dict(p.vector or {}), dict(p.payload or {}))
                for p in points
            ])
            copied += len(points)
            if progress:
                progress(name, copied, total)
        if offset is None:
            break
    target.flush()
    return copied
