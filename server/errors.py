"""The server's one error vocabulary: stable error codes, `ProtocolError`, ids, HTTP error bodies.

Both endpoints speak it: realtime `error` events and REST error bodies carry the same `ErrorCode`
values, and the WebSocket handshake is denied with the same JSON body as REST. Knows nothing of
sessions, audio or the model.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from starlette.responses import JSONResponse

from server.metrics import Metrics


class ErrorCode(StrEnum):
    """Stable codes of `error` events (and of REST error bodies); clients may branch on them."""

    INVALID_JSON = "invalid_json"
    UNKNOWN_EVENT = "unknown_event_type"
    MISSING_FIELD = "missing_field"
    INVALID_VALUE = "invalid_value"
    INVALID_BASE64 = "invalid_base64"
    INVALID_AUDIO = "invalid_audio"
    MESSAGE_TOO_LARGE = "message_too_large"
    UNSUPPORTED_FORMAT = "unsupported_audio_format"
    UNSUPPORTED_VALUE = "unsupported_value"
    BUFFER_EMPTY = "input_audio_buffer_commit_empty"
    NO_ACTIVE_RESPONSE = "response_cancel_not_active"
    RESPONSE_ACTIVE = "conversation_already_has_active_response"
    ITEM_NOT_FOUND = "item_not_found"
    ITEM_NOT_EDITABLE = "item_not_editable"
    INVALID_AUDIO_END = "invalid_audio_end_ms"
    TURN_AUDIO_TOO_LONG = "turn_audio_too_long"
    SESSION_AUDIO_LIMIT = "session_audio_limit_exceeded"
    ENGINE_BUSY = "engine_busy"
    SHUTTING_DOWN = "server_shutting_down"
    IDLE_TIMEOUT = "idle_timeout"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"  # REST: no such path
    METHOD_NOT_ALLOWED = "method_not_allowed"  # REST: the path takes another method
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    SERVER_ERROR = "server_error"


SERVER_SIDE_CODES = frozenset({ErrorCode.ENGINE_BUSY, ErrorCode.SHUTTING_DOWN,
                               ErrorCode.SERVER_ERROR})


class ProtocolError(Exception):
    """A client message or request the server refuses; becomes one `error` event."""

    def __init__(self, code: ErrorCode, message: str, *, param: str | None = None,
                 event_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.event_id = event_id


def new_id(prefix: str) -> str:
    """An id like `item_1f3a…`: the prefix says what it names, 24 hex digits make it unique."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def error_response(metrics: Metrics, status: int, code: ErrorCode, message: str, *,
                   retry_after_s: int | None = None) -> JSONResponse:
    """An HTTP error answer `{"error": {"code", "message"}}`, counted in `icot_errors_total`."""
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else {}
    if code is ErrorCode.UNAUTHORIZED:
        headers["WWW-Authenticate"] = "Bearer"
    metrics.errors.labels(code=code.value).inc()
    return JSONResponse({"error": {"code": code.value, "message": message}}, status_code=status,
                        headers=headers)
