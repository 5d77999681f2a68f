"""Fixtures for the API: the app on the real tiny model, in-process and as a live server."""

from __future__ import annotations

import socket
import tempfile
import threading
import time

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.server import uvicorn_config
from serving.settings import Settings


def settings_for(model, **overrides) -> Settings:
    values = {
        "model_dir": str(model),
        "max_body_bytes": 20_000,
        "max_pairs": 5,
        "max_documents": 3,
        "threads": 1,
        "allowed_hosts": ["testserver", "127.0.0.1", "localhost"],  # TestClient sends Host: testserver
        "database_url": f"sqlite:///{tempfile.mkdtemp(prefix='stanceline-db-')}/stanceline.db",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def client(tiny_model):
    with TestClient(create_app(settings_for(tiny_model))) as test_client:
        yield test_client


def start_server(settings: Settings) -> tuple[str, uvicorn.Server, threading.Thread]:
    """The app served as `stanceline serve` does (guarded protocol, limits) on a free localhost port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(create_app(settings), settings, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return url, server, thread
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become healthy")


@pytest.fixture(scope="module")
def live_server(tiny_model):
    """The app served by uvicorn on a free localhost port, for concurrency and browser tests."""
    url, server, thread = start_server(settings_for(tiny_model, max_body_bytes=2_000_000, access_log=False))
    yield url
    server.should_exit = True
    thread.join(timeout=10)
