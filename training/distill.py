"""Distillation: a larger teacher's soft labels for the student's windows, cached on disk, and the loss
that learns from them.

Why: a larger encoder reads stance better but is too slow to serve on two CPU cores. The served model
(the student) learns from the gold labels and from the teacher's whole output distribution (Hinton et al.,
2015), which also carries a signal where gold is missing: stance on sentiment-only rows (NewsMTSC),
sentiment on stance-only rows (QuadClass), both on unlabelled sentences.

The teacher reads each window through the same `Classifier` serving uses, so it sees exactly the
student's input. Its logits are computed once per (teacher, window) and kept in
`<cache_dir>/<teacher fingerprint>.npz`, so a rerun of `make train` costs the student's time only.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from training.backends import Classifier
from training.examples import Example
from training.files import replaced_atomically
from training.labels import HEADS, output_width, task_slices
from training.modeling import META_FILE, ModelMeta

logger = logging.getLogger(__name__)
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def teacher_fingerprint(folder: Path | str) -> str:
    """A short hash of the teacher's weights and settings: the cache key that changes when the teacher does."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for name in (*WEIGHT_FILES, META_FILE):
        path = folder / name
        if path.exists():
            with path.open("rb") as handle:
                while block := handle.read(1 << 22):
                    digest.update(block)
    return digest.hexdigest()[:16]


def window_key(target: str, window: str) -> str:
    """The cache key of one model input."""
    return hashlib.sha1(f"{target}\x00{window}".encode()).hexdigest()


def check_teacher(folder: Path | str) -> ModelMeta:
    """The teacher's settings, or a clear error when `folder` cannot teach this code's heads."""
    folder = Path(folder)
    if not (folder / META_FILE).exists():
        raise FileNotFoundError(f"teacher {folder} is not a Stanceline model folder: train one with `make teacher`")
    meta = ModelMeta.load(folder)
    if meta.heads != HEADS:
        raise ValueError(f"teacher {folder} has heads {list(meta.heads)}, the student needs {list(HEADS)}")
    if not any((folder / name).exists() for name in WEIGHT_FILES):
        raise FileNotFoundError(f"teacher {folder} holds no weights ({' or '.join(WEIGHT_FILES)})")
    return meta


def load_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path) as stored:
        return dict(zip(stored["keys"].tolist(), stored["logits"], strict=True))


def save_cache(path: Path, cache: dict[str, np.ndarray]) -> None:
    """Write the whole cache to a temporary file and rename it, so a crash leaves the old cache whole."""
    with replaced_atomically(path) as temporary, temporary.open("wb") as handle:
        np.savez(handle, keys=np.array(list(cache), dtype="U40"), logits=np.stack(list(cache.values())).astype(np.float32))


def teacher_logits(
    teacher: Path | str,
    examples: list[Example],
    cache_dir: Path | str,
    batch_size: int = 64,
    compute: bool = True,
    poll_seconds: float = 5.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The teacher's raw logits for each example (rows in example order), computing only the windows
    the cache lacks, and a record of what was done for the model card.

    `compute=False` waits instead until another process (rank 0 of a distributed run) has written the
    missing windows to the cache, so that the teacher reads each window once."""
    teacher = Path(teacher)
    meta = check_teacher(teacher)
    fingerprint = teacher_fingerprint(teacher)
    path = Path(cache_dir) / f"{fingerprint}.npz"
    cache = load_cache(path)
    keys = [window_key(example.target, example.window_text) for example in examples]
    missing: dict[str, tuple[str, str]] = {}
    for key, example in zip(keys, examples, strict=True):
        if key not in cache:
            missing.setdefault(key, (example.target, example.window_text))
    started = time.time()
    while missing and not compute:
        time.sleep(poll_seconds)
        cache = load_cache(path)
        missing = {key: value for key, value in missing.items() if key not in cache}
    if missing:
        logger.info("teacher %s reads %d windows (%d cached)", teacher, len(missing), len(set(keys)) - len(missing))
        classifier = Classifier(teacher, backend="torch", batch_size=batch_size)
        computed = classifier.logits(list(missing.values()))
        cache.update(zip(missing, computed, strict=True))
        save_cache(path, cache)
    record = {
        "teacher": str(teacher),
        "fingerprint": fingerprint,
        "base_model": meta.base_model,
        "windows": len(set(keys)),
        "computed": len(missing),
        "seconds": round(time.time() - started, 1),
        "cache": str(path),
    }
    logits = np.stack([cache[key] for key in keys]) if keys else np.zeros((0, output_width(HEADS)), np.float32)
    return logits.astype(np.float32), record


def distillation_loss(student_logits, teacher_logits, temperature: float):
    """Sum over heads of KL(teacher || student) on temperature-softened distributions, times T squared so
    that its gradients keep their scale as T changes (Hinton et al., 2015). Rows whose teacher logits are
    NaN (windows the teacher did not read) are left out."""
    import torch
    import torch.nn.functional as functional

    total = student_logits.new_zeros(())
    read = torch.isfinite(teacher_logits).all(dim=1)
    if not read.any():
        return total
    student_logits, teacher_logits = student_logits[read], teacher_logits[read]
    for columns in task_slices().values():
        student = functional.log_softmax(student_logits[:, columns].float() / temperature, dim=-1)
        target = functional.log_softmax(teacher_logits[:, columns].float() / temperature, dim=-1)
        total = total + functional.kl_div(student, target, log_target=True, reduction="batchmean")
    return total * temperature**2
