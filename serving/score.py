"""`stanceline score`: batch scoring of large collections on Ray Data, resumable.

Input: JSONL files (one predict body with an `id` per line, as `stanceline predict` reads) or Parquet files
with the same fields as columns, given as files, folders or globs, on any filesystem `pyarrow` reaches
(`s3://bucket/feed/*.jsonl` is just a path). Each file is cut into chunks of `rows_per_chunk` rows; a
Ray actor pool (the predictor loaded once per actor) answers chunk by chunk and writes each chunk's
answers as one Parquet file the moment it is done, renamed into place whole. A crash loses only the chunks
in flight; a rerun with the same arguments skips every chunk whose file exists.

Every line is parsed, validated and answered by the same code as `stanceline predict` (`serving.predict_files`),
so the `answer` column of a row equals that command's output line for the same input line.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import PurePosixPath
from typing import Any

from serving.app import load_model
from serving.predict_files import _answer_chunk, parse_line
from serving.store import as_utc, utc_now
from training.labels import STANCE_LABELS

logger = logging.getLogger(__name__)

INPUT_SUFFIXES = (".jsonl", ".json", ".parquet")
TEMPORARY_PREFIX = ".tmp-"
"""A chunk is written under this prefix (and a .part suffix) and renamed when complete; a killed run's
leftovers are removed by the next run."""
OUTPUT_SCHEMA_FIELDS = (
    ("line", "int64"),
    ("id", "string"),
    ("model", "string"),
    ("overall_stance", "string"),
    ("overall_sentiment", "string"),
    ("pairs", "int64"),
    ("answer", "string"),
    ("error_code", "string"),
    ("error_message", "string"),
    ("published", "timestamp"),
    ("published_source", "string"),
    ("stances", "stances"),
)
"""One output row per input document: its line (1-based line or row number in its file), its id as text,
the answer's headline columns, the whole answer as JSON (as `stanceline predict` writes it), or the error
of a bad row; its publication date (UTC, no zone) with `published_source` `given` when the input had
one, else the time the chunk was scored (`received`); and `stances`, one struct per answered pair (party,
issue, stance label and its calibrated scores), which `stanceline trends` aggregates without parsing JSON."""


def output_schema():
    """The Arrow schema of the output files (OUTPUT_SCHEMA_FIELDS)."""
    import pyarrow as pa

    stance = pa.struct(
        [("party", pa.string()), ("issue", pa.string()), ("stance", pa.string())]
        + [(label, pa.float64()) for label in STANCE_LABELS]
    )
    types = {"int64": pa.int64(), "string": pa.string(), "timestamp": pa.timestamp("us"), "stances": pa.list_(stance)}
    return pa.schema([(name, types[kind]) for name, kind in OUTPUT_SCHEMA_FIELDS])


@dataclass(frozen=True)
class Chunk:
    """A slice of one input file, answered and written as one output file."""

    path: str
    """Input file, as the filesystem knows it (no scheme)."""
    uri: str
    """Input file as given (with its scheme), to reopen it in an actor."""
    kind: str
    """"jsonl" or "parquet"."""
    start: int
    """Byte offset (jsonl) or first row (parquet)."""
    end: int
    first_line: int
    rows: int
    output: str
    """Output Parquet file (filesystem path, no scheme)."""


def _filesystem(uri: str):
    from pyarrow import fs

    return fs.FileSystem.from_uri(uri)


def _kind(path: str) -> str:
    return "parquet" if path.endswith(".parquet") else "jsonl"


def expand_inputs(inputs: list[str]) -> list[tuple[str, str]]:
    """(uri, filesystem path) of every input file: files as given, folders walked for .jsonl/.json/.parquet,
    globs (`*`, `?`, `[`) matched in their folder. A pattern or folder that finds nothing is an error."""
    from pyarrow import fs

    found: list[tuple[str, str]] = []
    for given in inputs:
        has_glob = any(char in given for char in "*?[")
        base = given.rsplit("/", 1)[0] if has_glob else given
        if has_glob and "/" not in given:
            base = "."
        filesystem, path = _filesystem(base if "://" in base or os.path.isabs(base) else os.path.abspath(base))
        scheme = given.split("://", 1)[0] + "://" if "://" in given else ""
        info = filesystem.get_file_info(path)
        if not has_glob and info.type == fs.FileType.File:
            found.append((given, path))
            continue
        if info.type != fs.FileType.Directory:
            raise FileNotFoundError(f"input {given} does not exist")
        pattern = given.rsplit("/", 1)[-1] if has_glob else None
        selector = fs.FileSelector(path, recursive=not has_glob)
        matches = sorted(
            entry.path
            for entry in filesystem.get_file_info(selector)
            if entry.type == fs.FileType.File
            and entry.path.endswith(INPUT_SUFFIXES)
            and (pattern is None or fnmatch.fnmatch(PurePosixPath(entry.path).name, pattern))
        )
        if not matches:
            raise FileNotFoundError(f"input {given} holds no .jsonl, .json or .parquet file")
        found += [(f"{scheme}{match}" if scheme else match, match) for match in matches]
    return found


def output_name(path: str, index: int) -> str:
    """A chunk's output file name: the input's stem, a digest of its full path (two inputs may share a name)
    and the chunk number."""
    digest = hashlib.sha256(path.encode("utf-8")).hexdigest()[:8]
    return f"{PurePosixPath(path).stem}-{digest}-{index:06d}.parquet"


def plan_chunks(inputs: list[str], output: str, rows_per_chunk: int) -> list[Chunk]:
    """Cut every input file into chunks of at most `rows_per_chunk` documents (JSONL: non-empty lines)."""
    import pyarrow.parquet as pq

    _, output_path = _filesystem(output if "://" in output or os.path.isabs(output) else os.path.abspath(output))
    chunks = []
    for uri, path in expand_inputs(inputs):
        filesystem, _ = _filesystem(uri if "://" in uri else os.path.abspath(uri))
        kind = _kind(path)
        bounds: list[tuple[int, int, int, int]] = []  # start, end, first line, rows
        if kind == "parquet":
            with filesystem.open_input_file(path) as handle:
                total = pq.ParquetFile(handle).metadata.num_rows
            bounds = [
                (row, min(row + rows_per_chunk, total), row + 1, min(rows_per_chunk, total - row))
                for row in range(0, total, rows_per_chunk)
            ]
        else:
            with filesystem.open_input_stream(path) as stream:
                offset, start, first_line, rows = 0, 0, 1, 0
                for line_number, line in enumerate(_lines(stream), start=1):
                    if rows == 0:
                        start, first_line = offset, line_number
                    offset += len(line)
                    if line.strip():
                        rows += 1
                    if rows == rows_per_chunk:
                        bounds.append((start, offset, first_line, rows))
                        rows = 0
                if rows:
                    bounds.append((start, offset, first_line, rows))
        for index, (start, end, first_line, rows) in enumerate(bounds):
            chunks.append(Chunk(path, uri, kind, start, end, first_line, rows, f"{output_path}/{output_name(path, index)}"))
    return chunks


def _lines(stream, block: int = 1 << 20):
    """Lines of a binary stream, each with its line ending, so byte offsets add up."""
    pending = b""
    while True:
        data = stream.read(block)
        if not data:
            break
        pending += data
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


def read_chunk(chunk: Chunk) -> list[tuple[int, str]]:
    """(line number, JSON text) of each document in a chunk."""
    filesystem, _ = _filesystem(chunk.uri if "://" in chunk.uri else os.path.abspath(chunk.uri))
    if chunk.kind == "parquet":
        import pyarrow.parquet as pq

        with filesystem.open_input_file(chunk.path) as handle:
            table = pq.read_table(handle).slice(chunk.start, chunk.end - chunk.start)
        rows = [{key: value for key, value in row.items() if value is not None} for row in table.to_pylist()]
        return [(chunk.first_line + offset, json.dumps(row, default=_iso_date)) for offset, row in enumerate(rows)]
    with filesystem.open_input_file(chunk.path) as handle:
        handle.seek(chunk.start)
        data = handle.read(chunk.end - chunk.start).decode("utf-8", errors="replace")
    return [(chunk.first_line + offset, line) for offset, line in enumerate(data.split("\n")) if line.strip()]


def _iso_date(value: Any) -> str:
    """A Parquet date or timestamp column (`published`) as the ISO 8601 text a JSONL line would carry."""
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def answer_row(line: int, answer: dict[str, Any], received: datetime) -> dict[str, Any]:
    """The output row of one answered (or refused) document; `received` stands in for a missing date."""
    dated = {
        "published": as_utc(datetime.fromisoformat(answer["published"])) if answer.get("published") else received,
        "published_source": "given" if answer.get("published") else "received",
    }
    if "error" in answer:
        return {
            "line": answer.get("line", line),
            "id": None if answer.get("id") is None else str(answer["id"]),
            "model": None,
            "overall_stance": None,
            "overall_sentiment": None,
            "pairs": None,
            "answer": json.dumps(answer, ensure_ascii=False),
            "error_code": answer["error"]["code"],
            "error_message": answer["error"]["message"],
            **dated,
            "stances": [],
        }
    overall = answer.get("overall") or {}
    return {
        "line": line,
        "id": str(answer["id"]),
        "model": f"{answer['model']['name']}@{answer['model']['version']}",
        "overall_stance": overall.get("stance", {}).get("label"),
        "overall_sentiment": overall.get("sentiment", {}).get("label"),
        "pairs": len(answer["results"]),
        "answer": json.dumps(answer, ensure_ascii=False),
        "error_code": None,
        "error_message": None,
        **dated,
        "stances": [
            {
                "party": result["party"],
                "issue": result.get("issue"),
                "stance": result["stance"]["label"],
                **{label: result["stance"]["scores"].get(label) for label in STANCE_LABELS},
            }
            for result in answer["results"]
        ],
    }


class ChunkScorer:
    """A Ray actor: loads the predictor once, then answers and writes whole chunks."""

    def __init__(self, model: str, backend: str, threads: int, batch_documents: int) -> None:
        self.predictor = load_model(model, backend=backend, threads=threads)
        self.batch_documents = batch_documents

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        outcome: dict[str, list] = {"output": [], "rows": [], "errors": [], "seconds": []}
        for index in range(len(batch["path"])):
            chunk = Chunk(**{name: _plain(batch[name][index]) for name in Chunk.__dataclass_fields__})
            started = time.perf_counter()
            rows = score_chunk(self.predictor, chunk, self.batch_documents)
            outcome["output"].append(chunk.output)
            outcome["rows"].append(len(rows))
            outcome["errors"].append(sum(row["error_code"] is not None for row in rows))
            outcome["seconds"].append(time.perf_counter() - started)
        return outcome


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def score_chunk(predictor, chunk: Chunk, batch_documents: int = 16) -> list[dict[str, Any]]:
    """Answer one chunk with `stanceline predict`'s code and write its Parquet file atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    pending: list[tuple[int, Any]] = []
    received = utc_now()

    def flush() -> None:
        for (line, _), answer in zip(pending, _answer_chunk(predictor, pending) if pending else [], strict=True):
            rows.append(answer_row(line, answer, received))
        pending.clear()

    for line, text in read_chunk(chunk):
        document, error = parse_line(text, line)
        if error is not None:
            flush()
            rows.append(answer_row(line, error, received))
            continue
        pending.append((line, document))
        if len(pending) >= batch_documents:
            flush()
    flush()
    rows.sort(key=lambda row: row["line"])
    table = pa.Table.from_pylist(rows, schema=output_schema())
    filesystem, _ = _filesystem(chunk.output if "://" in chunk.output else os.path.abspath(chunk.output))
    parent = chunk.output.rsplit("/", 1)[0]
    temporary = f"{parent}/{TEMPORARY_PREFIX}{os.getpid()}-{PurePosixPath(chunk.output).name}.part"
    with filesystem.open_output_stream(temporary) as stream:
        pq.write_table(table, stream)
    filesystem.move(temporary, chunk.output)
    return rows


MANIFEST = "_stanceline_score.json"


def check_manifest(filesystem, output_path: str, plan: dict[str, Any]) -> None:
    """Record how the output folder's chunks were cut, and refuse a rerun that would cut them otherwise
    (its chunk files would overlap the written ones)."""
    path = f"{output_path}/{MANIFEST}"
    try:
        with filesystem.open_input_stream(path) as stream:
            written = json.loads(stream.read().decode("utf-8"))
    except FileNotFoundError:
        with filesystem.open_output_stream(path) as stream:
            stream.write(json.dumps(plan, indent=2).encode("utf-8"))
        return
    if written != plan:
        raise ValueError(
            f"{output_path} holds chunks of another run (--batch-size {written.get('rows_per_chunk')}, "
            f"{len(written.get('inputs', []))} input file(s)); rerun with the same inputs and --batch-size, or choose "
            "another --output"
        )


@dataclass
class ScoreSummary:
    chunks: int
    skipped: int
    rows: int
    errors: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def score(
    inputs: list[str],
    output: str,
    model: str,
    backend: str = "auto",
    workers: int = 1,
    rows_per_chunk: int = 1024,
    batch_documents: int = 16,
    threads_per_worker: int | None = None,
) -> ScoreSummary:
    """Score every input document into Parquet files under `output` with `workers` Ray actors; chunks
    already written are skipped. Connects to the cluster in RAY_ADDRESS, else starts a local Ray."""
    import ray
    from pyarrow import fs

    if workers < 1 or rows_per_chunk < 1 or batch_documents < 1:
        raise ValueError("--workers, --batch-size and --batch-documents must be at least 1")
    if not os.path.exists(os.path.join(model, "stanceline.json")) and "://" not in model:
        raise FileNotFoundError(f"no Stanceline model in {model}: train one (make train) or pass --model")
    chunks = plan_chunks(inputs, output, rows_per_chunk)
    filesystem, output_path = _filesystem(output if "://" in output or os.path.isabs(output) else os.path.abspath(output))
    filesystem.create_dir(output_path, recursive=True)
    check_manifest(
        filesystem, output_path, {"inputs": sorted({chunk.path for chunk in chunks}), "rows_per_chunk": rows_per_chunk}
    )
    entries = filesystem.get_file_info(fs.FileSelector(output_path))
    for entry in entries:  # partial files of a killed run: their chunks are not done
        if PurePosixPath(entry.path).name.startswith(TEMPORARY_PREFIX):
            filesystem.delete_file(entry.path)
    done = {entry.path for entry in entries if entry.path.endswith(".parquet")}
    todo = [chunk for chunk in chunks if chunk.output not in done]
    skipped = len(chunks) - len(todo)
    if skipped:
        logger.info("resuming: %d of %d chunks are already written", skipped, len(chunks))
    started = time.perf_counter()
    rows = errors = 0
    if todo:
        local = "RAY_ADDRESS" not in os.environ
        threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
        if not ray.is_initialized():
            # Locally, one CPU slot per actor plus one for Ray's own tasks: with every core taken by an
            # actor, the tasks that feed them wait and the pipeline stalls.
            ray.init(num_cpus=workers + 1 if local else None, include_dashboard=False, log_to_driver=False)
        dataset = ray.data.from_items([asdict(chunk) for chunk in todo], override_num_blocks=len(todo))
        results = dataset.map_batches(
            ChunkScorer,
            fn_constructor_kwargs={
                "model": os.path.abspath(model),
                "backend": backend,
                "threads": threads,
                "batch_documents": batch_documents,
            },
            batch_size=1,
            concurrency=workers,
            num_cpus=1,
        )
        total = sum(chunk.rows for chunk in todo)
        for row in results.iter_rows():
            rows += int(row["rows"])
            errors += int(row["errors"])
            elapsed = time.perf_counter() - started
            print(f"\rscored {rows}/{total} documents, {rows / elapsed:.1f} rows/s", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    return ScoreSummary(len(chunks), skipped, rows, errors, round(time.perf_counter() - started, 2))
