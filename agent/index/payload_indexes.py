"""The payload fields every search or delete filters by, indexed by each backend at creation."""

from __future__ import annotations

KEYWORD_FIELDS = ("doc_id", "modality", "owner", "content_hash", "source", "blob")
TENANT_FIELD = "owner"  # every search filters by it: a tenant index groups its points on disk
INTEGER_FIELDS = ("page",)
ON_DISK_FIELDS = ("doc_id", "modality", "owner", "content_hash", "source", "blob", "page")
"""Read in place (mmap) rather than loaded into hash maps when a shard opens. Qdrant Edge at
500k points opened in 5.9 s with every index in memory, 2.6 s with the per-document ones on
disk; with owner and modality on disk too, a 541k-point shard opened in 0.46 s instead of
0.62-0.73 (page cache empty) with 81 MiB anonymous memory instead of 176, and its queries took
as long (warm p50/p95 6.8/12.4 ms against 7.7/13.2)."""
FLOAT_FIELDS = ("t_start",)
BOOL_FIELDS = ("doc_head", "complete")
