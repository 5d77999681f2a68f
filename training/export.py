"""The int8 ONNX copy of a trained model, and the check that decides whether `auto` serves it.

`export_onnx` writes `model.onnx` (float32) and `model.int8.onnx` (weights int8, activations quantized
on the fly) into the model folder. Every matrix product is quantized except the feed-forward output
projection of each layer (`ffn_output_matmuls`): its input, the GELU output, carries the outlier
activations that per-tensor int8 handles worst (Bondarenko et al., 2021, "Understanding and Overcoming
the Challenges of Efficient Transformer Quantization"); keeping it in float removed the dev stance drop
that int8 otherwise cost (reports/EXPERIMENTS.md, "Quantization routes").

int8 costs some accuracy, how much depends on the model, so `check_int8` scores the dev split with both
backends and writes the result to `backends.json`; the `auto` backend serves int8 only where that check
passed, and says so in the log, `/v1/model` and the model card where it did not.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from training import public
from training.backends import CHECK_FILE, FLOAT_FILE, INPUT_NAMES, INT8_FILE
from training.evaluate import evaluate_articles
from training.files import write_lines_atomically
from training.items import items_from_articles
from training.modeling import load_sequence_model
from training.predictor import Predictor

MIN_AGREEMENT = 0.97
"""Smallest share of checked windows whose stance and sentiment labels int8 must keep for `auto` to serve it."""
MAX_CHECK_WINDOWS = 3000
"""Windows the check reads at most (about a minute for both backends on 2 cores)."""


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


def named_inputs(model, names: list[str]):
    """The model as a module called with positional tensors that it receives by name, so the exported
    graph's inputs are exactly `names`."""
    import torch

    class NamedInputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return self.model(**dict(zip(names, tensors, strict=True)))

    return NamedInputs()


def export_onnx(folder: Path) -> Path:
    """Export the folder's model to ONNX and quantize it; returns the int8 file's path. Any earlier
    int8 check is removed with the file it judged, so `auto` keeps torch until `check_int8` runs again."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoTokenizer

    folder = Path(folder)
    model = load_sequence_model(folder, dtype=torch.float32).eval()
    model.config.return_dict = False
    # Only the inputs the tokenizer makes (MPNet has no token types), passed by name: the model's third
    # positional parameter is not token_type_ids for every architecture (MPNet's is position_ids).
    names = [name for name in INPUT_NAMES if name in AutoTokenizer.from_pretrained(folder).model_input_names]
    sample = {name: torch.ones((2, 16), dtype=torch.long) for name in names}
    if "token_type_ids" in sample:
        sample["token_type_ids"] = torch.zeros((2, 16), dtype=torch.long)
    float_path, int8_path = folder / FLOAT_FILE, folder / INT8_FILE
    partial_float, partial_int8 = folder / f".{FLOAT_FILE}.part", folder / f".{INT8_FILE}.part"
    dynamic = {name: {0: "batch", 1: "sequence"} for name in names}
    torch.onnx.export(
        named_inputs(model, names),
        tuple(sample[name] for name in names),
        str(partial_float),
        input_names=names,
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


def check_int8(folder: Path, dev_articles: list[dict], dev_file: str, data_dir: Path | str = "data") -> dict:
    """Compare the int8 backend of `folder` with torch, write `backends.json` (atomically) and return it.

    Fidelity is judged on what int8 changes: on every window the predictor reads for the dev articles and
    for the dev portion of each public corpus in `data_dir` (at most `MAX_CHECK_WINDOWS`), the share whose
    stance and sentiment labels int8 keeps, and how far its probabilities move. A macro-F1 difference on a
    few hundred pairs cannot tell a real loss from noise (its 95% interval is about +-0.05); agreement over
    thousands of windows can, and its Wilson interval is recorded so the reader sees the resolution.
    Article-level macro-F1 of both backends on the dev articles is recorded beside it."""
    folder = Path(folder)
    predictors = {backend: Predictor.from_folder(folder, backend=backend) for backend in ("torch", "onnx")}
    inputs, sources = check_inputs(predictors["torch"], dev_articles, data_dir)
    torch_probabilities = predictors["torch"].classifier.predict(inputs)
    int8_probabilities = predictors["onnx"].classifier.predict(inputs)
    heads = {}
    for head in ("stance", "sentiment", "evidence"):
        if head in torch_probabilities and len(inputs):
            same = torch_probabilities[head].argmax(axis=1) == int8_probabilities[head].argmax(axis=1)
            drift = np.abs(torch_probabilities[head] - int8_probabilities[head]).max(axis=1)
            heads[head] = {
                "agreement": round(float(same.mean()), 4),
                "agreement_ci95": wilson_interval(int(same.sum()), len(same)),
                "mean_drift": round(float(drift.mean()), 4),
                "max_drift": round(float(drift.max()), 4),
            }
    scores = {}
    for backend, predictor in predictors.items():
        metrics = evaluate_articles(predictor, dev_articles, bootstrap=0) if dev_articles else {}
        scores[backend] = {task: metrics[task]["macro_f1"] for task in ("stance", "sentiment") if task in metrics}
    keeps = bool(heads) and all(heads[head]["agreement"] >= MIN_AGREEMENT for head in ("stance", "sentiment") if head in heads)
    record = {
        "dev_file": dev_file,
        "windows": len(inputs),
        "sources": sources,
        "heads": heads,
        "min_agreement": MIN_AGREEMENT,
        "macro_f1": scores,
        "int8_keeps_accuracy": keeps,
    }
    write_lines_atomically(folder / CHECK_FILE, [json.dumps(record, indent=2) + "\n"])
    return record


def check_inputs(predictor: Predictor, dev_articles: list[dict], data_dir: Path | str) -> tuple[list[tuple[str, str]], dict]:
    """The (target, window) inputs the predictor reads for the dev articles and each public dev portion,
    spread evenly over the sources up to `MAX_CHECK_WINDOWS`, and how many came from each."""
    per_source = {"dev": items_from_articles(dev_articles)}
    per_source |= {f"{name}:dev": public.eval_items(f"{name}:dev", data_dir) for name in public.available(data_dir)}
    share = MAX_CHECK_WINDOWS // max(1, len(per_source))
    inputs: list[tuple[str, str]] = []
    sources = {}
    for source, items in per_source.items():
        windows = [(m.target, m.window_text) for item in items for m in predictor.plan(item.document).model_inputs]
        taken = windows[:: max(1, math.ceil(len(windows) / share))]
        inputs += taken
        sources[source] = len(taken)
    return inputs, sources


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> list[float]:
    """95% Wilson score interval of a proportion: sound near 0 and 1, where agreement lives."""
    if not trials:
        return [float("nan"), float("nan")]
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return [round(centre - half, 4), round(centre + half, 4)]


def describe_check(record: dict) -> str:
    """One line on a `check_int8` record, for logs, the command line and the model card."""
    verdict = "auto serves int8" if record["int8_keeps_accuracy"] else "INT8 DOES NOT HOLD: auto serves torch"
    agreement = ", ".join(
        f"{head} {info['agreement']:.1%} ({info['agreement_ci95'][0]:.1%}-{info['agreement_ci95'][1]:.1%})"
        for head, info in record["heads"].items()
        if head != "evidence"
    )
    return (
        f"int8 check on {record['windows']} windows ({', '.join(record['sources'])}): labels kept {agreement or 'none'}, "
        f"needed {record['min_agreement']:.0%}: {verdict}"
    )
