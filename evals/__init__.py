"""VistaRAG evals."""
