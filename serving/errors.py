"""One error type for the service, and the one place that maps errors to HTTP status codes."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from training.predictor import PredictionInputError

logger = logging.getLogger(__name__)

STATUS = {
    "bad_json": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "payload_too_large": 413,
    "invalid_request": 422,
    "too_many_items": 422,
    "overloaded": 503,
    "not_ready": 503,
    "internal": 500,
}


class ServiceError(Exception):
    """Anything the service refuses or fails, with a stable machine-readable code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return STATUS[self.code]


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def error_response(error: ServiceError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.code == "unauthorized" else None
    return JSONResponse(error_body(error.code, error.message), status_code=error.status, headers=headers)


def describe_validation(errors: list[dict]) -> str:
    """Readable summary of pydantic errors: `body.pairs.0.party: Field required; ...`."""
    parts = []
    for error in errors[:10]:
        location = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(_: Request, error: ServiceError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(PredictionInputError)
    async def _prediction_input(_: Request, error: PredictionInputError) -> JSONResponse:
        return error_response(ServiceError("invalid_request", str(error)))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = error.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(ServiceError("bad_json", "request body is not valid JSON: " + describe_validation(errors)))
        return error_response(ServiceError("invalid_request", describe_validation(errors)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "invalid_request")
        return JSONResponse(error_body(code, str(error.detail)), status_code=error.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return error_response(ServiceError("internal", f"internal error: {type(error).__name__}"))
