"""The browser client: serves the static files of clients/web/ at `/`, and mints the page's secret.

The folder is package data beside the `clients` package, found by path without importing any of
clients/ (the server must not depend on its clients). `POST /web/client-secret` is how the page
gets credentials: nothing when the server has no API key; a short-lived client secret for a page
of an allowed origin when `page_client_secrets` is on (anyone who can load the page can then talk
to the model, see docs/clients.md); else 403, and the user pastes a secret minted elsewhere.
Knows nothing of sessions or the model.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles

from server.client_secrets import ClientSecretRequest, ExpiresAfter, mint_answer
from server.cors import OriginPolicy
from server.errors import ErrorCode, error_response

PAGE_SECRET_TTL_S = 60  # the page asks for a fresh one at each connect; it opens one handshake
NO_CACHE = {"Cache-Control": "no-cache"}
# The page loads its own files only and connects back to this server (ws: or wss:).
PAGE_HEADERS = {
    **NO_CACHE,
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; "
                               "img-src 'self' data:; object-src 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
}
router = APIRouter()


def web_folder() -> Path:
    """clients/web/, located from the installed `clients` package's path (not imported)."""
    spec = importlib.util.find_spec("clients")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the clients package (browser client files) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "web"


@router.get("/", include_in_schema=False)
async def page() -> Response:
    return FileResponse(web_folder() / "index.html", headers=PAGE_HEADERS)


@router.post("/web/client-secret", include_in_schema=False)
async def page_client_secret(request: Request) -> Response:
    state = request.app.state.icot
    if not state.auth.enabled:
        return JSONResponse({"value": None}, headers=NO_CACHE)  # the page connects without one
    origin = request.headers.get("origin")
    policy = OriginPolicy(state.settings.allowed_origins)
    if not state.settings.page_client_secrets or origin is None or not policy.allows(
            origin, request.headers.get("host")):
        return error_response(state.metrics, 403, ErrorCode.UNAUTHORIZED,
                              "this server does not mint client secrets for this page: "
                              "paste one minted with the API key (docs/clients.md)")
    body = ClientSecretRequest(expires_after=ExpiresAfter(seconds=PAGE_SECRET_TTL_S))
    return JSONResponse(mint_answer(state.auth.secrets, body), headers=NO_CACHE)


def mount(app: FastAPI) -> None:
    """`GET /` (the page), `/web/…` (its scripts and styles) and the page's secret endpoint."""
    app.include_router(router)
    app.mount("/web", StaticFiles(directory=web_folder()), name="web")
