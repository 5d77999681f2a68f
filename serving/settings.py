"""Service settings, read once from the environment (prefix STANCELINE_) or a `.env` file."""

from __future__ import annotations

import os

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service. Example: `STANCELINE_MAX_PAIRS=100 stanceline serve`."""

    model_config = SettingsConfigDict(env_prefix="STANCELINE_", env_file=".env", extra="ignore")

    model_dir: str = Field("models/current", description="trained model folder to serve")
    backend: str = Field("auto", description="auto (onnx when exported, else torch), torch or onnx")
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = Field(2_000_000, description="larger request bodies get 413 before they are parsed")
    max_text_chars: int = Field(200_000, description="longest text accepted in one document")
    max_pairs: int = Field(64, description="most pairs in one document")
    max_documents: int = Field(64, description="most documents in one batch request")
    batch_size: int = Field(64, description="model windows per forward pass")
    batch_wait_ms: float = Field(4.0, description="how long the queue waits to fill a batch")
    max_queued_documents: int = Field(512, description="documents waiting for the model before 503")
    threads: int = Field(0, description="CPU threads for the model; 0 means one per core")
    access_log: bool = Field(True, description="log one line per request")
    api_keys: list[str] = Field(default_factory=list, description="when set, requests need Authorization: Bearer <key>")

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in ("auto", "torch", "onnx"):
            raise ValueError("backend must be auto, torch or onnx")
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    def cpu_threads(self) -> int:
        return self.threads or os.cpu_count() or 1
