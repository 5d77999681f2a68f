"""The OpenAPI contract checked from outside: schemathesis, every check, the stateful phase included.

Schemathesis generates requests from /openapi.json (valid ones, invalid ones, and chains that feed one
answer's fields into the next request through the schema's links) and checks that each answer matches
the schema: what the schema calls valid is accepted, what it calls invalid is refused, no 5xx, every
documented shape. `schemathesis.toml` in the repository root says which statuses a valid request may get.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serving.conftest import settings_for, start_server

ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = 60


@pytest.mark.skipif(shutil.which("schemathesis") is None and sys.version_info < (3, 10), reason="schemathesis missing")
def test_schemathesis_finds_no_mismatch_in_any_phase(tiny_model, tmp_path):
    pytest.importorskip("schemathesis")
    settings = settings_for(
        tiny_model,
        store_predictions=True,
        access_log=False,
        max_body_bytes=200_000,
        database_url=f"sqlite:///{tmp_path / 'contract.db'}",
    )
    url, server, thread = start_server(settings)
    try:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{url}/openapi.json",
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                "20261207",
                "--request-timeout",
                "30",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "Stateful" in run.stdout, "the stateful phase ran"
