"""PyMuPDF, imported without starting its layout analyser.

PyMuPDF 2 imports ``pymupdf.layout`` when pymupdf-layout is installed (it is a dependency of
pymupdf itself), and that import loads an ONNX layout model at once: 0.5 CPU-s and 54 MB in
every process that opens a PDF, for ``Page.get_layout`` and layout-guided table finding, which
VistaRAG never calls (its tables come from ``ingest.tables``). Import pymupdf from here:

    from vistarag.agent.pdflib import pymupdf

The analyser is skipped only while pymupdf itself is imported: code that wants it can still
``import pymupdf.layout`` afterwards, which activates it as usual.
"""

from __future__ import annotations

import sys

if "pymupdf" not in sys.modules:
    sys.modules["pymupdf.layout"] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        import pymupdf
    finally:
        del sys.modules["pymupdf.layout"]

import pymupdf  # noqa: E402  (already imported: bound here for callers)

__all__ = ["pymupdf"]
