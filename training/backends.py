"""What runs the model: PyTorch or an ONNX copy, behind one small contract (`Backend`), and the
`Classifier` that tokenizes (target, window) pairs and feeds a backend length-sorted batches.

Backends: `torch`; `onnx`, ONNX Runtime on the float32 export (`model.onnx`): the same labels as torch and
an answer that does not depend on which other windows share its batch; `int8`, ONNX Runtime on the
per-token int8 copy (`model.int8.onnx`, `training.quantize`), whose scales come from each token's own row,
so it is batch-invariant too (an older int8 file, scaled per call, is run one window per call instead).
`auto` serves, among the copies whose check passed (`backends.json`), the one the check timed fastest;
with no passing copy, or on a GPU, torch.

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
from training.quantize import SCHEME as INT8_SCHEME
from training.quantize import is_per_token

logger = logging.getLogger(__name__)
FLOAT_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
CHECK_FILE = "backends.json"
"""The backends' check record (`export.check_backends`), beside the ONNX files it judged."""
BACKENDS = ("auto", "torch", "onnx", "int8")
"""Backend names the command line and the settings accept."""
ONNX_FILES = {"onnx": FLOAT_FILE, "int8": INT8_FILE}
"""The file each ONNX Runtime backend runs."""
CHECK_KEYS = {"onnx": "onnx_keeps_accuracy", "int8": "int8_keeps_accuracy"}
"""The verdict of each ONNX backend in the check record."""


def check_record(folder: Path) -> dict | None:
    """The folder's `backends.json`, or None when no check was run."""
    path = Path(folder) / CHECK_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def verified(folder: Path, backend: str) -> bool:
    """True when the ONNX `backend`'s file exists in the folder and its accuracy check passed."""
    record = check_record(folder)
    return (Path(folder) / ONNX_FILES[backend]).exists() and bool(record and record.get(CHECK_KEYS[backend]))


def served_copy(record: dict) -> str | None:
    """The ONNX copy `auto` serves on a CPU under a check record: of those that passed, the one the check
    read its windows fastest with (int8 only when per-token, so batch-invariant); None when none passed."""
    passed = [name for name in ONNX_FILES if record.get(CHECK_KEYS[name])]
    if "int8" in passed and record.get("int8", {}).get("scheme") != INT8_SCHEME:
        passed.remove("int8")  # quantized per call: invariant only one window at a time, which is slow
    seconds = record.get("seconds", {})
    return min(passed, key=lambda name: (seconds.get(name, float("inf")), name != "onnx")) if passed else None


def auto_backend(folder: Path, gpu: bool) -> tuple[str, str]:
    """What `auto` serves for `folder`, and why: torch on a GPU; else the copy `served_copy` picks from the
    check record, when its file is there; else torch, with the reason the float32 export cannot be served."""
    folder = Path(folder)
    if gpu:
        return "torch", "a GPU is present"
    record = check_record(folder) or {}
    best = served_copy(record)
    if best and verified(folder, best):
        seconds = record.get("seconds", {})
        timed = ", ".join(f"{name} {seconds[name]:.1f} s" for name in ONNX_FILES if name in seconds)
        return best, f"{ONNX_FILES[best]} passed its check ({CHECK_FILE})" + (f"; check windows read in {timed}" if timed else "")
    if not (folder / FLOAT_FILE).exists():
        only_int8 = " (the int8 copy is served only when asked for: --backend int8)" if (folder / INT8_FILE).exists() else ""
        return "torch", f"no {FLOAT_FILE} in {folder}{only_int8}: run `stanceline export --model {folder}`"
    if CHECK_KEYS["onnx"] not in record:
        return "torch", f"{FLOAT_FILE} has no check in {CHECK_FILE}: run `stanceline export --model {folder}`"
    return "torch", f"{FLOAT_FILE} failed its check ({CHECK_FILE}): its labels differ from torch's"


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

    "auto" picks the fastest ONNX copy whose check on dev passed (`export.check_backends`) when no GPU is
    present, else torch (`auto_backend`)."""
    if backend == "auto":
        import torch

        backend, reason = auto_backend(Path(folder), torch.cuda.is_available())
        exported = any((Path(folder) / name).exists() for name in ONNX_FILES.values())
        if backend == "torch" and exported and not torch.cuda.is_available():
            logger.warning("serving torch for %s, which is slower on CPU: %s", folder, reason)
        else:
            logger.info("auto backend for %s: %s (%s)", folder, backend, reason)
    if backend == "torch":
        if threads:
            import torch

            torch.set_num_threads(threads)
        return TorchBackend(folder)
    if backend in ONNX_FILES:
        return OnnxBackend(folder, threads=threads, file=ONNX_FILES[backend], spin=spin, name=backend)
    raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")


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
    """ONNX Runtime on one of the folder's ONNX files (`file`), threads set once.

    `per_row=True` runs each window in its own session call, its padding removed. An int8 file quantized
    by ONNX Runtime's dynamic quantization computes its activation scales over everything in a call, so in
    a batch a window's answer would depend on the other windows; alone, it depends only on itself. Such
    files (exported before 2026-12-08) are run per row whatever `per_row` says. The float32 model and the
    per-token int8 file need no such care: their batched answers equal their single ones exactly.

    By default ONNX Runtime's worker threads spin between operators, which lowers the latency of one call
    when nothing else needs the cores. In the server, the event loop and the planning threads share those
    cores with the model, and spinning takes CPU from them: `spin=False` there (measured in
    reports/EXPERIMENTS.md, "Serving overhead")."""

    def __init__(
        self,
        folder: Path,
        threads: int | None = None,
        file: str = FLOAT_FILE,
        spin: bool = True,
        name: str = "onnx",
        per_row: bool = False,
    ) -> None:
        import onnxruntime

        path = Path(folder) / file
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `make export` (stanceline export --model {folder}) first")
        self.name = name
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = {item.name for item in self.session.get_inputs()}
        self.per_row = per_row or (name == "int8" and not is_per_token(self.session))

    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: value for name, value in batch.items() if name in self.input_names}
        if not self.per_row:
            return self.session.run(["logits"], feed)[0]
        kept = batch["attention_mask"].astype(bool)  # the row's own tokens, wherever the tokenizer padded
        return np.concatenate(
            [
                self.session.run(["logits"], {name: value[row : row + 1, kept[row]] for name, value in feed.items()})[0]
                for row in range(len(kept))
            ]
        )
