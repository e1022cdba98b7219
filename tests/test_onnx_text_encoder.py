"""The ONNX text encoder: exported once, the same vectors as sentence-transformers (fp32) or
close to them (int8), used for documents and queries alike, and a fresh search process that
never imports torch or sentence-transformers."""

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
    assert list(cache.glob("*-int8.onnx"))  # ingestion exported the text encoder
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


def test_the_text_encoder_loads_once_however_many_threads_ask(tmp_path: Path,
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
    models = Models(Settings(_env_file=None, home=tmp_path / "home", model_cache=cache,
                             text_backend="onnx"))
    models.load_text_encoder_in_background()
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(models.text_encoder)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1
    assert len({id(encoder) for encoder in seen}) == 1
    assert isinstance(seen[0], onnx_text.OnnxTextEncoder)


DOCUMENTS = [
    "Accounts payable increased to $34,616 million at December 31, 2017.",
    "Net cash provided by operating activities was $18.4 billion in 2017.",
    "The forklift brake inspection is due every 90 days at the Rotterdam depot.",
    "x",
    "Inventories consist of merchandise purchased for resale. " * 40,  # over the token limit
]


def test_int8_export_stays_close_to_the_model_and_batches_like_it(tmp_path: Path) -> None:
    """int8 weights move vectors a little (cosine >= 0.996 here, 0.998 mean on filings text,
    see ``onnx_text._quantize``);
    batching by length and the per-call token cap give the vectors one text at a time does."""
    model_dir = resolve_text_model(SPEC)
    st = load_text_embedder(SPEC)
    fp32_path = onnx_text.export(st.model, model_dir, tmp_path)
    int8_path = onnx_text.export(st.model, model_dir, tmp_path, int8=True)
    assert fp32_path and int8_path and int8_path != fp32_path
    assert int8_path.stat().st_size < 0.8 * fp32_path.stat().st_size
    fp32 = onnx_text.load(SPEC, model_dir, tmp_path)
    int8 = onnx_text.load(SPEC, model_dir, tmp_path, int8=True)
    assert fp32 is not None and int8 is not None
    reference = st.encode_document(DOCUMENTS)
    close = (int8.encode_document(DOCUMENTS) * reference).sum(axis=1)
    assert np.all(close > 0.99) and close.mean() < 0.99999, close  # close, not the same
    for encoder in (fp32, int8):  # a text's vector does not depend on its batch-mates
        one_by_one = np.vstack([encoder.encode_document([d], batch_size=1) for d in DOCUMENTS])
        batched = encoder.encode_document(DOCUMENTS, batch_size=4)
        assert np.allclose(batched, one_by_one, atol=1e-5)
    capped = (fp32.encode_document(DOCUMENTS, max_tokens=16)
              * st.encode_document(DOCUMENTS, max_tokens=16)).sum(axis=1)
    assert np.all(capped > 0.9999), capped
    assert not np.allclose(fp32.encode_document(DOCUMENTS[:1], max_tokens=8), reference[:1],
                           atol=1e-3)
    assert fp32.encode_document([]).shape == (0, fp32.dim)


def test_the_backend_setting_picks_the_encoder_and_exports_once(tmp_path: Path) -> None:
    from vistarag.agent.models import Models

    def encoder(backend: str):
        return Models(Settings(_env_file=None, home=tmp_path / "home",
                               model_cache=tmp_path / "cache", text_backend=backend)).text_encoder

    assert not isinstance(encoder("torch"), onnx_text.OnnxTextEncoder)
    assert not (tmp_path / "cache").exists()  # torch needs no export
    first = encoder("onnx-int8")
    assert isinstance(first, onnx_text.OnnxTextEncoder)
    exported = sorted((tmp_path / "cache").glob("*.onnx"))
    assert [p.name.endswith("-int8.onnx") for p in exported] == [True]
    mtime = exported[0].stat().st_mtime_ns
    assert isinstance(encoder("onnx-int8"), onnx_text.OnnxTextEncoder)
    assert exported[0].stat().st_mtime_ns == mtime  # loaded, not exported again
    assert isinstance(encoder("onnx"), onnx_text.OnnxTextEncoder)
    assert len(list((tmp_path / "cache").glob("*.onnx"))) == 2


def test_an_export_made_by_other_libraries_or_code_is_not_reused(monkeypatch) -> None:
    """The cache key covers what changes an export's output besides the model's files: the
    versions of torch, transformers, onnx and onnxruntime, and the export/quantise code. An
    export left in the cache by another install is never loaded as if it were this one's."""
    from importlib import metadata

    model_dir = resolve_text_model(SPEC)
    before = onnx_text.pipeline_of(model_dir)
    real_version = metadata.version

    def other_onnxruntime(name: str) -> str:
        return "0.0.1" if name == "onnxruntime" else real_version(name)

    monkeypatch.setattr(metadata, "version", other_onnxruntime)
    onnx_text._recipe.cache_clear()
    try:
        after = onnx_text.pipeline_of(model_dir)
    finally:
        onnx_text._recipe.cache_clear()
    assert before is not None and after is not None
    assert before.fingerprint != after.fingerprint
    assert "onnxruntime=" in onnx_text._recipe() and "torch=" in onnx_text._recipe()


def test_int8_weights_use_seven_bits_so_no_cpu_saturates_them(tmp_path: Path) -> None:
    """On a CPU without VNNI, ONNX Runtime's u8 x s8 kernel adds pairs of products in 16 bits:
    full-range int8 weights saturate there and the same export gives other vectors than on a
    VNNI CPU. Weights quantised to 7 bits (|w| <= 64) cannot saturate on any CPU."""
    import onnx
    from onnx import numpy_helper

    st = load_text_embedder(SPEC)
    path = onnx_text.export(st.model, resolve_text_model(SPEC), tmp_path, int8=True)
    assert path is not None
    graph = onnx.load(str(path)).graph
    quantized = [numpy_helper.to_array(t) for t in graph.initializer
                 if t.data_type == onnx.TensorProto.INT8 and t.name.endswith("_quantized")]
    assert quantized, "no int8 weights in the export"
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in quantized) <= 64


def test_the_export_is_made_in_a_child_so_this_process_never_holds_torch(tmp_path: Path) -> None:
    """The first use of the encoder on a machine exports the model: in a child process, so
    torch and the export's 1.2 GB peak never reach the process that ingests or serves."""
    cache = tmp_path / "cache"
    probe = (
        "import re, sys\n"
        "from vistarag.agent.models import Models\n"
        "from vistarag.agent.settings import Settings\n"
        f"models = Models(Settings(_env_file=None, home={str(tmp_path / 'home')!r}, "
        f"model_cache={str(cache)!r}, joint_model='none'))\n"
        "encoder = models.text_encoder\n"
        "status = open('/proc/self/status').read()\n"  # VmHWM: this process's own peak
        "peak = int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) // 1024\n"
        "print('ENCODER', type(encoder).__name__, 'torch' in sys.modules, peak)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=600)
    name, imported_torch, peak_mib = done.stdout.split("ENCODER")[1].split()
    assert (name, imported_torch) == ("OnnxTextEncoder", "False"), done.stdout + done.stderr
    assert int(peak_mib) < 500, peak_mib
    assert [p.name.endswith("-int8.onnx") for p in cache.glob("*.onnx")] == [True]
    # A model the export cannot reproduce starts no child at all.
    assert onnx_text.export_in_child(tmp_path / "missing", cache) is None


def test_the_session_keeps_the_residual_add_and_layer_norm_apart(tmp_path: Path) -> None:
    """ONNX Runtime would fuse each residual Add and LayerNormalization of the int8 export into
    SkipLayerNormalization, a slower kernel on these CPUs (``onnx_text.UNFUSED``); the encoder's
    session does not, and its vectors stay as close to the model."""
    import onnx
    import onnxruntime as ort

    st = load_text_embedder(SPEC)
    path = onnx_text.export(st.model, resolve_text_model(SPEC), tmp_path, int8=True)
    assert path is not None

    def optimized_ops(session_of) -> list[str]:  # noqa: ANN001 - (path, options) -> session
        options = onnx_text.session_options(1)
        options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
        session_of(path, options)
        return [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]

    fused = optimized_ops(lambda p, o: ort.InferenceSession(str(p), o,
                                                            providers=["CPUExecutionProvider"]))
    ours = optimized_ops(onnx_text.open_session)
    assert fused.count("SkipLayerNormalization") >= 6  # ORT's default: one per layer or more
    assert "SkipLayerNormalization" not in ours
    assert ours.count("LayerNormalization") >= fused.count("LayerNormalization") + 6
    encoder = onnx_text.load(SPEC, resolve_text_model(SPEC), tmp_path, int8=True)
    assert encoder is not None
    close = (encoder.encode_document(DOCUMENTS) * st.encode_document(DOCUMENTS)).sum(axis=1)
    assert np.all(close > 0.99), close
