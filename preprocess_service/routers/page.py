"""``GET /``: a small page to try the model (paste text; label, calibrated bars, abstain, highlighted
terms). One static HTML file with its script and styles inline: no build step, nothing from a CDN.

When API keys are configured the page is behind them too. A browser cannot send a bearer token on a
plain navigation, so the page answers 401 with an HTTP Basic challenge: the browser prompts, and then
sends the key (as the Basic password) with the page's own API calls, which accept it."""

from __future__ import annotations

from importlib import resources
from typing import ClassVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from preprocess_service.deps import require_api_key
from preprocess_service.errors import Unauthorized
from preprocess_service.schemas import ERRORS

PAGE = resources.files("preprocess_service").joinpath("static/index.html").read_bytes()


class PageUnauthorized(Unauthorized):
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": 'Basic realm="text classifier"'}


async def require_key_for_page(request: Request) -> None:
    try:
        await require_api_key(request)
    except Unauthorized as exc:
        raise PageUnauthorized("this page needs the API key: give it as the password") from exc


router = APIRouter(tags=["page"], dependencies=[Depends(require_key_for_page)], responses={401: ERRORS[401]})


@router.get("/", response_class=HTMLResponse, summary="A page to try the model in a browser")
async def page() -> HTMLResponse:
    # the page's API calls carry the key; no other site may frame it or read it
    return HTMLResponse(
        PAGE,
        headers={
            "Cache-Control": "no-cache",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
            "style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        },
    )
