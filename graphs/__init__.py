"""VistaRAG graphs."""
