"""Service settings, read once from the environment (prefix STANCELINE_) or a `.env` file."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
from functools import cached_property
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from training.backends import BACKENDS

LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1"]


def _split_list(value: object) -> object:
    """A list setting from the environment: a JSON list (`["a","b"]`) or a comma list (`a,b`)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not a valid JSON list: {error.msg}") from error
        if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
            raise ValueError("a JSON list of strings is expected")
        return [item.strip() for item in parsed if item.strip()]
    return [item.strip() for item in text.split(",") if item.strip()]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Every knob of the service. Example: `STANCELINE_MAX_PAIRS=100 stanceline serve`."""

    model_config = SettingsConfigDict(env_prefix="STANCELINE_", env_file=".env", extra="ignore")

    model_dir: str = Field("models/current", description="trained model folder to serve")
    backend: str = Field(
        "auto",
        description="auto (onnx on a CPU when the float32 export passed its check, else torch), torch, onnx (float32) "
        "or int8 (opt-in; one window per call, so answers do not depend on the batch)",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = Field(2_000_000, gt=0, description="larger request bodies get 413 before they are parsed")
    max_text_chars: int = Field(200_000, gt=0, description="longest text accepted in one document")
    max_pairs: int = Field(64, gt=0, description="most pairs in one document")
    max_documents: int = Field(64, gt=0, description="most documents in one batch request")
    batch_size: int = Field(
        16,
        gt=0,
        description=(
            "model windows per forward pass; a small request waits for at most one call in flight, so "
            "smaller calls bound its latency at a small cost in throughput"
        ),
    )
    batch_wait_ms: float = Field(4.0, ge=0, description="how long the queue waits to fill a batch")
    max_queued_documents: int = Field(512, ge=0, description="documents being planned or waiting for the model before 503")
    max_request_windows: int = Field(
        1024, gt=0, description="most model windows one request may need (summed over a batch's documents); more gets 422"
    )
    max_queued_windows: int = Field(
        2048, ge=0, description="model windows waiting in the queue; a request that would go past it gets 503"
    )
    request_timeout_s: float = Field(30.0, gt=0, description="a request not answered by then gets 503 and leaves the queue")
    read_timeout_s: float = Field(
        10.0, gt=0, description="a client must send a request's headers, and then its body, within this"
    )
    max_header_bytes: int = Field(16_384, gt=0, description="request line and headers larger than this get 431")
    max_connections: int = Field(1024, gt=0, description="open connections before uvicorn refuses new requests with 503")
    threads: int = Field(0, ge=0, description="CPU threads for the model; 0 means one per core")
    access_log: bool = Field(True, description="log one line per request")
    database_url: str = Field(
        "sqlite:///data/stanceline.db",
        description="where stored documents, answers and reviews are kept: a SQLite file or postgresql+psycopg://...",
    )
    store_predictions: bool = Field(
        False, description="keep every predicted document and its answer (a request's `store` overrides this)"
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "when set, requests need Authorization: Bearer <key>; a comma list or a JSON list. An entry "
            "`name:key` names its key (the reviewer of reviews posted with it); a plain key is named "
            "`key-` and the first 8 hex digits of its SHA-256"
        ),
    )
    allowed_hosts: Annotated[list[str] | None, NoDecode] = Field(
        None,
        description="Host header values accepted ('*' any); unset: only loopback names when `host` is loopback, else any",
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}")
        return value

    @field_validator("api_keys", "allowed_hosts", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _split_list(value)

    @model_validator(mode="after")
    def _request_fits_the_queue(self) -> Settings:
        if self.max_request_windows > self.max_queued_windows > 0:
            raise ValueError(
                f"max_request_windows ({self.max_request_windows}) must not exceed max_queued_windows "
                f"({self.max_queued_windows}): such a request could never be admitted"
            )
        return self

    @cached_property
    def named_keys(self) -> dict[str, str]:
        """Each API key and the name that stands for its caller (see `api_keys`); parsed once, not per request."""
        named = {}
        for entry in self.api_keys:
            name, separator, key = entry.partition(":")
            if not separator or not name.strip() or not key:
                name, key = f"key-{hashlib.sha256(entry.encode('utf-8')).hexdigest()[:8]}", entry
            named[key] = name.strip()
        return named

    def cpu_threads(self) -> int:
        return self.threads or os.cpu_count() or 1

    def trusted_hosts(self) -> list[str] | None:
        """Host header values to accept, or None for any. A loopback server answers only loopback names by
        default, so a web page on another origin cannot read it through DNS rebinding."""
        hosts = self.allowed_hosts
        if hosts is None:
            hosts = LOOPBACK_NAMES if is_loopback(self.host) else ["*"]
        return None if "*" in hosts else [host.lower() for host in hosts]
