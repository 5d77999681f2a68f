"""How `stanceline serve` runs the app under uvicorn, with limits uvicorn lacks: a deadline for a request's
headers and a cap on their size (uvicorn's default parser accepts headers of any size, and any client
that trickles bytes keeps a connection forever)."""

from __future__ import annotations

import asyncio
import json

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.errors import STATUS, error_body
from serving.settings import Settings

REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, which also closes a connection whose request line and headers take
    longer than `read_timeout_s` (408) or exceed `max_header_bytes` (431)."""

    read_timeout_s: float = 10.0
    max_header_bytes: int = 16_384

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.read_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        if self.transport.is_closing():  # refused above: the request must not reach the app
            return
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._refuse(
                "headers_too_large",
                f"request line and headers exceed {self.max_header_bytes} bytes (STANCELINE_MAX_HEADER_BYTES)",
            )

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.cycle is None or self.cycle.response_complete:  # not while an earlier request is answered
            self._refuse("request_timeout", f"request headers not received within {self.read_timeout_s:g} s")

    def _refuse(self, code: str, message: str) -> None:
        if self.transport.is_closing():
            return
        status = STATUS[code]
        payload = json.dumps(error_body(code, message)).encode()
        head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
        self.transport.write(head % (status, REASONS[status], len(payload)) + payload)
        self.transport.close()
        self._disarm()


def uvicorn_config(
    app, settings: Settings, host: str | None = None, port: int | None = None, log_level: str = "info"
) -> uvicorn.Config:
    """The server configuration: connection limit, keep-alive, and the guarded protocol."""
    protocol = type(
        "ConfiguredGuardedHttpProtocol",
        (GuardedHttpProtocol,),
        {"read_timeout_s": settings.read_timeout_s, "max_header_bytes": settings.max_header_bytes},
    )
    return uvicorn.Config(
        app,
        host=host or settings.host,
        port=port or settings.port,
        http=protocol,
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=5,
        log_level=log_level,
        access_log=settings.access_log,
    )
