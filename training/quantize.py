"""Per-token int8: the encoder's matrix products in 8-bit integers, with a scale for each token's row.

ONNX Runtime's dynamic quantization scales a MatMul's activations by the largest value in the whole call,
so a window's answer depends on which other windows share its batch (reports/EXPERIMENTS.md, 2026-12-07
third session). Here every weighted MatMul `X @ W` of the float32 export becomes

    s = max|X[row]| / 127                                  one scale per token row, from that row alone
    Y = (MatMulInteger(round(X / s) + 128, Wq, 128)) * s * w_scale

A row's scale and its integer products depend only on that row, so batched answers equal single ones
exactly while the batch keeps the integer kernels' speed. Per-token scales also follow each token's range,
where one scale for a whole call is set by its largest outlier, and keep more of torch's labels.

Two choices come from the CPU kernels (EXPERIMENTS 2026-12-08):
- activations are unsigned with a fixed zero point of 128: ONNX Runtime's fast kernels take u8 x s8 with
  one zero point per tensor (s8 x s8 runs about 3 times slower than float32 on AVX2);
- weights use 7 bits (-63..63, one scale per output column): AVX2 without VNNI sums u8 x s8 products in
  pairs into 16 bits, and 255 x 63 x 2 < 32,767 cannot saturate, where 8-bit weights can. The integer
  products are then exact on every CPU, VNNI or not."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SCHEME = "per-token-u8s7"
"""The file's `stanceline_int8` metadata: tells the backend a batch needs no splitting (older int8 files,
quantized per call by ONNX Runtime, lack it and are run one window per call)."""
METADATA_KEY = "stanceline_int8"
ACTIVATION_LEVELS = 127.0
WEIGHT_LEVELS = 63.0


def quantize_per_token(source: Path, target: Path, keep_float: list[str] | tuple[str, ...] = ()) -> int:
    """Write `target`: the float32 ONNX model `source` with every MatMul whose second input is a 2-D
    weight in per-token int8 (nodes named in `keep_float` stay float). Returns how many were turned."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    constants = {
        "per_token/inverse_levels": np.array(1.0 / ACTIVATION_LEVELS, np.float32),
        "per_token/smallest_range": np.array(1e-12, np.float32),
        "per_token/offset": np.array(128.0, np.float32),
        "per_token/zero_point": np.array(128, np.uint8),
    }
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in constants.items())
    nodes, turned = [], 0
    for node in graph.node:
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is None or len(weight.dims) != 2 or node.name in keep_float:
            nodes.append(node)
            continue
        values = numpy_helper.to_array(weight).astype(np.float32)
        column_scale = (np.maximum(np.abs(values).max(axis=0), 1e-12) / WEIGHT_LEVELS).astype(np.float32)
        quantized = np.clip(np.round(values / column_scale), -WEIGHT_LEVELS, WEIGHT_LEVELS).astype(np.int8)
        name = f"per_token/{turned}"
        graph.initializer.extend(
            [numpy_helper.from_array(quantized, f"{name}/weight"), numpy_helper.from_array(column_scale, f"{name}/weight_scale")]
        )
        x, y = node.input[0], node.output[0]
        nodes += [
            helper.make_node("Abs", [x], [f"{name}/abs"]),
            helper.make_node("ReduceMax", [f"{name}/abs"], [f"{name}/range"], axes=[-1], keepdims=1),
            helper.make_node("Max", [f"{name}/range", "per_token/smallest_range"], [f"{name}/range_nonzero"]),
            helper.make_node("Mul", [f"{name}/range_nonzero", "per_token/inverse_levels"], [f"{name}/scale"]),
            helper.make_node("Div", [x, f"{name}/scale"], [f"{name}/scaled"]),
            helper.make_node("Round", [f"{name}/scaled"], [f"{name}/rounded"]),
            helper.make_node("Add", [f"{name}/rounded", "per_token/offset"], [f"{name}/shifted"]),
            helper.make_node("Cast", [f"{name}/shifted"], [f"{name}/x_uint8"], to=TensorProto.UINT8),
            helper.make_node("MatMulInteger", [f"{name}/x_uint8", f"{name}/weight", "per_token/zero_point"], [f"{name}/y_int32"]),
            helper.make_node("Cast", [f"{name}/y_int32"], [f"{name}/y_float"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"{name}/y_float", f"{name}/scale"], [f"{name}/y_rows"]),
            helper.make_node("Mul", [f"{name}/y_rows", f"{name}/weight_scale"], [y], name=node.name),
        ]
        turned += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.helper.set_model_props(model, {METADATA_KEY: SCHEME})
    onnx.save(model, str(target))
    return turned


def is_per_token(session) -> bool:
    """True when an ONNX Runtime session runs a file written by `quantize_per_token`."""
    return session.get_modelmeta().custom_metadata_map.get(METADATA_KEY) == SCHEME
