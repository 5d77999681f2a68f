"""The ONNX copies of a trained model, and the check that decides whether `auto` serves them.

`export_onnx` writes `model.onnx` (float32) and `model.int8.onnx` (per-token int8, `training.quantize`:
every weighted matrix product in integers, each token row scaled by its own range) into the model folder.

`check_backends` scores dev windows with torch and with each ONNX copy, times each on those windows, and
writes the result to `backends.json`. The float32 copy should keep every label (it computes what torch
computes, in another order); the check is there to catch an export that went wrong. int8 costs some
accuracy, how much depends on the model: it passes when it keeps `MIN_AGREEMENT` of torch's stance and
sentiment labels. `auto` serves the fastest copy that passed (`backends.auto_backend`).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from training import public
from training.backends import CHECK_FILE, CHECK_KEYS, FLOAT_FILE, INPUT_NAMES, INT8_FILE, ONNX_FILES, served_copy
from training.evaluate import evaluate_articles
from training.files import write_lines_atomically
from training.items import items_from_articles
from training.modeling import load_sequence_model
from training.predictor import Predictor
from training.quantize import SCHEME, quantize_per_token

MIN_AGREEMENT = 0.97
"""Smallest share of checked windows whose stance and sentiment labels an ONNX copy must keep to pass."""
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
    """Export the folder's model to ONNX (float32) and quantize a copy; returns the float32 file's path.
    Any earlier check is removed with the files it judged, so `auto` keeps torch until `check_backends`
    runs again."""
    import torch
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
    quantize_per_token(partial_float, partial_int8)
    (folder / CHECK_FILE).unlink(missing_ok=True)  # a check of the previous int8 file no longer holds
    os.replace(partial_float, float_path)
    os.replace(partial_int8, int8_path)
    return float_path


def check_backends(folder: Path, dev_articles: list[dict], dev_file: str, data_dir: Path | str = "data") -> dict:
    """Compare each ONNX backend of `folder` (float32 `onnx`, `int8`) with torch, write `backends.json`
    (atomically) and return it.

    Fidelity is judged on what a copy changes: on every window the predictor reads for the dev articles and
    for the dev portion of each public corpus in `data_dir` (at most `MAX_CHECK_WINDOWS`), the share whose
    stance and sentiment labels the copy keeps, and how far its probabilities move. A macro-F1 difference on
    a few hundred pairs cannot tell a real loss from noise (its 95% interval is about +-0.05); agreement over
    thousands of windows can, and its Wilson interval is recorded so the reader sees the resolution.
    Article-level macro-F1 of every backend on the dev articles is recorded beside it."""
    folder = Path(folder)
    names = ["torch"] + [name for name, file in ONNX_FILES.items() if (folder / file).exists()]
    predictors = {backend: Predictor.from_folder(folder, backend=backend) for backend in names}
    inputs, sources = check_inputs(predictors["torch"], dev_articles, data_dir)
    seconds = {}
    started = time.perf_counter()
    reference = predictors["torch"].classifier.predict(inputs)
    seconds["torch"] = round(time.perf_counter() - started, 2)
    record: dict = {"dev_file": dev_file, "windows": len(inputs), "sources": sources, "min_agreement": MIN_AGREEMENT}
    for backend in names[1:]:
        started = time.perf_counter()
        probabilities = predictors[backend].classifier.predict(inputs)
        seconds[backend] = round(time.perf_counter() - started, 2)
        heads = agreement(reference, probabilities) if len(inputs) else {}
        keeps = bool(heads) and all(
            heads[head]["agreement"] >= MIN_AGREEMENT for head in ("stance", "sentiment") if head in heads
        )
        record[backend] = {"file": ONNX_FILES[backend], "heads": heads}
        if backend == "int8" and not predictors[backend].classifier.backend.per_row:
            record[backend]["scheme"] = SCHEME
        record[CHECK_KEYS[backend]] = keeps
    record["seconds"] = seconds
    scores = {}
    for backend, predictor in predictors.items():
        metrics = evaluate_articles(predictor, dev_articles, bootstrap=0) if dev_articles else {}
        scores[backend] = {task: metrics[task]["macro_f1"] for task in ("stance", "sentiment") if task in metrics}
    record["macro_f1"] = scores
    write_lines_atomically(folder / CHECK_FILE, [json.dumps(record, indent=2) + "\n"])
    return record


def agreement(reference: dict[str, np.ndarray], probabilities: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per head: the share of windows whose label matches the reference's (with its 95% interval), and
    how far the probabilities move (mean and max over windows of the largest change)."""
    heads = {}
    for head in ("stance", "sentiment", "evidence"):
        if head in reference:
            same = reference[head].argmax(axis=1) == probabilities[head].argmax(axis=1)
            drift = np.abs(reference[head] - probabilities[head]).max(axis=1)
            heads[head] = {
                "agreement": round(float(same.mean()), 4),
                "agreement_ci95": wilson_interval(int(same.sum()), len(same)),
                "mean_drift": round(float(drift.mean()), 6),
                "max_drift": round(float(drift.max()), 6),
            }
    return heads


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


SERVED_NAMES = {"torch": "torch", "onnx": "ONNX float32", "int8": "int8"}


def describe_check(record: dict) -> str:
    """One line on a `check_backends` record, for logs, the command line and the model card."""
    parts = []
    for backend in ONNX_FILES:
        if backend in record:
            heads = record[backend]["heads"]
            kept = ", ".join(
                f"{head} {info['agreement']:.1%} ({info['agreement_ci95'][0]:.1%}-{info['agreement_ci95'][1]:.1%})"
                for head, info in heads.items()
                if head != "evidence"
            )
            verdict = "passes" if record[CHECK_KEYS[backend]] else "FAILS"
            parts.append(f"{SERVED_NAMES[backend]} keeps {kept or 'no labels'}: {verdict}")
    return (
        f"backend check on {record['windows']} windows ({', '.join(record['sources'])}), labels kept against torch, "
        f"needed {record['min_agreement']:.0%}: {'; '.join(parts) or 'no ONNX copy'}; auto serves {SERVED_NAMES[served_copy(record) or 'torch']}"
    )
