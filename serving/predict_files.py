"""`stanceline predict`: answer a JSONL file of documents with the same schemas and predictor as the API.

Each input line is a predict body with an `id`; each output line is that answer with the same `id`, in
input order. A bad line gets `{"id", "line", "error": {"code", "message"}}` on its output line and the
run goes on. The output is written to a temporary file and renamed into place at the end, so an
interrupted run never leaves a half-written output file.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from serving.app import load_model
from serving.errors import describe_validation
from serving.schemas import BatchDocument
from training.files import write_lines_atomically
from training.predictor import PredictionInputError, Predictor

logger = logging.getLogger(__name__)


def parse_line(line: str, line_number: int) -> tuple[BatchDocument | None, dict[str, Any] | None]:
    """The validated document of one input line, or the error object to write in its place."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as error:
        return None, {
            "id": None,
            "line": line_number,
            "error": {"code": "bad_json", "message": f"bad JSON: {error.msg} at column {error.colno}"},
        }
    try:
        return BatchDocument.model_validate(raw), None
    except ValidationError as error:
        document_id = raw.get("id") if isinstance(raw, dict) else None
        return None, {
            "id": document_id,
            "line": line_number,
            "error": {"code": "invalid_request", "message": describe_validation(error.errors())},
        }


def identity(document: BatchDocument) -> dict[str, Any]:
    """What an output line carries of its input beside the answer: the `id`, and `published` when given
    (so trends over the output know each document's date)."""
    return {"id": document.id} if document.published is None else {"id": document.id, "published": document.published}


def _answer_chunk(predictor: Predictor, chunk: list[tuple[int, BatchDocument]]) -> list[dict[str, Any]]:
    """Answers for a chunk of lines in one model pass; if anything fails, line by line, so only the guilty
    line gets an error object and the run goes on."""
    try:
        answers = predictor.predict([document.to_document() for _, document in chunk])
        return [{**identity(document), **answer} for (_, document), answer in zip(chunk, answers, strict=True)]
    except Exception:
        return [_answer_one(predictor, item) for item in chunk]


def _answer_one(predictor: Predictor, item: tuple[int, BatchDocument]) -> dict[str, Any]:
    line_number, document = item
    try:
        (answer,) = predictor.predict([document.to_document()])
        return {**identity(document), **answer}
    except PredictionInputError as error:
        return {"id": document.id, "line": line_number, "error": {"code": "invalid_request", "message": str(error)}}
    except Exception as error:
        logger.exception("line %d: the model failed", line_number)
        message = f"the model failed on this line: {type(error).__name__}: {error}"
        return {"id": document.id, "line": line_number, "error": {"code": "internal", "message": message}}


def predict_file(
    input_path: Path, output_path: Path, model: str, backend: str = "torch", batch_documents: int = 16
) -> dict[str, float]:
    """Answer every line of `input_path` into `output_path`; returns the answered and error line counts,
    the windows the model read, and the run's throughput (documents/s and windows/s, model loading
    excluded), so a user can size a larger run."""
    from tqdm.auto import tqdm

    if not input_path.exists():
        raise FileNotFoundError(f"input file {input_path} does not exist")
    predictor = load_model(model, backend=backend)
    started = time.perf_counter()
    # Lines end at "\n" only: str.splitlines would also cut at U+2028 and other separators that JSON
    # strings may hold raw.
    lines = input_path.read_text(encoding="utf-8").split("\n")
    counts = {"ok": 0, "errors": 0}
    slots: list[dict[str, Any] | None] = []
    pending: list[tuple[int, BatchDocument]] = []
    pending_slots: list[int] = []

    def flush() -> None:
        for slot, answer in zip(pending_slots, _answer_chunk(predictor, pending) if pending else [], strict=True):
            slots[slot] = answer
        pending.clear()
        pending_slots.clear()

    for line_number, line in enumerate(tqdm(lines, desc="documents", unit="doc"), start=1):
        if not line.strip():
            continue
        document, error = parse_line(line, line_number)
        slots.append(error)
        if document is not None:
            pending.append((line_number, document))
            pending_slots.append(len(slots) - 1)
            if len(pending) >= batch_documents:
                flush()
    flush()
    for answer in slots:
        counts["errors" if "error" in answer else "ok"] += 1
    write_lines_atomically(output_path, [json.dumps(answer, ensure_ascii=False) + "\n" for answer in slots])
    seconds = max(time.perf_counter() - started, 1e-9)
    return {
        **counts,
        "windows": predictor.windows_read,
        "seconds": round(seconds, 3),
        "documents_per_second": round((counts["ok"] + counts["errors"]) / seconds, 2),
        "windows_per_second": round(predictor.windows_read / seconds, 1),
    }
