"""`make bench`: what users send, served by Stanceline and by the server a user would write instead.

Workloads, each in one run with the servers taking turns:
- **one party**: a news-length sentence with one party, its issue and the party's mention as `spans`,
  at concurrency 1 and 16. One model window a request.
- **sentence, overall only**: the same sentences with `"pairs": []` (Stanceline servers only).
- **article**: a 4,000-character article with pairs detected, at concurrency 1 (Stanceline only).

Servers: (a) anchor, the FastAPI endpoint a user would write by hand: one `transformers` pipeline call
per request on the same model folder and the same input encoding (`describe_target`, `mark_mentions`),
answering the party's stance and sentiment; (b) Stanceline on torch; (c) Stanceline on ONNX float32
(`onnx`, what `auto` serves on a CPU); optionally (d) Stanceline on int8 (`--servers anchor,torch,onnx,int8`).
Each runs in its own process; in each of `--rounds` rounds every server gets every scenario, and each figure
is the median round. The machine's matrix-multiply peak is measured in the same run (a large fp32 GEMM
in torch and an int8 `MatMulInteger` in ONNX Runtime), and each server's windows/s is reported as a
share of the peak of the arithmetic it runs on, beside what its backend reads by itself in this process
(the ceiling for any server on that backend). Results: `reports/bench/<server>.json`, `summary.md`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from pydantic import BaseModel

from training.modeling import load_sequence_model
from training.windows import describe_target, mark_mentions

PARTY_SENTENCES = [
    # (sentence, party, the party's mention in it, issue): real-length news sentences, one party each
    (
        "Japanese Prime Minister Shinzo Abe told reporters in Vladivostok that Tokyo would keep up maximum pressure on "
        "Pyongyang until it gave up its nuclear and missile programmes.",
        "Japan",
        "Tokyo",
        "North Korea",
    ),
    (
        "The Kremlin said on Friday that it was ready to resume talks on a peace treaty with Japan without preconditions, "
        "a shift that diplomats in both capitals welcomed cautiously.",
        "Russia",
        "The Kremlin",
        "peace treaty",
    ),
    (
        "Brussels threatened on Tuesday to impose new tariffs on Chinese electric vehicles unless Beijing ended the "
        "subsidies that European carmakers say distort the market.",
        "European Union",
        "Brussels",
        "tariffs",
    ),
    (
        "Egypt welcomed the African Union's offer to mediate the long-running dispute over the Nile dam and said its "
        "negotiators would attend the next round in Kinshasa.",
        "Egypt",
        "Egypt",
        "Nile dam",
    ),
    (
        "Washington warned Caracas that the oil sanctions lifted last year would return within weeks if the presidential "
        "vote was not free and fair.",
        "United States",
        "Washington",
        "oil sanctions",
    ),
    (
        "India agreed with Pakistan on Monday to reopen the border crossing for pilgrims, the first such step since the "
        "two countries recalled their envoys.",
        "India",
        "India",
        "border crossing",
    ),
    (
        "The IAEA demanded full and immediate access to the enrichment site near Isfahan, saying its inspectors had been "
        "kept out for three months.",
        "IAEA",
        "The IAEA",
        "inspections",
    ),
    (
        "Brazil pledged at the summit to halve deforestation in the Amazon by the end of the decade and invited its "
        "neighbours to join a common monitoring fund.",
        "Brazil",
        "Brazil",
        "deforestation",
    ),
]


def party_request(sentence: str, party: str, mention: str, issue: str) -> dict:
    """The request a user sends for one party of one sentence, its mention pinned by offsets."""
    start = sentence.index(mention)
    return {"text": sentence, "pairs": [{"party": party, "issue": issue, "spans": [[start, start + len(mention)]]}]}


ARTICLE_PARAGRAPHS = [
    "Japanese Prime Minister Shinzo Abe and Russian President Vladimir Putin met in Vladivostok on Thursday for talks that "
    "covered a peace treaty, joint economic projects on the disputed islands and North Korea's weapons programmes.",
    "Abe told reporters that Japan would keep up maximum pressure on Pyongyang until it abandoned its nuclear and missile "
    "programmes, and he urged Moscow to enforce United Nations sanctions in full.",
    "Putin struck a different note. The Kremlin leader said the crisis could only be resolved in a political and diplomatic "
    "manner and warned that more sanctions would push North Korea into a corner.",
    "On the islands, the two sides agreed to set up a working group on joint fishing and tourism, a step Tokyo described as "
    "a foundation for a treaty. Russian officials cautioned that sovereignty was not on the table.",
    "China, which was not represented at the meeting, has called for a freeze of North Korean tests in exchange for a halt "
    "to United States military exercises in the region. Washington rejected that proposal last month.",
    "South Korea's foreign ministry welcomed the summit and said Seoul stood ready to work with Tokyo and Moscow on energy "
    "links across the peninsula once tensions eased.",
    "Analysts in Tokyo said the meeting produced goodwill but little substance. Critics in the Japanese parliament accused "
    "the government of offering economic help to Russia without securing any movement on the territorial dispute.",
    "Russia's foreign minister Sergei Lavrov said the next round of talks would take place in Tokyo in the spring and that "
    "both countries had instructed their diplomats to speed up work on the treaty.",
]


def build_article(target_chars: int = 4000) -> str:
    text, index = "", 0
    while len(text) < target_chars:
        text += ("\n\n" if text else "") + ARTICLE_PARAGRAPHS[index % len(ARTICLE_PARAGRAPHS)]
        index += 1
    return text[:target_chars].rsplit(". ", 1)[0] + "."


ANCHOR_APP = "benchmarks.http_bench:anchor_app"


class AnchorPair(BaseModel):
    party: str
    issue: str | None = None
    spans: list[tuple[int, int]]


class AnchorBody(BaseModel):
    text: str
    pairs: list[AnchorPair]


def anchor_app():
    """The hand-written baseline: one `transformers` pipeline call per pair, nothing batched or shared."""
    from fastapi import FastAPI
    from transformers import pipeline

    folder = os.environ["STANCELINE_MODEL_DIR"]
    classifier = pipeline("text-classification", model=load_sequence_model(folder), tokenizer=folder, top_k=None, device="cpu")
    app = FastAPI()

    @app.post("/v1/predict")
    def predict(body: AnchorBody) -> dict:
        results = []
        for pair in body.pairs:
            marked = mark_mentions(body.text, (0, len(body.text)), [tuple(span) for span in pair.spans])
            rows = classifier({"text": describe_target(pair.party, pair.issue), "text_pair": marked}, truncation=True)
            scores = {item["label"]: item["score"] for item in rows}
            stance = max((k for k in scores if k.startswith("stance:")), key=scores.get)
            sentiment = max((k for k in scores if k.startswith("sentiment:")), key=scores.get)
            results.append({"stance": stance.split(":")[1], "sentiment": sentiment.split(":")[1]})
        return {"results": results}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(kind: str, model: str, port: int) -> subprocess.Popen:
    # No access log on any server: the anchor has none, and a log line per request is not what is measured.
    env = {**os.environ, "STANCELINE_MODEL_DIR": model, "TOKENIZERS_PARALLELISM": "false", "STANCELINE_ACCESS_LOG": "false"}
    if kind == "anchor":
        command = [sys.executable, "-m", "uvicorn", "--factory", ANCHOR_APP, "--port", str(port), "--log-level", "warning"]
    else:
        command = [sys.executable, "-m", "stanceline.cli", "serve", "--port", str(port), "--model", model, "--backend", kind]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"{kind} server did not become healthy")


class KeepAliveConnection:
    """A minimal HTTP/1.1 client on one keep-alive connection. The load generator shares this machine's
    two cores with the server it measures, so it should spend as little CPU as possible; a full client
    such as httpx spent about 2 ms of CPU a request here (0.07 ms for this one), charged to the server."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        """POST a JSON body, read the whole response, return its status code."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {key.strip().lower(): value.strip() for key, value in (line.split(":", 1) for line in lines[1:] if ":" in line)}
        length = headers.get("content-length")
        if length is None:
            raise RuntimeError(f"response to {path} has no Content-Length; this client reads only sized bodies")
        await self.reader.readexactly(int(length))
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def load(url: str, bodies: list[dict], concurrency: int, duration: float, max_requests: int) -> dict:
    """Send bodies round-robin from `concurrency` connections for `duration` s or `max_requests` requests."""
    parsed = httpx.URL(url)
    payloads = [json.dumps(body).encode() for body in bodies]
    latencies: list[float] = []
    errors = 0
    counter = 0
    stop_at = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal counter, errors
        connection = KeepAliveConnection(parsed.host, parsed.port)
        try:
            while time.perf_counter() < stop_at and counter < max_requests:
                payload = payloads[counter % len(payloads)]
                counter += 1
                started = time.perf_counter()
                if await connection.post(parsed.path, payload) != 200:
                    errors += 1
                latencies.append(time.perf_counter() - started)
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    elapsed = time.perf_counter() - started
    latencies.sort()
    if errors:
        raise RuntimeError(f"{url}: {errors} of {len(latencies)} requests failed; no figures reported")
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "rps": round(len(latencies) / elapsed, 2),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p95_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 1),
    }


def party_bodies() -> list[dict]:
    return [party_request(*row) for row in PARTY_SENTENCES]


def overall_bodies() -> list[dict]:
    return [{"text": sentence, "pairs": []} for sentence, *_ in PARTY_SENTENCES]


def measured_peaks(threads: int, size: int = 1024, seconds: float = 3.0) -> dict[str, float]:
    """GFLOP/s (GOP/s for int8) of a square matrix product on this machine: fp32 in torch, int8 in ONNX
    Runtime's `MatMulInteger` (what the int8 model's matrix products run on), each on `threads` threads."""
    import numpy as np
    import onnxruntime
    import torch
    from onnx import TensorProto, helper

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    fp32 = _ops_per_second(lambda: torch.matmul(a, b), 2 * size**3, seconds)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])],
        "gemm",
        [
            helper.make_tensor_value_info("a", TensorProto.UINT8, [size, size]),
            helper.make_tensor_value_info("b", TensorProto.INT8, [size, size]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [size, size])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {
        "a": np.random.randint(0, 255, (size, size), dtype=np.uint8),
        "b": np.random.randint(-127, 127, (size, size), dtype=np.int8),
    }
    int8 = _ops_per_second(lambda: session.run(None, feed), 2 * size**3, seconds)
    return {"fp32_gflops": round(fp32 / 1e9, 1), "int8_gops": round(int8 / 1e9, 1), "threads": threads, "size": size}


def _ops_per_second(step, operations: int, seconds: float) -> float:
    step()  # warm-up: thread pools, first allocation
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        count += 1
    return count * operations / (time.perf_counter() - started)


def model_alone(model: str, backend: str, threads: int, seconds: float = 5.0) -> float:
    """Windows/s of `backend` by itself on the one-party windows, in batches of 16 (what 16 concurrent
    one-party requests give the model at most), in this process with nothing else running: no server on
    this backend can answer more one-party requests per second on this machine."""
    from serving.schemas import PredictRequest
    from training.predictor import Predictor

    predictor = Predictor.from_folder(model, backend=backend, threads=threads)
    documents = [PredictRequest(**body).to_document() for body in party_bodies()]  # as the server reads them
    windows = [(m.target, m.window_text) for document in documents for m in predictor.plan(document).model_inputs]
    batch = (windows * 16)[:16]
    return round(_ops_per_second(lambda: predictor.classifier.predict(batch), len(batch), seconds), 1)


def tokens_per_party_request(model: str) -> float:
    """Tokens of the one window a one-party request reads (target and marked sentence)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    lengths = []
    for body in party_bodies():
        text, pair = body["text"], body["pairs"][0]
        marked = mark_mentions(text, (0, len(text)), [tuple(pair["spans"][0])])
        lengths.append(len(tokenizer(describe_target(pair["party"], pair["issue"]), marked)["input_ids"]))
    return sum(lengths) / len(lengths)


def model_flops_per_token(model: str, tokens: int = 48) -> float:
    """Forward FLOPs per token: 2 x non-embedding weights + attention scores over `tokens` positions."""
    config = json.loads((Path(model) / "config.json").read_text())
    hidden, layers, inter = config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]
    weights = layers * (4 * hidden * hidden + 2 * hidden * inter)
    return 2 * weights + layers * 4 * hidden * tokens


def median_round(rounds: list[dict]) -> dict:
    """The round with the median requests per second (the lower middle one for an even count), so
    a scenario's rps and latencies come from one real run rather than being mixed across runs."""
    ordered = sorted(rounds, key=lambda result: result["rps"])
    return ordered[(len(ordered) - 1) // 2]


def run_scenarios(url: str, kind: str, article: str, duration: float, article_requests: int) -> dict:
    """One round of every scenario against one running server."""
    result = {
        "party_c1": asyncio.run(load(url, party_bodies(), 1, duration, 10_000)),
        "party_c16": asyncio.run(load(url, party_bodies(), 16, duration, 20_000)),
    }
    if kind != "anchor":
        result["overall_c16"] = asyncio.run(load(url, overall_bodies(), 16, duration, 20_000))
        result["article_4000_c1"] = asyncio.run(load(url, [{"text": article}], 1, 120.0, article_requests))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/current")
    parser.add_argument("--output", default="reports/bench")
    parser.add_argument("--servers", default="anchor,torch,onnx")
    parser.add_argument("--duration", type=float, default=12.0, help="seconds per sentence scenario and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all servers; each figure is the median round")
    parser.add_argument("--article-requests", type=int, default=20, help="article requests per round")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0 or args.article_requests < 1:
        parser.error("--rounds and --article-requests must be at least 1 and --duration positive")
    model = str(Path(args.model).resolve())
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    article = build_article()
    peaks = measured_peaks(threads=os.cpu_count() or 1)
    tokens = tokens_per_party_request(model)
    flops_token = model_flops_per_token(model, int(tokens))
    kinds = args.servers.split(",")
    alone = {kind: model_alone(model, kind, os.cpu_count() or 1) for kind in kinds if kind != "anchor"}
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    rounds: dict[str, list[dict]] = {kind: [] for kind in kinds}
    try:
        for kind in kinds:
            port = free_port()
            servers[kind] = (start_server(kind, model, port), f"http://127.0.0.1:{port}/v1/predict")
            asyncio.run(load(servers[kind][1], party_bodies(), 4, 3.0, 50))  # warm-up
        # Servers take turns within each round, so a slow spell of this shared machine falls on all of them.
        for number in range(args.rounds):
            for kind in kinds:
                rounds[kind].append(run_scenarios(servers[kind][1], kind, article, args.duration, args.article_requests))
                print(f"round {number + 1}/{args.rounds} {kind}: {json.dumps(rounds[kind][-1])}", flush=True)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)
    rows = []
    for kind in kinds:
        result: dict = {
            "server": kind,
            "machine": {
                "cpus": os.cpu_count(),
                "processor": platform.processor() or platform.machine(),
                "measured_peaks": peaks,
            },
            "rounds": rounds[kind],
        }
        for scenario in rounds[kind][0]:
            result[scenario] = median_round([one[scenario] for one in rounds[kind]])
        if kind != "anchor":
            result["article_chars"] = len(article)
        achieved = result["party_c16"]["rps"] * tokens * flops_token / 1e9  # one window a request
        peak = peaks["int8_gops"] if kind == "int8" else peaks["fp32_gflops"]
        result["compute_share"] = {
            "windows_per_second": result["party_c16"]["rps"],
            "flops_per_token": flops_token,
            "tokens_per_window": round(tokens, 1),
            "achieved_gflops": round(achieved, 2),
            "peak": "int8 MatMulInteger" if kind == "int8" else "fp32 matmul",
            "share_of_peak": round(achieved / peak, 4),
        }
        if kind in alone:
            result["model_alone_windows_per_second"] = alone[kind]
        (output / f"{kind}.json").write_text(json.dumps(result, indent=2) + "\n")
        rows.append(result)
    write_summary(rows, output / "summary.md")
    print((output / "summary.md").read_text())
    return 0


def write_summary(rows: list[dict], path: Path) -> None:
    """The README table; with an anchor row, each server's one-party c=16 rps is also a multiple of it."""
    anchor = next((row["party_c16"]["rps"] for row in rows if row["server"] == "anchor"), None)
    lines = [
        "| server | one party c=1 rps | p50 / p95 ms | one party c=16 rps (windows/s) | p50 / p95 ms | x anchor (c=16) | "
        "sentence, overall only, c=16 rps | 4,000-char article p50 / p95 ms | share of measured peak (c=16) | "
        "model alone, windows/s (x anchor) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        c1, c16, art, overall = row["party_c1"], row["party_c16"], row.get("article_4000_c1"), row.get("overall_c16")
        article = f"{art['p50_ms']} / {art['p95_ms']}" if art else "n/a"
        ratio = f"{c16['rps'] / anchor:.1f}" if anchor else "n/a"
        share = row["compute_share"]
        alone = row.get("model_alone_windows_per_second")
        bound = "n/a" if alone is None else f"{alone}" + (f" ({alone / anchor:.1f})" if anchor else "")
        lines.append(
            f"| {row['server']} | {c1['rps']} | {c1['p50_ms']} / {c1['p95_ms']} | {c16['rps']} | {c16['p50_ms']} / {c16['p95_ms']} "
            f"| {ratio} | {overall['rps'] if overall else 'n/a'} | {article} | {share['share_of_peak']:.1%} of {share['peak']} | {bound} |"
        )
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
