"""The payload fields every search or delete filters by, indexed by each backend at creation."""

from __future__ import annotations

KEYWORD_FIELDS = ("doc_id", "modality", "owner", "content_hash", "source", "blob")
TENANT_FIELD = "owner"  # every search filters by it: a tenant index groups its points on disk
INTEGER_FIELDS = ("page",)
FLOAT_FIELDS = ("t_start",)
BOOL_FIELDS = ("doc_head", "complete")
