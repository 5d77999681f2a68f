"""A server killed during a burst of review posts loses none that it acknowledged."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from serving.store import Store

TEXT = "Japan demanded that North Korea halt its missile launches. Russia offered to host talks on the missile issue."
BURST = 200


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: Path, database_url: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "STANCELINE_DATABASE_URL": database_url, "STANCELINE_THREADS": "1", "STANCELINE_ACCESS_LOG": "false"}
    command = [sys.executable, "-m", "stanceline.cli", "serve", "--model", str(model), "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.kill()
    raise RuntimeError("server did not become healthy")


async def burst(url: str, document_id: int, server: subprocess.Popen, kill_after: int) -> list[dict]:
    """Post BURST distinct corrections at once; SIGKILL the server once `kill_after` were acknowledged."""
    acknowledged: list[dict] = []

    async def post(client: httpx.AsyncClient, index: int) -> None:
        body = {
            "document_id": document_id,
            "party": "Russia",
            "issue": "missile launches",
            "stance": ("cooperative", "pressure", "neutral")[index % 3],
            "sentiment": "neutral",
            "evidence": [[59, 87]],
            "reviewer": f"analyst-{index}",
        }
        try:
            response = await client.post(f"{url}/v1/reviews", json=body)
        except httpx.HTTPError:
            return  # in flight when the server died: not acknowledged, so the client knows to retry
        if response.status_code in (200, 201):
            acknowledged.append(response.json())
            if len(acknowledged) == kill_after:
                server.send_signal(signal.SIGKILL)

    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await asyncio.gather(*(post(client, index) for index in range(BURST)))
    return acknowledged


def test_killing_the_server_during_a_burst_of_200_review_posts_loses_none_it_acknowledged(tiny_model, database_url, tmp_path):
    server, url = start_server(tiny_model, database_url, tmp_path / "server.log")
    try:
        document_id = httpx.post(f"{url}/v1/predict", json={"text": TEXT, "store": True}, timeout=60).json()["document_id"]
        acknowledged = asyncio.run(burst(url, document_id, server, kill_after=10))
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == -signal.SIGKILL, "the server was killed mid-burst"
    assert 10 <= len(acknowledged) < BURST, "some posts were acknowledged and some were cut off by the kill"
    print(f"{len(acknowledged)} of {BURST} acknowledged before the kill")
    store = Store(database_url)
    try:
        kept = {review["id"]: review for review in store.reviews(limit=1000)}
    finally:
        store.close()
    for review in acknowledged:
        assert kept.get(review["id"]) == review, f"acknowledged review {review['id']} is missing or changed after the kill"
