"""The int8 ONNX copy of a trained model, and the check that decides whether `auto` serves it.

`export_onnx` writes `model.onnx` (float32) and `model.int8.onnx` (weights int8, activations quantized
on the fly) into the model folder. Every matrix product is quantized except the feed-forward output
projection of each layer (`ffn_output_matmuls`): its input, the GELU output, carries the outlier
activations that per-tensor int8 handles worst (Bondarenko et al., 2021, "Understanding and Overcoming
the Challenges of Efficient Transformer Quantization"); keeping it in float removed the dev stance drop
that int8 otherwise cost (reports/EXPERIMENTS.md, "Quantization routes").

int8 costs some accuracy, how much depends on the model, so `check_int8` scores the dev split with both
backends through the predictor and writes the result to `backends.json`; the `auto` backend serves int8
only where that check passed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from training.backends import CHECK_FILE, FLOAT_FILE, INPUT_NAMES, INT8_FILE
from training.evaluate import evaluate_articles
from training.modeling import load_sequence_model
from training.predictor import Predictor

INT8_TOLERANCE = 0.005
"""Largest drop in dev stance macro-F1 (int8 against torch) for `auto` to choose int8."""


def ffn_output_matmuls(model_path: Path, intermediate_size: int, hidden_size: int) -> list[str]:
    """Names of the MatMul nodes that project a layer's feed-forward activations back to the hidden
    size, found by their weight's shape (intermediate x hidden) rather than by exporter-specific names."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and shapes.get(node.input[1]) == (intermediate_size, hidden_size)
    ]


def export_onnx(folder: Path) -> Path:
    """Export the folder's model to ONNX and quantize it; returns the int8 file's path. Any earlier
    int8 check is removed with the file it judged, so `auto` keeps torch until `check_int8` runs again."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = Path(folder)
    model = load_sequence_model(folder, dtype=torch.float32).eval()
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
    kept_float = ffn_output_matmuls(partial_float, model.config.intermediate_size, model.config.hidden_size)
    quantize_dynamic(str(partial_float), str(partial_int8), weight_type=QuantType.QInt8, nodes_to_exclude=kept_float)
    (folder / CHECK_FILE).unlink(missing_ok=True)  # a check of the previous int8 file no longer holds
    os.replace(partial_float, float_path)
    os.replace(partial_int8, int8_path)
    return int8_path


def check_int8(folder: Path, dev_articles: list[dict], dev_file: str) -> dict:
    """Score `dev_articles` with the torch and the int8 backend of `folder`, write `backends.json`
    (atomically) and return it. `int8_keeps_accuracy` decides what `auto` serves."""
    folder = Path(folder)
    scores = {}
    for backend in ("torch", "onnx"):
        metrics = evaluate_articles(Predictor.from_folder(folder, backend=backend), dev_articles, bootstrap=0)
        scores[backend] = {task: metrics[task]["macro_f1"] for task in ("stance", "sentiment") if task in metrics}
    drop = round(scores["torch"]["stance"] - scores["onnx"]["stance"], 4)
    record = {
        "dev_file": dev_file,
        "pairs": sum(len(article["annotations"]) for article in dev_articles),
        "macro_f1": scores,
        "int8_stance_drop": drop,
        "tolerance": INT8_TOLERANCE,
        "int8_keeps_accuracy": drop <= INT8_TOLERANCE,
    }
    partial = folder / f".{CHECK_FILE}.part"
    partial.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, folder / CHECK_FILE)
    return record


def describe_check(record: dict) -> str:
    """One line on a `check_int8` record, for logs and the command line."""
    scores = record["macro_f1"]
    verdict = "auto serves int8" if record["int8_keeps_accuracy"] else "auto keeps torch"
    return (
        f"int8 check on {record['dev_file']}: stance macro-F1 torch {scores['torch']['stance']:.3f}, "
        f"int8 {scores['onnx']['stance']:.3f} (drop {record['int8_stance_drop']:+.3f}, "
        f"tolerance {record['tolerance']}): {verdict}"
    )
