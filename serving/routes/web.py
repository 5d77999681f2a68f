"""GET /: the web page for pasting or uploading an article; GET /trends: stance over time."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent.parent / "static"
PAGE = STATIC / "index.html"
TRENDS_PAGE = STATIC / "trends.html"


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))


@router.get("/trends", response_class=HTMLResponse)
async def trends_view() -> HTMLResponse:
    return HTMLResponse(TRENDS_PAGE.read_text(encoding="utf-8"))
