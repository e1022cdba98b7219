"""``text_max_tokens``: ingestion's text model reads at most that many tokens of each chunk
(real MiniLM, real Qdrant local mode); the loaded model keeps its own limit for everything else."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vistarag.agent.embeddings import load_text_embedder
from vistarag.agent.engine import Engine
from vistarag.agent.qdrant import close_all
from vistarag.agent.settings import Settings

SPEC = "packaged:all-MiniLM-L6-v2"
OPENING = ("The quarterly report covers revenue, costs, hiring and the outlook for the coming "
           "year in some detail, region by region and product by product. ")
TEXTS = [OPENING + "Freight volumes rose in the north.", OPENING + "Zebras graze in Kenya."]


def test_documents_are_read_up_to_the_cap_and_the_model_keeps_its_limit() -> None:
    embedder = load_text_embedder(SPEC)
    limit = embedder.model.max_seq_length
    capped = embedder.encode_document(TEXTS, max_tokens=16)
    assert np.allclose(capped[0], capped[1], atol=1e-6)  # both read the same 16 tokens
    assert embedder.model.max_seq_length == limit
    full = embedder.encode_document(TEXTS)
    assert float(full[0] @ full[1]) < 0.98  # the endings count without the cap
    assert np.allclose(embedder.encode_document(TEXTS, max_tokens=10_000), full, atol=1e-6)


def test_ingestion_honours_the_setting(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text(TEXTS[1])
    settings = Settings(home=tmp_path / "home", joint_model="none", text_max_tokens=16,
                        _env_file=None)
    engine = Engine(settings)
    try:
        assert engine.ingestor().ingest_paths([note]).count("added") == 1
        kb = engine.kb(None)
        points = list(kb.scroll(limit=10, with_vectors=True))
        (stored,) = [np.asarray(p.vector["text"]) for p in points]
        capped = engine.models.text_encoder.encode_document([OPENING], max_tokens=16)[0]
        assert np.allclose(stored, capped, atol=1e-5)  # what the configured backend gives
        on_torch = load_text_embedder(SPEC).encode_document([OPENING], max_tokens=16)[0]
        assert float(stored @ on_torch) > 0.99
    finally:
        close_all()
