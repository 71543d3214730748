"""HTTP errors the framework raises itself (no such path, wrong method) in the server's one shape.

Starlette answers an unknown path or method with `{"detail": …}`; every other HTTP error of this
server is `{"error": {"code", "message"}}` (server/errors.py). `install` makes these the same.
Knows no endpoint.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from server.errors import ErrorCode, error_response
from server.metrics import Metrics

_CODES = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}


def install(app: FastAPI, metrics: Metrics) -> None:
    """Answer framework-raised HTTP errors with the server's error body (Allow kept on 405)."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = _CODES.get(exc.status_code, ErrorCode.INVALID_VALUE)
        response = error_response(metrics, exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response
