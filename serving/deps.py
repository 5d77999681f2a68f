"""Dependencies injected into route handlers.

They are `async def` although none awaits anything: FastAPI runs a plain `def` dependency in a worker
thread, and on the predict path those thread hops cost more of the event loop than the request itself
(a py-spy profile at concurrency 16 found 28% of the loop's busy time waiting on the thread limiter).
They must stay free of blocking calls."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serving.errors import ServiceError
from serving.request_queue import BatchQueue
from serving.settings import Settings
from serving.store import ANONYMOUS, LazyStore
from training.predictor import Predictor


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_queue(request: Request) -> BatchQueue:
    queue = getattr(request.app.state, "queue", None)
    if queue is None:
        raise ServiceError("not_ready", "the model is still loading")
    return queue


async def get_predictor(request: Request) -> Predictor:
    predictor = getattr(request.app.state, "predictor", None)
    if predictor is None:
        raise ServiceError("not_ready", "the model is still loading")
    return predictor


async def get_store(request: Request) -> LazyStore:
    """The review store; it opens (and migrates) the database on first use, in the caller's thread."""
    return request.app.state.store


BEARER = HTTPBearer(auto_error=False, description="an API key from STANCELINE_API_KEYS, when the server sets any")
"""Declares the bearer scheme in the OpenAPI; the check itself is `require_api_key`."""


def matching_key_name(token: str, named_keys: dict[str, str]) -> str | None:
    """The name of the key equal to `token`, or None. Constant-time comparison as bytes, over every key.
    Header values arrive decoded as latin-1, so `token` is encoded back to the bytes the client sent; keys
    are compared as UTF-8. (`hmac.compare_digest` on str raises TypeError for non-ASCII text, which was a 500.)"""
    sent = token.encode("latin-1", errors="replace")
    found = None
    for key, name in named_keys.items():
        if hmac.compare_digest(sent, key.encode("utf-8")):
            found = name
    return found


async def require_api_key(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    _: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
) -> str:
    """When API keys are configured, the request must carry `Authorization: Bearer <key>`. Returns the
    caller's name: the key's name, or `anonymous` when the server has no keys."""
    if not settings.api_keys:
        return ANONYMOUS
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    name = matching_key_name(token.strip(), settings.named_keys) if scheme.lower() == "bearer" else None
    if name is None:
        raise ServiceError("unauthorized", "missing or invalid API key: send Authorization: Bearer <key>")
    return name


SettingsDep = Annotated[Settings, Depends(get_settings)]
QueueDep = Annotated[BatchQueue, Depends(get_queue)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
StoreDep = Annotated[LazyStore, Depends(get_store)]
AuthDep = Depends(require_api_key)
CallerDep = Annotated[str, Depends(require_api_key)]
"""The caller's name (its API key's name, or `anonymous`); FastAPI runs the check once per request."""
