"""The int8 text encoder's vector cache and quantisation recipe: a text read again is not run
again and gets the very vector a run gives; the feed-forward down-projections stay fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vistarag.agent import onnx_text
from vistarag.agent.embeddings import load_text_embedder, resolve_text_model

SPEC = "packaged:all-MiniLM-L6-v2"
BOILERPLATE = "I, Jane Doe, certify that I have reviewed this quarterly report on Form 10-Q."
TEXTS = [BOILERPLATE, "Net revenue increased 12% to $4,210 million.", BOILERPLATE,
         "  " + BOILERPLATE + "  ", "Inventories consist of merchandise purchased for resale."]


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("onnx-cache")
    st = load_text_embedder(SPEC)
    path = onnx_text.export(st.model, resolve_text_model(SPEC), cache, int8=True)
    assert path is not None
    return cache


def _encoder(cache: Path) -> onnx_text.OnnxTextEncoder:
    encoder = onnx_text.load(SPEC, resolve_text_model(SPEC), cache, int8=True)
    assert encoder is not None
    return encoder


def test_repeated_texts_run_once_and_get_the_vector_a_run_gives(int8_export: Path) -> None:
    encoder = _encoder(int8_export)
    vectors = encoder.encode_document(TEXTS)
    assert encoder.runs == 3  # the boilerplate three times (once padded), two others once
    assert np.array_equal(vectors[0], vectors[2]) and np.array_equal(vectors[0], vectors[3])
    fresh = _encoder(int8_export)  # no cache: each text on its own
    alone = np.vstack([fresh.encode_document([t]) for t in TEXTS])
    assert np.array_equal(vectors, alone)
    again = encoder.encode_document(list(reversed(TEXTS)))  # a later call: all from the cache
    assert encoder.runs == 3
    assert np.array_equal(again, vectors[::-1])
    assert np.array_equal(encoder.encode_query([BOILERPLATE])[0], vectors[0])


def test_the_cache_keys_on_what_the_model_reads(int8_export: Path) -> None:
    """Two texts the same in their first ``max_tokens`` tokens are one run; read in full they
    are two; the cache is bounded."""
    encoder = _encoder(int8_export)
    a, b = BOILERPLATE + " First quarter.", BOILERPLATE + " Second quarter."
    short = encoder.encode_document([a, b], max_tokens=8)
    assert encoder.runs == 1 and np.array_equal(short[0], short[1])
    full = encoder.encode_document([a, b])
    assert encoder.runs == 3 and not np.allclose(full[0], full[1])
    encoder_cap = onnx_text.CACHE_VECTORS
    try:
        onnx_text.CACHE_VECTORS = 2
        encoder.encode_document(TEXTS)
        assert len(encoder._cache) == 2
    finally:
        onnx_text.CACHE_VECTORS = encoder_cap


def test_the_down_projections_stay_fp32(int8_export: Path) -> None:
    """Quantising the feed-forward down-projections moved rankings on the dev material (see
    ``onnx_text._quantize``): each of the six layers keeps its own in fp32."""
    import onnx

    (path,) = int8_export.glob("*-int8.onnx")
    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    fp32_down = [n.name for n in graph.node if n.op_type == "MatMul"
                 and len(shape := shapes.get(n.input[1], ())) == 2 and shape[0] > shape[1]]
    assert len(fp32_down) == 6, fp32_down
    assert all(f"layer.{i}/" in name for i, name in enumerate(fp32_down)), fp32_down
    quantized = [n for n in graph.node if n.op_type == "MatMulInteger"]
    assert len(quantized) == 6 * 6 - 6
