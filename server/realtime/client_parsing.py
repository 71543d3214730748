"""Parse one WebSocket text message into a client event, or say exactly what is wrong with it.

Every way a message can be bad (too large, not JSON, unknown type, a field pydantic refuses)
becomes a `ProtocolError` with a stable `ErrorCode` and a dotted `param` path, so the session
answers with an `error` event and goes on. The event models themselves live in client_events.py.
"""

from __future__ import annotations

import json

from pydantic import TypeAdapter, ValidationError

from server.errors import ErrorCode, ProtocolError
from server.realtime.client_events import CLIENT_EVENT_TYPES, ClientEvent

_CLIENT_EVENT = TypeAdapter(ClientEvent)
_CUSTOM_CODES = {code.value: code for code in (
    ErrorCode.INVALID_BASE64, ErrorCode.INVALID_AUDIO, ErrorCode.UNSUPPORTED_FORMAT,
    ErrorCode.UNSUPPORTED_VALUE)}


def parse_client_event(message: str | bytes, *, max_bytes: int) -> ClientEvent:
    """Parse one WebSocket text message; raise `ProtocolError` naming what is wrong.

    The size is checked first so an over-size message is never decoded.
    """
    size = len(message.encode() if isinstance(message, str) else message)
    if size > max_bytes:
        raise ProtocolError(ErrorCode.MESSAGE_TOO_LARGE,
                            f"message of {size} bytes is over the limit of {max_bytes} bytes; "
                            "send audio in smaller appends")
    try:
        data = json.loads(message)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"message is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.INVALID_JSON, "message must be a JSON object")
    event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
    kind = data.get("type")
    if kind is None:
        raise ProtocolError(ErrorCode.MISSING_FIELD, "message has no `type`", param="type",
                            event_id=event_id)
    if not isinstance(kind, str) or kind not in CLIENT_EVENT_TYPES:
        raise ProtocolError(ErrorCode.UNKNOWN_EVENT,
                            f"unknown event type {kind!r}; supported: "
                            + ", ".join(sorted(CLIENT_EVENT_TYPES)),
                            param="type", event_id=event_id)
    try:
        return _CLIENT_EVENT.validate_python(data)
    except ValidationError as exc:
        raise _protocol_error(exc, kind, event_id) from None


def _protocol_error(exc: ValidationError, kind: str, event_id: str | None) -> ProtocolError:
    """The first validation error as a ProtocolError with a dotted `param` path."""
    first = exc.errors(include_url=False)[0]
    loc = [str(part) for part in first["loc"]]
    if loc and loc[0] == kind:  # the discriminated union puts the tag first
        loc = loc[1:]
    param = ".".join(loc) or None
    if first["type"] in _CUSTOM_CODES:
        code = _CUSTOM_CODES[first["type"]]
    elif first["type"] == "missing":
        code = ErrorCode.MISSING_FIELD
    else:
        code = ErrorCode.INVALID_VALUE
    return ProtocolError(code, f"{kind}: {param or 'event'}: {first['msg']}", param=param,
                         event_id=event_id)


