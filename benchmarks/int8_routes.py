"""Compare int8 routes for a trained model folder: speed, agreement with torch, batch invariance.

Routes: `dynamic` (ONNX Runtime's dynamic quantization, the int8 file exported before 2026-12-08:
activations scaled per call, so a row's answer depends on its batch), `per-token` (what `make export`
writes now, `training.quantize`: each token row scaled by its own range, run batched), `static` (QDQ, activation scales calibrated once on dev windows), `nbits8` (weight-only int8
`MatMulNBits`; accuracy level 4 quantizes activations per row block, which keeps a row's answer
independent of its batch), `nbits8-float` (the same weights computed in float), `dynamic-rows` (the
dynamic int8 file run one window per session call, padding removed: each window gets its own activation
scales, so its answer cannot depend on a batch), `float-rows` (the float32 export run the same way),
`fused` (the float32 export through ONNX Runtime's transformer optimizer: fused attention, layer norm and
GELU, `--fused-type bert`), `fused-eager` (the same after exporting with eager attention, whose
MatMul-Softmax-MatMul pattern the optimizer can fuse into its `Attention` operator; the SDPA export's is
not recognised). The
float32 export (`float`, batched) and torch are always timed beside them.

    python benchmarks/int8_routes.py --model models/r15-minilm --dev datasets/stanceline-wire/dev.jsonl
    python benchmarks/int8_routes.py --model models/r15-minilm --routes dynamic,dynamic-rows,float-rows --speed-windows 256 --repeats 2

Writes the routes' files as `model.int8-<route>.onnx` into a scratch folder (not the model folder) and
prints one JSON line per route. Measured figures go to reports/EXPERIMENTS.md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from onnxruntime.quantization import QuantType, quantize_dynamic

from training.backends import FLOAT_FILE, Classifier, OnnxBackend, TorchBackend
from training.data import load_articles
from training.export import check_inputs, export_onnx, ffn_output_matmuls
from training.modeling import ModelMeta, split_probabilities
from training.predictor import Predictor
from training.quantize import quantize_per_token


def static_route(float_path: Path, out: Path, batches: list[dict[str, np.ndarray]], exclude: list[str]) -> None:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(batches)

        def get_next(self):
            return next(self.items, None)

    quantize_static(
        str(float_path),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=exclude,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
    )


def nbits_route(float_path: Path, out: Path, accuracy_level: int, exclude: list[str], block_size: int) -> None:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, accuracy_level=accuracy_level, bits=8)
    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(float_path)),
        bits=8,
        block_size=block_size,
        is_symmetric=True,
        accuracy_level=accuracy_level,
        nodes_to_exclude=exclude,
        algo_config=config,
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(out), use_external_data_format=False)


def fused_route(float_path: Path, out: Path, model_type: str, heads: int, hidden: int) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(float_path), model_type=model_type, num_heads=heads, hidden_size=hidden, opt_level=1)
    print(json.dumps({"route": str(out.name), "fused_operators": optimized.get_fused_operator_statistics()}), flush=True)
    optimized.save_model_to_file(str(out))


def eager_export(folder: Path, out: Path) -> None:
    """The float32 export of `folder`'s model with eager attention, written to `out`."""
    import training.export

    plain = training.export.load_sequence_model

    def eager(*args, **kwargs):
        model = plain(*args, **kwargs)
        model.set_attn_implementation("eager")
        return model

    work = Path(tempfile.mkdtemp(prefix="eager-"))
    for name in folder.iterdir():
        if name.is_file() and name.suffix != ".onnx":
            shutil.copy(name, work / name.name)
    training.export.load_sequence_model = eager
    try:
        export_onnx(work)
    finally:
        training.export.load_sequence_model = plain
    shutil.move(work / FLOAT_FILE, out)
    shutil.rmtree(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dev", default="datasets/stanceline-wire/dev.jsonl")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--routes", default="per-token,dynamic,static,nbits8,nbits8-float")
    parser.add_argument("--exclude-ffn-output", default="static,dynamic", help="routes that keep the FFN output matmul in float")
    parser.add_argument("--block-size", type=int, default=32)
    parser.add_argument("--fused-type", default="bert", help="model_type for ONNX Runtime's transformer optimizer")
    parser.add_argument("--speed-windows", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(args.model)
    meta = ModelMeta.load(folder)
    scratch = Path(tempfile.mkdtemp(prefix="int8-routes-"))
    for name in folder.iterdir():
        if name.is_file() and name.suffix != ".onnx":
            shutil.copy(name, scratch / name.name)
    if (folder / FLOAT_FILE).exists():
        shutil.copy(folder / FLOAT_FILE, scratch / FLOAT_FILE)
    else:
        shutil.copy(folder / "model.safetensors", scratch / "model.safetensors")
        export_onnx(scratch)
    classifier = Classifier(scratch, backend="torch")
    predictor = Predictor.from_folder(scratch, backend="torch")
    inputs, sources = check_inputs(predictor, load_articles(args.dev), args.data_dir)
    print(json.dumps({"windows": len(inputs), "sources": sources}), flush=True)
    reference = split_probabilities(classifier.logits(inputs), meta.heads, meta.temperatures)

    config = json.loads((scratch / "config.json").read_text())
    ffn = ffn_output_matmuls(scratch / FLOAT_FILE, config["intermediate_size"], config["hidden_size"])
    calibration = [classifier.encode(inputs[i : i + 32]) for i in range(0, min(len(inputs), 1024), 32)]
    dynamic = scratch / "model.int8-dynamic.onnx"
    if {"dynamic", "dynamic-rows"} & set(args.routes.split(",")):
        quantize_dynamic(str(scratch / FLOAT_FILE), str(dynamic), weight_type=QuantType.QInt8, nodes_to_exclude=ffn)
    files = {"dynamic": dynamic, "float": scratch / FLOAT_FILE}
    per_row = {"dynamic-rows": dynamic, "float-rows": scratch / FLOAT_FILE}
    files |= {route: path for route, path in per_row.items() if route in args.routes.split(",")}
    excluded = set(args.exclude_ffn_output.split(","))
    for route in args.routes.split(","):
        exclude = ffn if route in excluded else []
        path = scratch / f"model.int8-{route}.onnx"
        started = time.perf_counter()
        if route == "per-token":
            quantize_per_token(scratch / FLOAT_FILE, path)
        elif route == "static":
            static_route(scratch / FLOAT_FILE, path, calibration, exclude)
        elif route == "nbits8":
            nbits_route(scratch / FLOAT_FILE, path, 4, exclude, args.block_size)
        elif route == "nbits8-float":
            nbits_route(scratch / FLOAT_FILE, path, 0, exclude, args.block_size)
        elif route in ("fused", "fused-eager"):
            heads, hidden = config["num_attention_heads"], config["hidden_size"]
            source = scratch / FLOAT_FILE
            if route == "fused-eager":
                source = scratch / "model.eager.onnx"
                eager_export(scratch, source)
            fused_route(source, path, args.fused_type, heads, hidden)
        if route not in files:
            files[route] = path
            print(json.dumps({"route": route, "built_s": round(time.perf_counter() - started, 1)}), flush=True)
    rng = random.Random(7)
    probe = rng.sample(range(len(inputs)), min(96, len(inputs)))
    speed_inputs = inputs[: args.speed_windows]
    backends = {
        route: OnnxBackend(scratch, file=path.name, per_row=route in per_row)
        for route, path in files.items()
        if route in args.routes.split(",") + ["float"]
    }
    backends_torch = TorchBackend(scratch)
    timings: dict[str, list[float]] = {route: [] for route in [*backends, "torch"]}
    for _ in range(args.repeats):  # interleaved, so machine load hits every route alike
        for route in timings:
            classifier.backend = backends_torch if route == "torch" else backends[route]
            started = time.perf_counter()
            classifier.logits(speed_inputs)
            timings[route].append(time.perf_counter() - started)
    for route, backend in backends.items():
        classifier.backend = backend
        probabilities = split_probabilities(classifier.logits(inputs), meta.heads, meta.temperatures)
        agreement = {
            head: round(float((probabilities[head].argmax(1) == reference[head].argmax(1)).mean()), 4)
            for head in ("stance", "sentiment")
        }
        alone = np.concatenate([classifier.logits([inputs[i]]) for i in probe])
        together = classifier.logits([inputs[i] for i in probe])
        shuffled_order = probe[:]
        rng.shuffle(shuffled_order)
        shuffled = classifier.logits([inputs[i] for i in shuffled_order])
        shuffled = shuffled[[shuffled_order.index(i) for i in probe]]
        alone_p = split_probabilities(alone, meta.heads, meta.temperatures)
        together_p = split_probabilities(together, meta.heads, meta.temperatures)
        shuffled_p = split_probabilities(shuffled, meta.heads, meta.temperatures)
        drift = max(float(np.abs(alone_p[h] - together_p[h]).max()) for h in ("stance", "sentiment"))
        drift_shuffled = max(float(np.abs(shuffled_p[h] - together_p[h]).max()) for h in ("stance", "sentiment"))
        flips = sum(int((alone_p[h].argmax(1) != together_p[h].argmax(1)).sum()) for h in ("stance", "sentiment"))
        print(
            json.dumps(
                {
                    "route": route,
                    "agreement_with_torch": agreement,
                    "alone_vs_batch_max_prob_diff": round(drift, 6),
                    "batch_shuffle_max_prob_diff": round(drift_shuffled, 6),
                    "alone_vs_batch_label_flips": flips,
                    "probe_rows": len(probe),
                    "speed_windows": len(speed_inputs),
                    "seconds_median": round(sorted(timings[route])[len(timings[route]) // 2], 3),
                    "size_mb": round(files[route].stat().st_size / 1e6, 1),
                }
            ),
            flush=True,
        )
    print(json.dumps({"route": "torch", "seconds_median": round(sorted(timings["torch"])[args.repeats // 2], 3)}))
    shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
