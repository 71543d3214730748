"""JSON error bodies for HTTP answers: `{"error": {"code", "message"}}` with a stable code.

Shared by the REST endpoint and the WebSocket handshake (denied with an HTTP response). Codes
are the same `ErrorCode` values the realtime `error` events carry; each answer is counted.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from server.metrics import Metrics
from server.realtime.protocol import ErrorCode


def error_response(metrics: Metrics, status: int, code: ErrorCode, message: str, *,
                   retry_after_s: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else {}
    if code is ErrorCode.UNAUTHORIZED:
        headers["WWW-Authenticate"] = "Bearer"
    metrics.errors.labels(code=code.value).inc()
    return JSONResponse({"error": {"code": code.value, "message": message}}, status_code=status,
                        headers=headers)
