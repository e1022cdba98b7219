"""The payload fields every search or delete filters by, indexed by each backend at creation."""

from __future__ import annotations

KEYWORD_FIELDS = ("doc_id", "modality", "owner", "content_hash", "source", "blob")
TENANT_FIELD = "owner"  # every search filters by it: a tenant index groups its points on disk
INTEGER_FIELDS = ("page",)
ON_DISK_FIELDS = ("doc_id", "content_hash", "source", "blob", "page")
"""A value per document or per point: read in place (mmap) rather than loaded into hash maps
when a shard opens (Qdrant Edge at 500k points opened in 5.9 s with them in memory, 2.6 s
without); searches filter by owner and modality, which stay in memory."""
FLOAT_FIELDS = ("t_start",)
BOOL_FIELDS = ("doc_head", "complete")
