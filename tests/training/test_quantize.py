"""Per-token int8 (`training.quantize`): the integer products are exact on any CPU, each row's answer is
its own, and the file says how it was quantized."""

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from training.quantize import ACTIVATION_LEVELS, WEIGHT_LEVELS, is_per_token, quantize_per_token


def one_matmul_model(path, weight: np.ndarray, name: str = "projection") -> None:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name=name)],
        "one-matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None, weight.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None, weight.shape[1]])],
        [numpy_helper.from_array(weight, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def expected_per_token(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The same arithmetic in numpy, with exact integer products: what any CPU must return."""
    column_scale = np.maximum(np.abs(weight).max(axis=0), 1e-12) / WEIGHT_LEVELS
    weight_q = np.clip(np.round(weight / column_scale), -WEIGHT_LEVELS, WEIGHT_LEVELS).astype(np.int64)
    row_scale = np.maximum(np.abs(x).max(axis=-1, keepdims=True), 1e-12) / ACTIVATION_LEVELS
    x_q = np.round(x / row_scale.astype(np.float32)).astype(np.int64)
    return (x_q @ weight_q).astype(np.float64) * row_scale * column_scale


@pytest.fixture
def quantized(tmp_path):
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(64, 48)).astype(np.float32)
    weight[3, 5] = 9.0  # an outlier weight: its column's scale must not flatten the others
    one_matmul_model(tmp_path / "float.onnx", weight)
    assert quantize_per_token(tmp_path / "float.onnx", tmp_path / "int8.onnx") == 1
    session = onnxruntime.InferenceSession(str(tmp_path / "int8.onnx"), providers=["CPUExecutionProvider"])
    return session, weight


def test_integer_products_are_exact_even_at_full_range(quantized):
    """Rows that fill the whole u8 range against the largest weights: AVX2 kernels that sum u8 x s8 products
    in 16 bits would saturate with 8-bit weights; 7-bit weights cannot."""
    session, weight = quantized
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 7, 64)).astype(np.float32)
    x[0, 0] = np.sign(weight[:, 0]) * 50.0  # every product of this row with column 0 at its extreme
    x[1, 2, 10] = 400.0  # an outlier token: only its own row's scale may change
    (y,) = session.run(None, {"x": x})
    np.testing.assert_allclose(y, expected_per_token(x, weight), rtol=1e-5, atol=1e-4)
    assert np.abs(y - x @ weight).max() < 0.05 * np.abs(x @ weight).max()


def test_a_row_gets_the_same_answer_alone_and_in_any_batch(quantized):
    session, _ = quantized
    rng = np.random.default_rng(2)
    batch = rng.normal(size=(5, 9, 64)).astype(np.float32) * rng.uniform(0.1, 30, size=(5, 1, 1)).astype(np.float32)
    (together,) = session.run(None, {"x": batch})
    for row in range(len(batch)):
        (alone,) = session.run(None, {"x": batch[row : row + 1, :6]})
        np.testing.assert_array_equal(alone[0], together[row, :6])


def test_the_file_says_it_is_per_token_and_kept_nodes_stay_float(tmp_path):
    weight = np.ones((8, 4), np.float32)
    one_matmul_model(tmp_path / "float.onnx", weight, name="kept")
    assert quantize_per_token(tmp_path / "float.onnx", tmp_path / "kept.onnx", keep_float=["kept"]) == 0
    assert [node.op_type for node in onnx.load(str(tmp_path / "kept.onnx")).graph.node] == ["MatMul"]
    quantize_per_token(tmp_path / "float.onnx", tmp_path / "int8.onnx")
    int8 = onnxruntime.InferenceSession(str(tmp_path / "int8.onnx"), providers=["CPUExecutionProvider"])
    plain = onnxruntime.InferenceSession(str(tmp_path / "float.onnx"), providers=["CPUExecutionProvider"])
    assert is_per_token(int8) and not is_per_token(plain)
