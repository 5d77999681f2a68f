"""`stanceline score` on a local Ray: same answers as `stanceline predict`, Parquet out, resumable."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serving.predict_files import predict_file
from serving.score import expand_inputs, plan_chunks

ARTICLES = [
    "Japan demanded that North Korea halt its missile launches.",
    "Russia offered to host talks on the missile issue.",
    "China urged restraint over Taiwan and warned the United States against arms sales.",
    "Iran rejected the sanctions imposed by the European Union.",
    "France said it remained open to talks with Tehran.",
]


def documents(count: int) -> list[str]:
    """Predict bodies with ids, one in nine pinned to a pair, and a few bad lines among them."""
    lines = []
    for index in range(count):
        text = f"{ARTICLES[index % len(ARTICLES)]} Report {index}."
        body: dict = {"id": f"doc-{index}" if index % 2 else index, "text": text}
        if index % 9 == 0:
            body["pairs"] = [{"party": "Japan", "issue": "North Korea"}]
        lines.append(json.dumps(body))
        if index % 13 == 5:
            lines.append('{"id": "broken", "text": ')  # bad JSON
        if index % 17 == 3:
            lines.append("")  # blank lines are skipped, but counted
    return lines


def read_rows(folder: Path) -> list[dict]:
    import pyarrow.parquet as pq

    rows = []
    for path in sorted(folder.glob("*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return sorted(rows, key=lambda row: row["line"])


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' to run the scoring tests")
    try:
        ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    except Exception as error:  # noqa: BLE001 - any failure to start means this machine cannot run Ray
        pytest.skip(f"Ray cannot start on this machine: {type(error).__name__}: {error}")
    yield ray
    ray.shutdown()


def same_answer(scored: dict, predicted: dict) -> None:
    """Labels, pairs and evidence exactly; scores to the fourth decimal they are rounded to (two processes
    may sum in another order)."""
    assert scored.keys() == predicted.keys()
    if "error" in predicted:
        assert scored == predicted
        return
    for got, want in zip(
        [scored.get("overall")] + scored["results"], [predicted.get("overall")] + predicted["results"], strict=True
    ):
        if want is None:
            assert got is None
            continue
        for task in ("stance", "sentiment"):
            assert got[task]["label"] == want[task]["label"]
            for label, value in want[task]["scores"].items():
                assert got[task]["scores"][label] == pytest.approx(value, abs=2e-4)
        assert [(e["start"], e["end"]) for e in got.get("evidence", [])] == [
            (e["start"], e["end"]) for e in want.get("evidence", [])
        ]


def test_scoring_answers_as_predict_does_line_for_line_and_resumes(ray_local, tiny_model, tmp_path):
    from serving.score import score

    source = tmp_path / "feed.jsonl"
    source.write_text("\n".join(documents(60)) + "\n")
    predict_file(source, tmp_path / "predicted.jsonl", str(tiny_model), backend="torch")
    predicted = [json.loads(line) for line in (tmp_path / "predicted.jsonl").read_text().splitlines()]

    output = tmp_path / "scored"
    summary = score([str(source)], str(output), str(tiny_model), backend="torch", workers=2, rows_per_chunk=8)
    rows = read_rows(output)
    assert summary.rows == len(rows) == len(predicted) and summary.skipped == 0
    assert summary.errors == sum("error" in answer for answer in predicted) > 0
    for row, answer in zip(rows, predicted, strict=True):
        same_answer(json.loads(row["answer"]), answer)
        assert row["id"] == (None if answer.get("id") is None else str(answer["id"]))
        assert (row["error_code"] is None) == ("error" not in answer)
        if row["error_code"] is None:
            assert row["pairs"] == len(answer["results"]) and row["model"].startswith("tiny@")

    files = sorted(output.glob("*.parquet"))
    assert len(files) == summary.chunks == -(-summary.rows // 8)
    files[3].unlink()
    kept = {path: path.stat().st_mtime_ns for path in files if path.exists()}
    again = score([str(source)], str(output), str(tiny_model), backend="torch", workers=1, rows_per_chunk=8)
    assert (again.skipped, again.rows) == (summary.chunks - 1, 8), "only the missing chunk is scored again"
    assert {path: path.stat().st_mtime_ns for path in kept} == kept, "written chunks are not redone"
    assert [row["line"] for row in read_rows(output)] == [row["line"] for row in rows]
    with pytest.raises(ValueError, match="--batch-size 8"):
        score([str(source)], str(output), str(tiny_model), backend="torch", rows_per_chunk=10)


def test_parquet_input_gives_the_same_answers(ray_local, tiny_model, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from serving.score import score

    bodies = [json.loads(line) for line in documents(12) if line.startswith('{"id"') and line.endswith("}")]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(body) for body in bodies) + "\n")
    predict_file(source, tmp_path / "predicted.jsonl", str(tiny_model), backend="torch")
    predicted = [json.loads(line) for line in (tmp_path / "predicted.jsonl").read_text().splitlines()]
    rows = [{**body, "id": str(body["id"])} for body in bodies]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    score([str(tmp_path / "in.parquet")], str(tmp_path / "out"), str(tiny_model), backend="torch", rows_per_chunk=5)
    scored = read_rows(tmp_path / "out")
    assert [row["line"] for row in scored] == list(range(1, len(bodies) + 1))
    for row, answer in zip(scored, predicted, strict=True):
        same_answer(json.loads(row["answer"]), {**answer, "id": str(answer["id"])})


def test_inputs_are_files_folders_or_globs_and_a_missing_one_is_named(tmp_path):
    (tmp_path / "feed").mkdir()
    for name in ("a.jsonl", "b.parquet", "notes.txt"):
        (tmp_path / "feed" / name).write_text("")
    assert [Path(path).name for _, path in expand_inputs([str(tmp_path / "feed")])] == ["a.jsonl", "b.parquet"]
    assert [Path(path).name for _, path in expand_inputs([str(tmp_path / "feed" / "*.jsonl")])] == ["a.jsonl"]
    with pytest.raises(FileNotFoundError, match="missing.jsonl does not exist"):
        expand_inputs([str(tmp_path / "missing.jsonl")])
    with pytest.raises(FileNotFoundError, match="holds no .jsonl"):
        expand_inputs([str(tmp_path / "feed" / "*.csv")])


def test_chunks_cut_a_jsonl_file_by_documents_with_exact_byte_ranges(tmp_path):
    source = tmp_path / "feed.jsonl"
    lines = documents(20)
    source.write_text("\n".join(lines) + "\n")
    chunks = plan_chunks([str(source)], str(tmp_path / "out"), rows_per_chunk=6)
    data = source.read_bytes()
    assert sum(chunk.rows for chunk in chunks) == sum(1 for line in lines if line.strip())
    assert b"".join(data[chunk.start : chunk.end] for chunk in chunks) == data
    assert len({chunk.output for chunk in chunks}) == len(chunks)


def test_a_score_run_killed_midway_resumes_without_redoing_written_chunks(ray_local, tiny_model, tmp_path):
    source = tmp_path / "feed.jsonl"
    source.write_text("\n".join(documents(240)) + "\n")
    output = tmp_path / "scored"
    command = [sys.executable, "-m", "stanceline.cli", "score", str(source), "--output", str(output)]
    command += ["--model", str(tiny_model), "--backend", "torch", "--batch-size", "10", "--workers", "1"]
    log = tmp_path / "first-run.log"  # a file, not a pipe: Ray's progress lines would fill a pipe and stall the run
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("wb"), start_new_session=True)
    deadline = time.time() + 420
    while time.time() < deadline and len(list(output.glob("*.parquet"))) < 3 and run.poll() is None:
        time.sleep(0.2)
    ended_early = run.poll()
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert ended_early is None, f"the run ended by itself (exit {ended_early}): {log.read_text()[-2000:]}"
    written = {path: path.stat().st_mtime_ns for path in output.glob("*.parquet")}
    assert 3 <= len(written) < 25, "killed with some chunks written and some not"
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    # An actor of the killed run may still finish the chunk it held before Ray reaps it: that chunk is
    # complete, and is skipped too.
    skipped = int(re.search(r"(\d+) already written", finished.stderr).group(1))
    assert len(written) <= skipped < 24
    assert {path: path.stat().st_mtime_ns for path in written} == written, "written chunks are not redone"
    assert not list(output.glob(".tmp-*")), "no partial file is left"
    rows = read_rows(output)
    assert len(rows) == len({row["line"] for row in rows}) == sum(1 for line in documents(240) if line.strip())
