"""Outlier channels split out of int8 MatMuls: the same function in fp32, a much smaller error
once quantised (the MiniLM export's make-up: ``test_text_encoder_cache``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from vistarag.agent import onnx_outliers

WIDE = (3, 11)  # the input channels that carry outliers


def _activations(rng: np.random.Generator, rows: int) -> np.ndarray:
    x = rng.normal(0, 1, (1, rows, 32)).astype(np.float32)
    x[..., WIDE] *= 40  # like MiniLM's widest channels: tens of times the median one
    return x


def _linear(path: Path, rng: np.random.Generator) -> None:
    """x @ w + b, then the residual x[..., :16] added, as in a transformer layer."""
    weight = rng.normal(0, 0.2, (32, 16)).astype(np.float32)
    bias = rng.normal(0, 0.1, 16).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"], name="proj/MatMul"),
         helper.make_node("Add", ["xw", "b"], ["y"], name="proj/Add"),
         helper.make_node("Slice", ["x", "start", "end", "axis"], ["skip"], name="skip"),
         helper.make_node("Add", ["y", "skip"], ["out"], name="residual")],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, 32])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, None, 16])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b"),
         numpy_helper.from_array(np.array([0], np.int64), "start"),
         numpy_helper.from_array(np.array([16], np.int64), "end"),
         numpy_helper.from_array(np.array([2], np.int64), "axis")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _int8(source: Path, target: Path, exclude: list[str]) -> Path:
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     reduce_range=True, op_types_to_quantize=["MatMul"], nodes_to_exclude=exclude)
    return target


def test_split_keeps_the_function_and_quantises_far_closer(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    plain, split = tmp_path / "plain.onnx", tmp_path / "split.onnx"
    _linear(plain, rng)
    calibration = [{"x": _activations(rng, 12)} for _ in range(3)]
    fp32_nodes = onnx_outliers.split_outliers(plain, split, calibration)
    assert fp32_nodes == ["proj/MatMul" + onnx_outliers.FP32_SUFFIX]
    graph = onnx.load(str(split)).graph
    gathered = next(t for t in graph.initializer if t.name.endswith("/outlier_index"))
    assert sorted(numpy_helper.to_array(gathered).tolist()) == list(WIDE)

    x = _activations(rng, 40)  # texts the calibration never saw
    reference = _run(plain, x)
    np.testing.assert_allclose(_run(split, x), reference, rtol=1e-5, atol=1e-5)

    def error(path: Path) -> float:
        return float(np.abs(_run(path, x) - reference).mean())

    whole = error(_int8(plain, tmp_path / "plain-int8.onnx", []))
    parted = error(_int8(split, tmp_path / "split-int8.onnx", fp32_nodes))
    assert parted < whole / 5, (parted, whole)


def test_a_model_without_outliers_is_left_as_it_is(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    plain, split = tmp_path / "plain.onnx", tmp_path / "split.onnx"
    _linear(plain, rng)
    even = [{"x": rng.normal(0, 1, (1, 12, 32)).astype(np.float32)} for _ in range(3)]
    assert onnx_outliers.split_outliers(plain, split, even) == []
    x = rng.normal(0, 1, (1, 5, 32)).astype(np.float32)
    assert np.array_equal(_run(split, x), _run(plain, x))

