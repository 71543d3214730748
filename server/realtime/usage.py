"""A response's usage and status details in OpenAI's shapes: tokens split text/audio, reasons.

The counts come from the runtime's turn (prompt tokens, of them speech units; tokens an engine
slot still held; generated tokens, of them speech units). Audio tokens are speech-unit tokens,
text tokens the rest. A response that never reached the engine (cancelled or refused first)
used nothing and reports zeros. Builds pydantic models only; no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from server.errors import ErrorCode
from server.realtime.server_events import (
    InputTokenDetails,
    ResponseStatusDetails,
    StatusReason,
    TokenSplit,
    Usage,
)

if TYPE_CHECKING:
    from model.turn import TokenTally


def response_usage(counts: TokenTally) -> Usage:
    """`response.usage` for a turn's tally, finished or not (zeros: it never reached the
    engine)."""
    cached_text = counts.cached_tokens - counts.cached_audio_tokens
    return Usage(
        total_tokens=counts.input_tokens + counts.output_tokens,
        input_tokens=counts.input_tokens,
        output_tokens=counts.output_tokens,
        input_token_details=InputTokenDetails(
            cached_tokens=counts.cached_tokens,
            text_tokens=counts.input_tokens - counts.input_audio_tokens,
            audio_tokens=counts.input_audio_tokens,
            cached_tokens_details=TokenSplit(text_tokens=cached_text,
                                             audio_tokens=counts.cached_audio_tokens)),
        output_token_details=TokenSplit(
            text_tokens=counts.output_tokens - counts.output_audio_tokens,
            audio_tokens=counts.output_audio_tokens))


def status_details(status: str, reason: str | None, error: ErrorCode | None,
                   message: str = "") -> ResponseStatusDetails:
    """`status_details` whose `reason` is one OpenAI allows; any other reason (a drain, a client
    gone, malformed speech) is carried as `error.code` instead, so strict clients still parse."""
    if reason is not None and reason not in OPENAI_REASONS:
        error_code, reason = reason, None
        message = message or _REASON_MESSAGES.get(error_code, error_code)
    else:
        error_code = error.value if error is not None else None
    return ResponseStatusDetails(
        type=status, reason=reason,
        error={"type": "server_error", "code": error_code, "message": message}
        if error_code is not None else None)


OPENAI_REASONS = frozenset(get_args(StatusReason))
_REASON_MESSAGES = {
    "server_shutting_down": "the server is shutting down",
    "client_disconnected": "the client disconnected",
    "unterminated_speech": "the model ended its reply speech malformed",
}
