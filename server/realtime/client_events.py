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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from server.errors import ErrorCode

SUPPORTED_RATES_HZ = (16_000, 24_000)
DEFAULT_RATE_HZ = 24_000
G711_RATE_HZ = 8_000
G711_TYPES = ("audio/pcmu", "audio/pcma")  # μ-law, A-law: 8 kHz, one byte a sample
BETA_FORMATS = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}
# semantic_vad is served by the server VAD: its eagerness sets how much silence ends a turn
EAGERNESS_SILENCE_MS = {"low": 1_000, "medium": 500, "auto": 500, "high": 250}


class _Lenient(BaseModel):
    """Config-like objects: fields we do not use (tools, voice, temperature …) are ignored."""

    model_config = ConfigDict(extra="ignore")


class AudioFormat(_Lenient):
    """PCM16 mono little-endian at 24 kHz (default) or 16 kHz, or G.711 μ-law / A-law at 8 kHz
    (`audio/pcmu`, `audio/pcma`; their rate is always 8 kHz)."""

    type: str = "audio/pcm"
    rate: int = DEFAULT_RATE_HZ

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value != "audio/pcm" and value not in G711_TYPES:
            raise PydanticCustomError(ErrorCode.UNSUPPORTED_FORMAT.value,
                                      "audio format {fmt} is not supported; use audio/pcm, "
                                      "audio/pcmu or audio/pcma", {"fmt": value})
        return value

    @model_validator(mode="before")
    @classmethod
    def _g711_rate(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("type") in G711_TYPES:
            return {**data, "rate": G711_RATE_HZ}
        return data

    @field_validator("rate")
    @classmethod
    def _known_rate(cls, value: int, info: ValidationInfo) -> int:
        rates = (G711_RATE_HZ,) if info.data.get("type") in G711_TYPES else SUPPORTED_RATES_HZ
        if value not in rates:
            raise PydanticCustomError(ErrorCode.UNSUPPORTED_FORMAT.value,
                                      "PCM rate {rate} Hz is not supported; use 24000 or 16000",
                                      {"rate": value})
        return value

    @property
    def g711(self) -> bool:
        return self.type in G711_TYPES


def _beta_format(value: Any) -> Any:
    """Beta sessions name formats by string: `pcm16` (24 kHz), `g711_ulaw`, `g711_alaw`."""
    if isinstance(value, str):
        if value not in BETA_FORMATS:
            raise PydanticCustomError(ErrorCode.UNSUPPORTED_FORMAT.value,
                                      "audio format {fmt} is not supported; use pcm16, "
                                      "g711_ulaw or g711_alaw", {"fmt": value})
        return {"type": BETA_FORMATS[value]}
    return value


class TurnDetection(_Lenient):
    """`server_vad` settings; unset fields keep the session's current values.

    `semantic_vad` is accepted and served by the server VAD: its `eagerness` picks the silence
    that ends a turn (`EAGERNESS_SILENCE_MS`), so it reads back as `server_vad`.
    """

    type: Literal["server_vad"]
    threshold: float | None = Field(default=None, gt=0.0, lt=1.0)
    prefix_padding_ms: int | None = Field(default=None, ge=0, le=10_000)
    silence_duration_ms: int | None = Field(default=None, ge=32, le=10_000)
    create_response: bool | None = None
    interrupt_response: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _semantic_as_server_vad(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("type") != "semantic_vad":
            return data
        eagerness = data.get("eagerness") or "auto"
        if eagerness not in EAGERNESS_SILENCE_MS:
            raise PydanticCustomError(ErrorCode.INVALID_VALUE.value,
                                      "eagerness {value} is not one of low, medium, high, auto",
                                      {"value": eagerness})
        return {"type": "server_vad", "silence_duration_ms": EAGERNESS_SILENCE_MS[eagerness],
                **{key: data[key] for key in ("create_response", "interrupt_response")
                   if key in data}}


Modalities = list[Literal["audio", "text"]]


class Transcription(_Lenient):
    """Input transcription settings; any `model` name is served by the server's own ASR."""

    model: str | None = None
    language: str | None = None
    prompt: str | None = None


class AudioInputConfig(_Lenient):
    format: AudioFormat | None = None
    turn_detection: TurnDetection | None = None
    transcription: Transcription | None = None


class AudioOutputConfig(_Lenient):
    format: AudioFormat | None = None
    voice: str | None = None


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
    input_audio_transcription: Transcription | None = None
    # accepted and echoed; the bundle fixes voice and behaviour (docs/protocol.md says which
    # ones it honours)
    instructions: str | None = None
    voice: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    temperature: float | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    max_response_output_tokens: int | Literal["inf"] | None = None

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

    def transcription_given(self) -> bool:
        """Whether the update sets input transcription at all (`null` turns it off)."""
        nested = self.audio.input if self.audio else None
        return ("input_audio_transcription" in self.model_fields_set
                or (nested is not None and "transcription" in nested.model_fields_set))

    def new_transcription(self) -> Transcription | None:
        nested = self.audio.input if self.audio else None
        if nested is not None and "transcription" in nested.model_fields_set:
            return nested.transcription
        return self.input_audio_transcription

    def requested_voice(self) -> str | None:
        nested = self.audio.output if self.audio else None
        return (nested.voice if nested else None) or self.voice

    def requested_max_output_tokens(self) -> int | Literal["inf"] | None:
        return (self.max_output_tokens if self.max_output_tokens is not None
                else self.max_response_output_tokens)


class ContentParam(_Lenient):
    type: str
    audio: bytes | None = None  # wire-format audio, decoded from base64 on parse
    text: str | None = None

    @field_validator("audio", mode="before")
    @classmethod
    def _decode(cls, value: Any) -> Any:
        return decode_audio_base64(value) if isinstance(value, str) else value


class ItemParam(_Lenient):
    """A `conversation.item.create` item: a user message with `input_audio` or `input_text`
    parts, or a system message with `input_text` (the session checks the combination)."""

    id: str | None = Field(default=None, max_length=64)
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system"]
    content: list[ContentParam] = Field(min_length=1)


class ResponseParams(_Lenient):
    modalities: Modalities | None = None
    output_modalities: Modalities | None = None
    conversation: str | None = None
    metadata: dict[str, str] | None = None  # echoed on response.created and response.done
    instructions: str | None = None  # accepted; the bundle's behaviour is fixed

    def requested_modalities(self) -> Modalities | None:
        return self.output_modalities or self.modalities


def decode_audio_base64(value: str) -> bytes:
    """Base64 text → audio bytes in the session's wire format (the session checks them against
    it: PCM16 needs whole samples, G.711 takes any byte count); bad base64 is a custom error."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PydanticCustomError(ErrorCode.INVALID_BASE64.value,
                                  "audio is not valid base64: {why}", {"why": str(exc)}) from exc


# ---------------------------------------------------------------- client events


class _ClientEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event_id: str | None = Field(default=None, max_length=128)


class SessionUpdate(_ClientEvent):
    type: Literal["session.update"]
    session: SessionConfig


class InputAudioBufferAppend(_ClientEvent):
    type: Literal["input_audio_buffer.append"]
    audio: bytes  # wire-format audio (PCM16 or G.711), decoded from base64 on parse

    @field_validator("audio", mode="before")
    @classmethod
    def _decode(cls, value: Any) -> bytes:
        if not isinstance(value, str):
            raise PydanticCustomError("string_type", "audio must be a base64 string")
        return decode_audio_base64(value)


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


class ConversationItemRetrieve(_ClientEvent):
    type: Literal["conversation.item.retrieve"]
    item_id: str


ClientEvent = Annotated[
    SessionUpdate | InputAudioBufferAppend | InputAudioBufferCommit | InputAudioBufferClear
    | ResponseCreate | ResponseCancel | ConversationItemCreate | ConversationItemTruncate
    | ConversationItemDelete | ConversationItemRetrieve,
    Field(discriminator="type"),
]
CLIENT_EVENT_TYPES = frozenset({
    "session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
    "input_audio_buffer.clear", "response.create", "response.cancel",
    "conversation.item.create", "conversation.item.truncate", "conversation.item.delete",
    "conversation.item.retrieve",
})
