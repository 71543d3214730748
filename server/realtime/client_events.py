"""Client events of the OpenAI Realtime protocol as pydantic models, in both dialects.

One model per client event and its parts (session config, audio formats, turn detection, items),
joined in the discriminated union `ClientEvent`. Validators raise pydantic custom errors whose
type is an `ErrorCode` value, so parsing (client_parsing.py) maps them to stable codes. Decodes
base64 audio to PCM16 bytes; holds no session state and touches no audio beyond that.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from server.errors import ErrorCode

SUPPORTED_RATES_HZ = (16_000, 24_000)
DEFAULT_RATE_HZ = 24_000


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
