"""The OpenAI Realtime wire protocol as pydantic models: client events in, server events out.

Client events are parsed with one discriminated union; every way a message can be bad becomes a
`ProtocolError` with a stable `ErrorCode`, so the session answers with an `error` event and goes
on. Server events are built with their beta names (`response.audio.delta`) and rendered for the
connection's dialect by `render` (GA: `response.output_audio.delta`, nested session and response
shapes). This module holds no session state and touches no audio beyond base64 checks.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

SUPPORTED_RATES_HZ = (16_000, 24_000)
DEFAULT_RATE_HZ = 24_000


class Dialect(StrEnum):
    """Event names: `beta` (OpenAI-Beta: realtime=v1) or `ga` (the GA Realtime API)."""

    BETA = "beta"
    GA = "ga"


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
    NO_INPUT_AUDIO = "response_no_input_audio"
    ITEM_NOT_FOUND = "item_not_found"
    ITEM_NOT_EDITABLE = "item_not_editable"
    INVALID_AUDIO_END = "invalid_audio_end_ms"
    TURN_AUDIO_TOO_LONG = "turn_audio_too_long"
    SESSION_AUDIO_LIMIT = "session_audio_limit_exceeded"
    ENGINE_BUSY = "engine_busy"
    SHUTTING_DOWN = "server_shutting_down"
    IDLE_TIMEOUT = "idle_timeout"
    UNAUTHORIZED = "unauthorized"
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


# ---------------------------------------------------------------- client events: shared parts


class _Lenient(BaseModel):
    """Config-like objects: fields we do not use (tools, voice, temperature …) are ignored."""

    model_config = ConfigDict(extra="ignore")


class AudioFormat(_Lenient):
    """PCM16 mono little-endian at 24 kHz (default) or 16 kHz; G.711 is refused."""

    type: str = "audio/pcm"
    rate: int = DEFAULT_RATE_HZ

    @field_validator("type")
    @classmethod
    def _pcm_only(cls, value: str) -> str:
        if value != "audio/pcm":
            raise PydanticCustomError(ErrorCode.UNSUPPORTED_FORMAT.value,
                                      "audio format {fmt} is not supported; use audio/pcm",
                                      {"fmt": value})
        return value

    @field_validator("rate")
    @classmethod
    def _known_rate(cls, value: int) -> int:
        if value not in SUPPORTED_RATES_HZ:
            raise PydanticCustomError(ErrorCode.UNSUPPORTED_FORMAT.value,
                                      "PCM rate {rate} Hz is not supported; use 24000 or 16000",
                                      {"rate": value})
        return value


def _beta_format(value: Any) -> Any:
    """Beta sessions name formats by string; `pcm16` is 24 kHz PCM16."""
    if value == "pcm16":
        return AudioFormat()
    if isinstance(value, str):
        raise PydanticCustomError(ErrorCode.UNSUPPORTED_FORMAT.value,
                                  "audio format {fmt} is not supported; use pcm16", {"fmt": value})
    return value


class TurnDetection(_Lenient):
    """`server_vad` settings; unset fields keep the session's current values."""

    type: Literal["server_vad", "semantic_vad"]
    threshold: float | None = Field(default=None, gt=0.0, lt=1.0)
    prefix_padding_ms: int | None = Field(default=None, ge=0, le=10_000)
    silence_duration_ms: int | None = Field(default=None, ge=32, le=10_000)
    create_response: bool | None = None
    interrupt_response: bool | None = None

    @field_validator("type")
    @classmethod
    def _server_vad_only(cls, value: str) -> str:
        if value != "server_vad":
            raise PydanticCustomError(ErrorCode.UNSUPPORTED_VALUE.value,
                                      "turn_detection {kind} is not supported; use server_vad "
                                      "or null", {"kind": value})
        return value


Modalities = list[Literal["audio", "text"]]


class AudioInputConfig(_Lenient):
    format: AudioFormat | None = None
    turn_detection: TurnDetection | None = None


class AudioOutputConfig(_Lenient):
    format: AudioFormat | None = None


class AudioConfig(_Lenient):
    input: AudioInputConfig | None = None
    output: AudioOutputConfig | None = None


class SessionConfig(_Lenient):
    """`session.update` payload in either dialect (GA nests audio under `audio.input|output`).

    `chain` is our extension: one of the bundle's chains ("A-T-T-A", "A-T-A", "A-A").
    """

    type: Literal["realtime"] | None = None
    audio: AudioConfig | None = None
    input_audio_format: AudioFormat | None = None
    output_audio_format: AudioFormat | None = None
    turn_detection: TurnDetection | None = None
    modalities: Modalities | None = None
    output_modalities: Modalities | None = None
    chain: str | None = None

    @field_validator("input_audio_format", "output_audio_format", mode="before")
    @classmethod
    def _beta_formats(cls, value: Any) -> Any:
        return _beta_format(value)

    @field_validator("type", mode="before")
    @classmethod
    def _realtime_only(cls, value: Any) -> Any:
        if value not in (None, "realtime"):
            raise PydanticCustomError(ErrorCode.UNSUPPORTED_VALUE.value,
                                      "session type {kind} is not supported; use realtime",
                                      {"kind": value})
        return value

    def input_format(self) -> AudioFormat | None:
        nested = self.audio.input if self.audio else None
        return (nested.format if nested else None) or self.input_audio_format

    def output_format(self) -> AudioFormat | None:
        nested = self.audio.output if self.audio else None
        return (nested.format if nested else None) or self.output_audio_format

    def turn_detection_given(self) -> bool:
        """Whether the update sets turn detection at all (`null` sets manual mode)."""
        nested = self.audio.input if self.audio else None
        return ("turn_detection" in self.model_fields_set
                or (nested is not None and "turn_detection" in nested.model_fields_set))

    def new_turn_detection(self) -> TurnDetection | None:
        nested = self.audio.input if self.audio else None
        if nested is not None and "turn_detection" in nested.model_fields_set:
            return nested.turn_detection
        return self.turn_detection

    def requested_modalities(self) -> Modalities | None:
        return self.output_modalities or self.modalities


class ContentParam(_Lenient):
    type: str
    audio: bytes | None = None  # PCM16, decoded from base64 on parse
    text: str | None = None

    @field_validator("audio", mode="before")
    @classmethod
    def _decode(cls, value: Any) -> Any:
        return decode_pcm16_base64(value) if isinstance(value, str) else value


class ItemParam(_Lenient):
    """A `conversation.item.create` item; only user messages with `input_audio` are accepted."""

    id: str | None = Field(default=None, max_length=64)
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system"]
    content: list[ContentParam] = Field(min_length=1)


class ResponseParams(_Lenient):
    modalities: Modalities | None = None
    output_modalities: Modalities | None = None
    conversation: str | None = None

    def requested_modalities(self) -> Modalities | None:
        return self.output_modalities or self.modalities


def decode_pcm16_base64(value: str) -> bytes:
    """Base64 text → PCM16 bytes; bad base64 and odd byte counts raise custom pydantic errors."""
    try:
        pcm = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PydanticCustomError(ErrorCode.INVALID_BASE64.value,
                                  "audio is not valid base64: {why}", {"why": str(exc)}) from exc
    if len(pcm) % 2:
        raise PydanticCustomError(ErrorCode.INVALID_AUDIO.value,
                                  "PCM16 audio needs an even number of bytes, got {n}",
                                  {"n": len(pcm)})
    return pcm


# ---------------------------------------------------------------- client events


class _ClientEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event_id: str | None = Field(default=None, max_length=128)


class SessionUpdate(_ClientEvent):
    type: Literal["session.update"]
    session: SessionConfig


class InputAudioBufferAppend(_ClientEvent):
    type: Literal["input_audio_buffer.append"]
    audio: bytes  # PCM16 little-endian, decoded from base64 on parse

    @field_validator("audio", mode="before")
    @classmethod
    def _decode(cls, value: Any) -> bytes:
        if not isinstance(value, str):
            raise PydanticCustomError("string_type", "audio must be a base64 string")
        return decode_pcm16_base64(value)


class InputAudioBufferCommit(_ClientEvent):
    type: Literal["input_audio_buffer.commit"]


class InputAudioBufferClear(_ClientEvent):
    type: Literal["input_audio_buffer.clear"]


class ResponseCreate(_ClientEvent):
    type: Literal["response.create"]
    response: ResponseParams | None = None


class ResponseCancel(_ClientEvent):
    type: Literal["response.cancel"]
    response_id: str | None = None


class ConversationItemCreate(_ClientEvent):
    type: Literal["conversation.item.create"]
    item: ItemParam
    previous_item_id: str | None = None


class ConversationItemTruncate(_ClientEvent):
    type: Literal["conversation.item.truncate"]
    item_id: str
    content_index: int = Field(ge=0)
    audio_end_ms: int = Field(ge=0)


class ConversationItemDelete(_ClientEvent):
    type: Literal["conversation.item.delete"]
    item_id: str


ClientEvent = Annotated[
    SessionUpdate | InputAudioBufferAppend | InputAudioBufferCommit | InputAudioBufferClear
    | ResponseCreate | ResponseCancel | ConversationItemCreate | ConversationItemTruncate
    | ConversationItemDelete,
    Field(discriminator="type"),
]
CLIENT_EVENT_TYPES = frozenset({
    "session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
    "input_audio_buffer.clear", "response.create", "response.cancel",
    "conversation.item.create", "conversation.item.truncate", "conversation.item.delete",
})
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


# ---------------------------------------------------------------- server events: shared parts


class ContentPart(BaseModel):
    """One content part of an item. `type` uses beta names; `render` maps them for GA."""

    type: Literal["input_audio", "audio"]
    transcript: str | None = None


class Item(BaseModel):
    id: str
    object: Literal["realtime.item"] = "realtime.item"
    type: Literal["message"] = "message"
    status: Literal["completed", "incomplete", "in_progress"]
    role: Literal["user", "assistant"]
    content: list[ContentPart]


class ResponseStatusDetails(BaseModel):
    type: Literal["completed", "cancelled", "incomplete", "failed"]
    reason: str | None = None
    error: dict[str, str] | None = None


class InputTokenDetails(BaseModel):
    cached_tokens: int  # prompt tokens an engine slot still held from earlier work


class Usage(BaseModel):
    total_tokens: int
    input_tokens: int
    output_tokens: int
    input_token_details: InputTokenDetails


class Response(BaseModel):
    id: str
    object: Literal["realtime.response"] = "realtime.response"
    status: Literal["in_progress", "completed", "cancelled", "incomplete", "failed"]
    status_details: ResponseStatusDetails | None = None
    output: list[Item] = Field(default_factory=list)
    usage: Usage | None = None
    conversation_id: str
    modalities: Modalities
    output_rate: int = DEFAULT_RATE_HZ  # rendered as output_audio_format / audio.output.format


class SessionState(BaseModel):
    """What a session is configured to do; rendered as `session` in either dialect."""

    id: str
    model: str
    chain: str
    modalities: Modalities
    input_rate: int
    output_rate: int
    turn_detection: TurnDetection | None


class TranscriptionUsage(BaseModel):
    """Input transcription usage, billed by duration: the seconds of user audio heard."""

    type: Literal["duration"] = "duration"
    seconds: float


class ErrorDetail(BaseModel):
    type: Literal["invalid_request_error", "server_error"]
    code: ErrorCode
    message: str
    param: str | None = None
    event_id: str | None = None


# ---------------------------------------------------------------- server events


class _ServerEvent(BaseModel):
    event_id: str = Field(default_factory=lambda: new_id("event"))


class ErrorEvent(_ServerEvent):
    type: Literal["error"] = "error"
    error: ErrorDetail

    @classmethod
    def of(cls, error: ProtocolError) -> ErrorEvent:
        kind = "server_error" if error.code in SERVER_SIDE_CODES else "invalid_request_error"
        return cls(error=ErrorDetail(type=kind, code=error.code, message=error.message,
                                     param=error.param, event_id=error.event_id))


class SessionCreated(_ServerEvent):
    type: Literal["session.created"] = "session.created"
    session: SessionState


class SessionUpdated(_ServerEvent):
    type: Literal["session.updated"] = "session.updated"
    session: SessionState


class SpeechStarted(_ServerEvent):
    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    audio_start_ms: int
    item_id: str


class SpeechStopped(_ServerEvent):
    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int
    item_id: str


class BufferCommitted(_ServerEvent):
    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    item_id: str
    previous_item_id: str | None


class BufferCleared(_ServerEvent):
    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class ItemCreated(_ServerEvent):
    """Beta `conversation.item.created`; GA `conversation.item.added`."""

    type: Literal["conversation.item.created"] = "conversation.item.created"
    previous_item_id: str | None
    item: Item


class ItemDone(_ServerEvent):
    """GA `conversation.item.done` (an item is final); beta clients get nothing."""

    type: Literal["conversation.item.done"] = "conversation.item.done"
    previous_item_id: str | None
    item: Item


class ItemTruncated(_ServerEvent):
    type: Literal["conversation.item.truncated"] = "conversation.item.truncated"
    item_id: str
    content_index: int
    audio_end_ms: int


class ItemDeleted(_ServerEvent):
    type: Literal["conversation.item.deleted"] = "conversation.item.deleted"
    item_id: str


class InputTranscriptionDelta(_ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta")
    item_id: str
    content_index: int = 0
    delta: str


class InputTranscriptionCompleted(_ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed")
    item_id: str
    content_index: int = 0
    transcript: str
    usage: TranscriptionUsage


class ResponseCreated(_ServerEvent):
    type: Literal["response.created"] = "response.created"
    response: Response


class ResponseDone(_ServerEvent):
    type: Literal["response.done"] = "response.done"
    response: Response


class OutputItemAdded(_ServerEvent):
    type: Literal["response.output_item.added"] = "response.output_item.added"
    response_id: str
    output_index: int = 0
    item: Item


class OutputItemDone(_ServerEvent):
    type: Literal["response.output_item.done"] = "response.output_item.done"
    response_id: str
    output_index: int = 0
    item: Item


class _PartEvent(_ServerEvent):
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0


class ContentPartAdded(_PartEvent):
    type: Literal["response.content_part.added"] = "response.content_part.added"
    part: ContentPart


class ContentPartDone(_PartEvent):
    type: Literal["response.content_part.done"] = "response.content_part.done"
    part: ContentPart


class AudioDelta(_PartEvent):
    type: Literal["response.audio.delta"] = "response.audio.delta"
    delta: str  # base64 PCM16


class AudioDone(_PartEvent):
    type: Literal["response.audio.done"] = "response.audio.done"


class TranscriptDelta(_PartEvent):
    type: Literal["response.audio_transcript.delta"] = "response.audio_transcript.delta"
    delta: str


class TranscriptDone(_PartEvent):
    type: Literal["response.audio_transcript.done"] = "response.audio_transcript.done"
    transcript: str


ServerEvent = (
    ErrorEvent | SessionCreated | SessionUpdated | SpeechStarted | SpeechStopped
    | BufferCommitted | BufferCleared | ItemCreated | ItemDone | ItemTruncated | ItemDeleted
    | InputTranscriptionDelta | InputTranscriptionCompleted | ResponseCreated | ResponseDone
    | OutputItemAdded | OutputItemDone | ContentPartAdded | ContentPartDone | AudioDelta
    | AudioDone | TranscriptDelta | TranscriptDone
)

# Beta name → GA name; None: the event does not exist in that dialect and is not sent.
GA_NAMES: dict[str, str] = {
    "conversation.item.created": "conversation.item.added",
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
}
GA_ONLY: frozenset[str] = frozenset({"conversation.item.done"})


def render(event: ServerEvent, dialect: Dialect) -> str | None:
    """The JSON text of `event` in `dialect`, or None when the dialect has no such event."""
    if dialect is Dialect.BETA and event.type in GA_ONLY:
        return None
    data = event.model_dump(mode="json")
    if dialect is Dialect.GA:
        data["type"] = GA_NAMES.get(event.type, event.type)
    _render_nested(data, dialect)
    return json.dumps(data, separators=(",", ":"))


def _render_nested(data: dict[str, Any], dialect: Dialect) -> None:
    if "session" in data:
        data["session"] = _render_session(data["session"], dialect)
    if "response" in data:
        data["response"] = _render_response(data["response"], dialect)
    if "item" in data:
        _render_item(data["item"], dialect)


def _format(rate: int, dialect: Dialect) -> Any:
    if dialect is Dialect.BETA:
        return "pcm16" if rate == DEFAULT_RATE_HZ else {"type": "audio/pcm", "rate": rate}
    return {"type": "audio/pcm", "rate": rate}


def _render_session(session: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    turn_detection = session["turn_detection"]
    common = {"id": session["id"], "object": "realtime.session", "chain": session["chain"]}
    if dialect is Dialect.BETA:  # beta's `model` is a closed list of OpenAI names: left out
        return {**common, "modalities": session["modalities"],
                "input_audio_format": _format(session["input_rate"], dialect),
                "output_audio_format": _format(session["output_rate"], dialect),
                "turn_detection": turn_detection}
    return {**common, "type": "realtime", "model": session["model"],
            "output_modalities": session["modalities"],
            "audio": {
                "input": {"format": _format(session["input_rate"], dialect),
                          "turn_detection": turn_detection},
                "output": {"format": _format(session["output_rate"], dialect)},
            }}


def _render_response(response: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    rate = response.pop("output_rate")
    for item in response["output"]:
        _render_item(item, dialect)
    if dialect is Dialect.BETA:
        response["output_audio_format"] = _format(rate, dialect)
        return response
    response["output_modalities"] = response.pop("modalities")
    response["audio"] = {"output": {"format": _format(rate, dialect)}}
    return response


def _render_item(item: dict[str, Any], dialect: Dialect) -> None:
    """GA names an assistant's audio content `output_audio` (content parts stay `audio`)."""
    for part in item["content"]:
        if dialect is Dialect.GA and part["type"] == "audio":
            part["type"] = "output_audio"
