"""One error type for the service, and the one place that maps errors to HTTP status codes."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.store import StoreError
from training.predictor import PredictionInputError

logger = logging.getLogger(__name__)

STATUS = {
    "bad_json": 400,
    "host_not_allowed": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "payload_too_large": 413,
    "invalid_request": 422,
    "too_many_items": 422,
    "headers_too_large": 431,
    "internal": 500,
    "overloaded": 503,
    "timeout": 503,
    "not_ready": 503,
    "storage_unavailable": 503,
}
DEFAULT_RETRY_AFTER_S = 1


class ServiceError(Exception):
    """Anything the service refuses or fails, with a stable machine-readable code."""

    def __init__(self, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        """Seconds a client should wait before retrying (sent as Retry-After with every 503)."""

    @property
    def status(self) -> int:
        return STATUS[self.code]


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def error_headers(error: ServiceError) -> dict[str, str]:
    """Headers that tell a client what to do next: how to authenticate, when to retry."""
    headers = {}
    if error.code == "unauthorized":
        headers["WWW-Authenticate"] = "Bearer"
    if error.status == 503:
        headers["Retry-After"] = str(max(1, error.retry_after or DEFAULT_RETRY_AFTER_S))
    return headers


def error_response(error: ServiceError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        error_body(error.code, error.message), status_code=error.status, headers={**error_headers(error), **(headers or {})}
    )


def describe_validation(errors: list[dict]) -> str:
    """Readable summary of pydantic errors: `body.pairs.0.party: Field required; ...`."""
    parts = []
    for error in errors[:10]:
        location = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def allowed_methods(request: Request) -> str:
    """Every method the OpenAPI documents at the request's path ('' for an undocumented path). The
    framework's own Allow header names only the first route that matched the path (POST of /v1/reviews,
    not its GET), which contradicts the schema."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = "[^/]+".join(re.escape(part) for part in re.split(r"\{[^/}]+\}", template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {method.upper() for method in operations if method in HTTP_METHODS}
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(_: Request, error: ServiceError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(PredictionInputError)
    async def _prediction_input(_: Request, error: PredictionInputError) -> JSONResponse:
        return error_response(ServiceError("invalid_request", str(error)))

    @app.exception_handler(StoreError)
    async def _store(_: Request, error: StoreError) -> JSONResponse:
        return error_response(ServiceError(error.code, error.message))

    @app.exception_handler(OperationalError)
    async def _database_down(_: Request, error: OperationalError) -> JSONResponse:
        logger.warning("database unavailable: %s", str(error.orig).splitlines()[0] if error.orig else error)
        return error_response(ServiceError("storage_unavailable", "the database is unavailable; retry later", retry_after=5))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = error.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(ServiceError("bad_json", "request body is not valid JSON: " + describe_validation(errors)))
        return error_response(ServiceError("invalid_request", describe_validation(errors)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # Raised by the framework itself: unknown route, wrong method, and a body FastAPI could not
        # decode (not UTF-8, not JSON), which is the documented bad_json.
        code = {400: "bad_json", 404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "invalid_request")
        message = str(error.detail)
        headers = dict(error.headers or {})
        if code == "bad_json":
            message = f"request body is not valid UTF-8 JSON ({message})"
        elif code == "method_not_allowed":
            headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")
            message = f"method not allowed; allowed: {headers['Allow'] or 'see /docs'}"
        return JSONResponse(error_body(code, message), status_code=error.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return error_response(ServiceError("internal", f"internal error: {type(error).__name__}"))
