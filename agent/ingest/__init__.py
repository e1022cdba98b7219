"""Ingestion of images, screenshots and PDFs into the knowledge base."""
