"""VistaRAG tools."""
