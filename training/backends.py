"""What runs the model: PyTorch or the int8 ONNX copy, behind one small contract (`Backend`), and the
`Classifier` that tokenizes (target, window) pairs and feeds a backend length-sorted batches.

Torch and ONNX Runtime are imported when a backend is built, not with this module: importing torch takes
seconds, and the command line, the schema checks and the web server's start should not wait for it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from training.labels import output_width
from training.modeling import ModelMeta, load_sequence_model, split_probabilities

logger = logging.getLogger(__name__)
FLOAT_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
CHECK_FILE = "backends.json"
"""The int8 check's record (`export.check_int8`), beside the int8 file it judged."""


def int8_verified(folder: Path) -> bool:
    """True when the folder's int8 model exists and its accuracy check passed."""
    path = Path(folder) / CHECK_FILE
    if not (Path(folder) / INT8_FILE).exists() or not path.exists():
        return False
    return bool(json.loads(path.read_text(encoding="utf-8")).get("int8_keeps_accuracy"))


class Backend(Protocol):
    """Runs the encoder: token ids in, the heads' logits per row out. Torch and ONNX Runtime implement it."""

    name: str

    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray: ...


class TorchBackend:
    """The model in PyTorch, on a GPU when one is present, in bf16 there."""

    name = "torch"

    def __init__(self, folder: Path, device: str | None = None) -> None:
        import torch

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.model = load_sequence_model(folder, dtype=dtype).to(self.device).eval()

    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        with self.torch.inference_mode():
            tensors = {key: self.torch.from_numpy(value).to(self.device) for key, value in batch.items()}
            return self.model(**tensors).logits.float().cpu().numpy()


def load_backend(folder: Path, backend: str = "auto", threads: int | None = None, spin: bool = True) -> Backend:
    """The named backend for the model in `folder`; `threads` caps its CPU threads (None: all cores);
    `spin=False` lets ONNX Runtime's threads sleep between operators instead of busy-waiting (see `OnnxBackend`).

    "auto" picks ONNX int8 (the faster CPU backend) when no GPU is present and the folder's int8 model
    passed its accuracy check on dev (`export.check_int8`), else torch."""
    if backend == "auto":
        import torch

        backend = "onnx" if not torch.cuda.is_available() and int8_verified(Path(folder)) else "torch"
        if backend == "torch" and not torch.cuda.is_available() and (Path(folder) / CHECK_FILE).exists():
            logger.warning(
                "the int8 copy of %s failed its check (%s): serving torch, which is slower on CPU",
                folder,
                CHECK_FILE,
            )
    if backend == "torch":
        if threads:
            import torch

            torch.set_num_threads(threads)
        return TorchBackend(folder)
    if backend == "onnx":
        return OnnxBackend(folder, threads=threads, spin=spin)
    raise ValueError(f"unknown backend {backend!r}; expected 'torch' or 'onnx'")


class Classifier:
    """Tokenizes model inputs and runs them through a backend in length-sorted batches."""

    def __init__(
        self, folder: Path | str, backend: str = "auto", batch_size: int = 32, threads: int | None = None, spin: bool = True
    ) -> None:
        from transformers import AutoTokenizer

        self.folder = Path(folder)
        self.meta = ModelMeta.load(self.folder)
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        self.backend = load_backend(self.folder, backend, threads, spin)
        self.batch_size = batch_size

    def encode(self, pairs: list[tuple[str, str]]) -> dict[str, np.ndarray]:
        encoded = self.tokenizer(
            [first for first, _ in pairs],
            [second for _, second in pairs],
            truncation="only_second",
            max_length=self.meta.max_length,
            padding=True,
            return_tensors="np",
        )
        return {key: value.astype(np.int64) for key, value in encoded.items()}

    def logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Raw logits for each (target, window) pair, in input order, batched by length."""
        logits = np.zeros((len(pairs), output_width(self.meta.heads)), dtype=np.float32)
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            logits[chunk] = self.backend.logits(self.encode([pairs[i] for i in chunk]))
        return logits

    def predict(self, pairs: list[tuple[str, str]]) -> dict[str, np.ndarray]:
        """Per-head calibrated probabilities for each (target, window) pair, in input order."""
        return split_probabilities(self.logits(pairs), self.meta.heads, self.meta.temperatures)


class OnnxBackend:
    """ONNX Runtime on the int8 model, threads set once.

    By default ONNX Runtime's worker threads spin between operators, which lowers the latency of one call
    when nothing else needs the cores. In the server, the event loop and the planning threads share those
    cores with the model, and spinning takes CPU from them: `spin=False` there (measured in
    reports/EXPERIMENTS.md, "Serving overhead")."""

    name = "onnx"

    def __init__(self, folder: Path, threads: int | None = None, file: str = INT8_FILE, spin: bool = True) -> None:
        import onnxruntime

        path = Path(folder) / file
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `make export` (stanceline export --model {folder}) first")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = {item.name for item in self.session.get_inputs()}

    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: value for name, value in batch.items() if name in self.input_names}
        return self.session.run(["logits"], feed)[0]
