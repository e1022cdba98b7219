"""The int8 text encoder's vector cache and quantisation recipe: a text read again is not run
again and gets the very vector a run gives; every weight is int8 but a few outlier channels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vistarag.agent import onnx_outliers, onnx_text
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


def test_every_weight_is_int8_but_the_outlier_channels(int8_export: Path) -> None:
    """Each MatMul's few outlier input channels run in fp32 beside its int8 product (see
    ``onnx_outliers``); every other weight is int8, the down-projections' included."""
    import onnx

    (path,) = int8_export.glob("*-int8.onnx")
    graph = onnx.load(str(path)).graph
    weights = {t.name: t for t in graph.initializer}
    fp32 = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    assert fp32 and all(n.name.endswith(onnx_outliers.FP32_SUFFIX) for n in fp32)
    channels = [weights[n.input[1]].dims[0] for n in fp32]  # one MatMul's outlier channels
    assert max(channels) < 128 and sum(channels) < 400, channels  # 73 and 302 here
    assert len([n for n in graph.node if n.op_type == "MatMulInteger"]) == 6 * 6
    assert not any(n.op_type == "IsNaN" for n in graph.node)  # eager attention: no NaN guard
