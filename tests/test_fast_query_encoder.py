"""The ONNX query encoder: exported by ingestion, the same vectors as sentence-transformers,
and a fresh search process that never imports torch or sentence-transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from vistarag.agent import onnx_text
from vistarag.agent.embeddings import load_text_embedder, resolve_text_model
from vistarag.agent.engine import Engine
from vistarag.agent.qdrant import close_all
from vistarag.agent.settings import Settings

SPEC = "packaged:all-MiniLM-L6-v2"
QUERIES = ["Amazon FY2017 days payable outstanding", "  padded  ", "word " * 400,
           "Umsatz 12,345 $ im Q3?"]


def test_export_gives_the_same_query_vectors(tmp_path: Path) -> None:
    model_dir = resolve_text_model(SPEC)
    st = load_text_embedder(SPEC)
    assert onnx_text.load(SPEC, model_dir, tmp_path) is None  # nothing exported yet
    path = onnx_text.export(st.model, model_dir, tmp_path)
    assert path is not None and path.exists()
    fast = onnx_text.load(SPEC, model_dir, tmp_path)
    assert fast is not None and fast.dim == st.dim
    cosines = (fast.encode_query(QUERIES) * st.encode_query(QUERIES)).sum(axis=1)
    assert np.all(cosines > 0.9999), cosines  # the long one is truncated the same way


def test_unsupported_or_damaged_models_stay_on_sentence_transformers(tmp_path: Path) -> None:
    model = tmp_path / "odd-model"
    model.mkdir()
    (model / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "sentence_transformers.models.Dense"},
    ]))
    assert onnx_text.pipeline_of(model) is None
    assert onnx_text.pipeline_of(tmp_path / "missing") is None
    st = load_text_embedder(SPEC)
    model_dir = resolve_text_model(SPEC)
    onnx_path = onnx_text.export(st.model, model_dir, tmp_path / "cache")
    assert onnx_path is not None
    onnx_path.write_bytes(b"not an onnx file")
    assert onnx_text.load(SPEC, model_dir, tmp_path / "cache") is None


def test_a_fresh_search_process_skips_torch(tmp_path: Path) -> None:
    home, cache = tmp_path / "home", tmp_path / "cache"
    doc = tmp_path / "notes.txt"
    doc.write_text("The forklift brake inspection is due every 90 days at the Rotterdam depot.")
    settings = Settings(_env_file=None, home=home, model_cache=cache, joint_model="none")
    engine = Engine(settings)
    assert engine.ingestor().ingest_paths([doc]).count("added") == 1
    assert list(cache.glob("*.onnx"))  # ingestion exported the query encoder
    close_all()
    probe = (
        "import sys\n"
        "from vistarag.ui.cli import main\n"
        "sys.argv = ['vistarag', 'search', 'forklift brakes', '--json']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    code = exit.code\n"
        "print('IMPORTED', 'torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    env = {**os.environ, "VISTARAG_HOME": str(home), "VISTARAG_MODEL_CACHE": str(cache),
           "VISTARAG_JOINT_MODEL": "none"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, timeout=120)
    assert "IMPORTED False False" in done.stdout, done.stdout + done.stderr
    hits = json.loads(done.stdout.split("IMPORTED")[0])
    assert "Rotterdam depot" in hits[0]["text"]


def test_the_query_encoder_loads_once_however_many_threads_ask(tmp_path: Path,
                                                               monkeypatch) -> None:
    """The CLI starts loading it in the background while the index opens; the UI's threads may
    ask at the same time. One load, one encoder, for all of them."""
    import threading

    from vistarag.agent.models import Models

    cache = tmp_path / "cache"
    onnx_text.export(load_text_embedder(SPEC).model, resolve_text_model(SPEC), cache)
    loads = []
    real_load = onnx_text.load

    def counted_load(*args, **kwargs):
        loads.append(threading.current_thread().name)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(onnx_text, "load", counted_load)
    models = Models(Settings(_env_file=None, home=tmp_path / "home", model_cache=cache))
    models.load_query_encoder_in_background()
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(models.query_text)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1
    assert len({id(encoder) for encoder in seen}) == 1
    assert isinstance(seen[0], onnx_text.OnnxTextEncoder)
