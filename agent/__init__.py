"""VistaRAG core: settings, models, ingestion, the Qdrant index and the blob store."""

from vistarag.agent.errors import VistaRAGError
from vistarag.agent.settings import Settings, get_settings
from vistarag.agent.types import Citation, Hit

__all__ = ["Citation", "Hit", "Settings", "VistaRAGError", "get_settings"]
