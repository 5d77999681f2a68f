"""The fast CPU backend: the model exported to ONNX and dynamically quantized to int8.

`export_onnx` writes `model.onnx` (float32) and `model.int8.onnx` (weights int8, activations quantized
on the fly) into the model folder; `OnnxBackend` runs the int8 file with ONNX Runtime. Both backends
take the same token batches and return the same six logits per row (`modeling.Backend`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FLOAT_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def export_onnx(folder: Path) -> Path:
    """Export the folder's model to ONNX and quantize it; returns the int8 file's path."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification

    folder = Path(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    model.config.return_dict = False
    sample = {name: torch.ones((2, 16), dtype=torch.long) for name in INPUT_NAMES}
    sample["token_type_ids"] = torch.zeros((2, 16), dtype=torch.long)
    float_path, int8_path = folder / FLOAT_FILE, folder / INT8_FILE
    partial_float, partial_int8 = folder / f".{FLOAT_FILE}.part", folder / f".{INT8_FILE}.part"
    dynamic = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    torch.onnx.export(
        model,
        (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
        str(partial_float),
        input_names=list(INPUT_NAMES),
        output_names=["logits"],
        dynamic_axes={**dynamic, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(str(partial_float), str(partial_int8), weight_type=QuantType.QInt8)
    os.replace(partial_float, float_path)
    os.replace(partial_int8, int8_path)
    return int8_path


class OnnxBackend:
    """ONNX Runtime on the int8 model, threads set once."""

    name = "onnx"

    def __init__(self, folder: Path, threads: int | None = None, file: str = INT8_FILE) -> None:
        import onnxruntime

        path = Path(folder) / file
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `make export` (stanceline export --model {folder}) first")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = {item.name for item in self.session.get_inputs()}

    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: value for name, value in batch.items() if name in self.input_names}
        return self.session.run(["logits"], feed)[0]
