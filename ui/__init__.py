"""VistaRAG ui."""
