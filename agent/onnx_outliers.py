"""Outlier channels of an exported transformer kept out of its int8 MatMuls.

In BERT-family models a few hidden channels carry activations many times wider than the rest:
in MiniLM-L6, a handful of channels per MatMul input reach 6-25x the median channel's largest
value, most of all in the first layers' feed-forward down-projections. Dynamic int8
quantisation gives each activation tensor one scale, set by its widest value, so those few
channels cost every other channel its precision. That is why the down-projections had to stay
fp32, and they took 28% of a run.

Here the outlier channels take a path of their own (the decomposition of LLM.int8(), with the
channels picked once, at export). For each MatMul with a constant weight, the channels whose
calibration maximum exceeds ``OUTLIER_RATIO`` times the median channel's:
- are zeroed in the int8 path (a Mul by a 0/1 mask; the same rows of the weight are zeroed);
- go through a small fp32 MatMul (the channels gathered, times their rows of the weight);
- have that product added back after the bias.
The channels come from the model's activations on ``CALIBRATION``, a fixed set of short,
varied texts, so the same model and code always give the same export. For MiniLM at a ratio of
3: 302 of the inputs' channels over 32 MatMuls (73 at most, the first down-projection).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

OUTLIER_RATIO = 3.0  # a channel this many times wider than the median one is an outlier
# (measured against 6, 5 and 4 in ``onnx_text._quantize``: the closest to the fp32 model)
CALIBRATION = (
    "The quick brown fox jumps over the lazy dog.",
    "Revenue increased 12% year over year, driven by strong demand in our cloud segment.",
    "Click the Settings icon in the top right corner to change your password.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The meeting was postponed until next Thursday because the manager was ill.",
    "Table 3: Operating expenses by quarter (in millions)",
    "Error 404: the page you requested could not be found on this server.",
    "She walked along the beach at sunset, listening to the waves.",
)
FP32_SUFFIX = "/outlier_channels"  # names the fp32 MatMuls that quantisation must leave alone


def input_absmax(model: Any, tensors: Iterable[str], feeds: Sequence[dict[str, np.ndarray]]
                 ) -> dict[str, np.ndarray]:
    """The largest absolute value of each channel (last axis) of ``tensors``, over ``feeds``."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    names = sorted(tensors)
    for name in names:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                                     None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    first_extra = len(model.graph.output)
    absmax: dict[str, np.ndarray] = {}
    for feed in feeds:
        values = session.run(None, feed)[first_extra:]
        for name, value in zip(names, values, strict=True):
            channel_max = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            absmax[name] = np.maximum(absmax.get(name, channel_max), channel_max)
    return absmax


def split_outliers(source: Path, target: Path, feeds: Sequence[dict[str, np.ndarray]],
                   ratio: float = OUTLIER_RATIO) -> list[str]:
    """Write ``source`` to ``target`` with each MatMul's outlier input channels on an fp32
    path of their own; the names of those fp32 MatMuls (to keep out of quantisation)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    matmuls = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights
               and len(weights[n.input[1]].dims) == 2]
    absmax = input_absmax(model, {n.input[0] for n in matmuls}, feeds)
    consumers: dict[str, list[Any]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    split_inputs: set[str] = set()
    fp32_nodes: list[str] = []
    for node in matmuls:
        x, y = node.input[0], node.output[0]
        channel_max = absmax[x]
        outliers = np.flatnonzero(channel_max > ratio * np.median(channel_max))
        if not outliers.size:
            continue
        weight = numpy_helper.to_array(weights[node.input[1]])
        keep = np.ones(weight.shape[0], dtype=weight.dtype)
        keep[outliers] = 0
        weights[node.input[1]].CopyFrom(numpy_helper.from_array(weight * keep[:, None],
                                                                node.input[1]))
        fp32_name = node.name + FP32_SUFFIX
        graph.initializer.append(numpy_helper.from_array(weight[outliers], fp32_name + "/weight"))
        added = []
        if x not in split_inputs:  # Q, K and V read one input: it is split once
            split_inputs.add(x)
            graph.initializer.append(numpy_helper.from_array(keep, x + "/inliers_mask"))
            graph.initializer.append(numpy_helper.from_array(outliers.astype(np.int64),
                                                             x + "/outlier_index"))
            added += [
                helper.make_node("Mul", [x, x + "/inliers_mask"], [x + "/inliers"],
                                 name=x + "/inliers"),
                helper.make_node("Gather", [x, x + "/outlier_index"], [x + "/outliers"],
                                 name=x + "/outliers", axis=-1),
            ]
        added.append(helper.make_node("MatMul", [x + "/outliers", fp32_name + "/weight"],
                                      [fp32_name], name=fp32_name))
        at = list(graph.node).index(node)
        for offset, new in enumerate(added):
            graph.node.insert(at + offset, new)
        node.input[0] = x + "/inliers"
        # The fp32 part is added after the bias, so ONNX Runtime still fuses MatMul + bias.
        after = consumers.get(y, [])
        if (len(after) == 1 and after[0].op_type == "Add"
                and any(name in weights for name in after[0].input)):
            after, total = after[0], after[0].output[0]
            after.output[0] = total + "/inliers"
        else:
            after, total = node, y
            node.output[0] = y + "/inliers"
        graph.node.insert(list(graph.node).index(after) + 1, helper.make_node(
            "Add", [total + "/inliers", fp32_name], [total], name=fp32_name + "/add"))
        fp32_nodes.append(fp32_name)
    onnx.save(model, str(target))
    return fp32_nodes
