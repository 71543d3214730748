"""Server events of the OpenAI Realtime protocol as pydantic models, with their beta names.

Every event the server sends and the objects inside them (items, responses, session state,
usage). Names and shapes are beta's (`response.audio.delta`); dialect.py renders them for GA.
Builds nothing by itself: the session and the response runner fill them in.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from server.errors import SERVER_SIDE_CODES, ErrorCode, ProtocolError, new_id
from server.realtime.client_events import (
    DEFAULT_RATE_HZ,
    Modalities,
    Transcription,
    TurnDetection,
)


class ContentPart(BaseModel):
    """One content part of an item. `type` uses beta names; `render` maps them for GA.

    input_audio / input_text: what the user said or typed (`transcript` / `text`); audio: the
    assistant's speech with its text as `transcript`; text: a text-only reply.
    """

    type: Literal["input_audio", "input_text", "audio", "text"]
    transcript: str | None = None
    text: str | None = None


class Item(BaseModel):
    id: str
    object: Literal["realtime.item"] = "realtime.item"
    type: Literal["message"] = "message"
    status: Literal["completed", "incomplete", "in_progress"]
    role: Literal["user", "assistant", "system"]
    content: list[ContentPart]


# The reasons OpenAI's types allow: cancelled → turn_detected | client_cancelled; incomplete →
# max_output_tokens | content_filter. Anything else (a drain, malformed speech) goes in `error`.
StatusReason = Literal["turn_detected", "client_cancelled", "max_output_tokens", "content_filter"]


class ResponseStatusDetails(BaseModel):
    type: Literal["completed", "cancelled", "incomplete", "failed"]
    reason: StatusReason | None = None
    error: dict[str, str] | None = None


class TokenSplit(BaseModel):
    """Tokens by kind: text tokens and speech-unit (audio) tokens; this server has no images."""

    text_tokens: int
    audio_tokens: int
    image_tokens: int = 0


class InputTokenDetails(TokenSplit):
    cached_tokens: int  # prompt tokens an engine slot still held from earlier work
    cached_tokens_details: TokenSplit


class Usage(BaseModel):
    """OpenAI's response usage: input (cached included) and output tokens, split text/audio."""

    total_tokens: int
    input_tokens: int
    output_tokens: int
    input_token_details: InputTokenDetails
    output_token_details: TokenSplit


class Response(BaseModel):
    id: str
    object: Literal["realtime.response"] = "realtime.response"
    status: Literal["in_progress", "completed", "cancelled", "incomplete", "failed"]
    status_details: ResponseStatusDetails | None = None
    output: list[Item] = Field(default_factory=list)
    usage: Usage | None = None
    metadata: dict[str, str] | None = None  # the client's response.create metadata, echoed
    conversation_id: str
    modalities: Modalities
    output_rate: int = DEFAULT_RATE_HZ  # rendered as output_audio_format / audio.output.format
    output_format: str = "audio/pcm"  # or audio/pcmu, audio/pcma (G.711, 8 kHz)


class SessionState(BaseModel):
    """What a session is configured to do; rendered as `session` in either dialect."""

    id: str
    model: str
    chain: str
    modalities: Modalities
    input_rate: int
    output_rate: int
    turn_detection: TurnDetection | None
    input_format: str = "audio/pcm"  # or audio/pcmu, audio/pcma (G.711, 8 kHz)
    output_format: str = "audio/pcm"
    transcription: Transcription | None = None  # input transcription, when asked for
    # accepted and echoed as the client set them (None: never set, left out)
    instructions: str | None = None
    voice: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    temperature: float | None = None
    max_output_tokens: int | Literal["inf"] | None = None


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


class InputTranscriptionFailed(_ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.failed"] = (
        "conversation.item.input_audio_transcription.failed")
    item_id: str
    content_index: int = 0
    error: dict[str, str]  # {"type", "code", "message"}


class ItemRetrieved(_ServerEvent):
    type: Literal["conversation.item.retrieved"] = "conversation.item.retrieved"
    item: Item


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


class OutputAudioTranscriptDelta(_PartEvent):
    """A piece of the assistant's reply text (the user's words are `InputTranscription*`)."""

    type: Literal["response.audio_transcript.delta"] = "response.audio_transcript.delta"
    delta: str


class OutputAudioTranscriptDone(_PartEvent):
    """The assistant's whole reply text."""

    type: Literal["response.audio_transcript.done"] = "response.audio_transcript.done"
    transcript: str


class OutputTextDelta(_PartEvent):
    """A piece of a text-only reply (output modality `["text"]`)."""

    type: Literal["response.text.delta"] = "response.text.delta"
    delta: str


class OutputTextDone(_PartEvent):
    type: Literal["response.text.done"] = "response.text.done"
    text: str


ServerEvent = (
    ErrorEvent | SessionCreated | SessionUpdated | SpeechStarted | SpeechStopped
    | BufferCommitted | BufferCleared | ItemCreated | ItemDone | ItemTruncated | ItemDeleted
    | InputTranscriptionDelta | InputTranscriptionCompleted | ResponseCreated | ResponseDone
    | OutputItemAdded | OutputItemDone | ContentPartAdded | ContentPartDone | AudioDelta
    | AudioDone | OutputAudioTranscriptDelta | OutputAudioTranscriptDone
    | InputTranscriptionFailed | ItemRetrieved | OutputTextDelta | OutputTextDone
)
