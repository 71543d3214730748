"""One realtime response: drive the conversation's turn and turn its events into server events.

A response answers the pending user audio (`Conversation.respond`) or, when there is none, the
pending typed words or the conversation alone (`Conversation.respond_typed`, a greeting). It
streams as the runtime generates: reply text as `response.audio_transcript.delta`, audio as
`response.audio.delta` the moment the streaming decoder yields it (resampled to the wire rate,
G.711-encoded when the session asks), and for A-T-T-A the user's transcript as
input-transcription events. With output modality `["text"]` the reply text comes as
`response.text.delta` and generation stops where the speech would begin. Cancelling the task
that runs `run` stops generation at once (the runtime iterator is closed) and still sends the
closing events and `response.done` with status `cancelled`; usage is reported either way.
Knows no WebSocket: it only calls `emit`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING

import numpy as np

from model.audio import MODEL_INPUT_RATE_HZ, StreamResampler, float_to_pcm16
from model.engine import EngineBusy
from model.parser import ReplyTextDelta, UserTranscriptDelta
from model.template import PromptTooLongError
from model.turn import ReplyAudio, TokenTally, TurnDone
from server.errors import ErrorCode, new_id
from server.metrics import Metrics
from server.realtime import server_events as out
from server.realtime.client_events import AudioFormat
from server.realtime.usage import response_usage, status_details
from server.realtime.wire_audio import from_pcm16

if TYPE_CHECKING:
    from model.conversation import Conversation

log = logging.getLogger("icot.realtime")
Emit = Callable[[out.ServerEvent], Awaitable[None]]
CancelReason = str  # "turn_detected" | "client_cancelled" | "server_shutting_down" | …


class ResponseRun:
    """State of one response; `run` is its task. `cancel_reason` is set before cancelling."""

    def __init__(self, *, conversation: Conversation, samples: np.ndarray | None, text: str,
                 chain: str | None, user_item: out.Item | None, previous_item_id: str | None,
                 conversation_id: str, output_format: AudioFormat, modalities: tuple[str, ...],
                 metadata: dict[str, str] | None, codec_rate: int, emit: Emit,
                 metrics: Metrics) -> None:
        """samples: the pending user audio, (T,) float32 at 16 kHz, or None to answer `text`
        (typed words; "" answers from the conversation alone). user_item: the last pending user
        item (None for a greeting)."""
        self.conversation = conversation
        self.samples = samples
        self.text = text
        self.chain = chain
        self.user_item = user_item
        self.previous_item_id = previous_item_id
        self.emit = emit
        self.metrics = metrics
        self.id = new_id("resp")
        self.text_only = modalities == ("text",)
        part = (out.ContentPart(type="text", text="") if self.text_only
                else out.ContentPart(type="audio", transcript=""))
        self.item = out.Item(id=new_id("item"), status="in_progress", role="assistant",
                             content=[part])
        self.response = out.Response(id=self.id, status="in_progress",
                                     conversation_id=conversation_id,
                                     modalities=list(modalities), metadata=metadata,
                                     output_rate=output_format.rate,
                                     output_format=output_format.type)
        self.output_format = output_format
        self.output_rate = output_format.rate
        self.history_index = len(conversation.history)  # where the turn will be kept
        self.tally = TokenTally()
        self.first_audio_or_end = asyncio.Event()  # input transcription waits for this
        self._resampler = StreamResampler(codec_rate, output_format.rate)
        self.cancel_reason: CancelReason = "client_cancelled"
        self.audio_samples_sent = 0  # at output_rate
        self._text: list[str] = []
        self._transcript: list[str] | None = None  # None until a UserTranscriptDelta arrives
        self._transcript_done = False
        self._started_s = time.perf_counter()
        self._first_audio_s: float | None = None
        self._waiting_for_engine = True

    @property
    def audio_ms_sent(self) -> int:
        return self.audio_samples_sent * 1000 // self.output_rate

    def part(self) -> dict[str, object]:
        return {"response_id": self.id, "item_id": self.item.id}

    async def run(self) -> None:
        """Stream the whole response; always ends with exactly one `response.done`."""
        self.metrics.queue_depth.inc()
        try:
            await self.emit(out.ResponseCreated(response=self.response))
            await self.emit(out.OutputItemAdded(response_id=self.id, item=self.item))
            await self.emit(out.ItemCreated(previous_item_id=self.previous_item_id,
                                            item=self.item))
            await self.emit(out.ContentPartAdded(**self.part(), part=self.item.content[0]))
            done: TurnDone | None = None
            async with aclosing(self._turn()) as stream:
                async for event in stream:
                    self._engine_started()
                    if isinstance(event, TurnDone):
                        done = event
                    elif self.text_only and isinstance(event, ReplyAudio):
                        break  # the reply text is complete where its speech begins
                    else:
                        await self._on_event(event)
            if done is None and self.text_only:
                self.conversation.truncate_last_reply(0, self.history_index)  # text, no speech
                await self._finish("completed", None, done=None)
                return
            if done is None:
                raise RuntimeError("the runtime's reply ended without TurnDone")
            await self._finish(*_status_of(done), done=done)
        except asyncio.CancelledError:
            await self._finish("cancelled", self.cancel_reason, done=None)
            raise
        except EngineBusy:
            await self._finish("failed", None, done=None, error=ErrorCode.ENGINE_BUSY,
                               message="no engine slot is free; try again shortly")
        except PromptTooLongError as exc:
            await self._finish("failed", None, done=None, error=ErrorCode.TURN_AUDIO_TOO_LONG,
                               message=str(exc))
        except Exception:
            log.exception("response failed", extra={"response_id": self.id})
            await self._finish("failed", None, done=None, error=ErrorCode.SERVER_ERROR,
                               message="generation failed; see the server log")
        finally:
            self._engine_started()

    def _turn(self):
        if self.samples is not None:
            return self.conversation.respond(self.samples, MODEL_INPUT_RATE_HZ,
                                             chain=self.chain, tally=self.tally)
        return self.conversation.respond_typed(self.text, tally=self.tally)

    def _engine_started(self) -> None:
        if self._waiting_for_engine:
            self._waiting_for_engine = False
            self.metrics.queue_depth.dec()

    async def _on_event(self, event: UserTranscriptDelta | ReplyTextDelta | ReplyAudio) -> None:
        if isinstance(event, UserTranscriptDelta):
            if self._transcript is None:
                self._transcript = []
            self._transcript.append(event.text)
            if self.user_item is not None:
                await self.emit(out.InputTranscriptionDelta(item_id=self.user_item.id,
                                                            delta=event.text))
            return
        await self._complete_transcript(None)
        if isinstance(event, ReplyTextDelta):
            self._text.append(event.text)
            kind = out.OutputTextDelta if self.text_only else out.OutputAudioTranscriptDelta
            await self.emit(kind(**self.part(), delta=event.text))
        elif isinstance(event, ReplyAudio):
            if event.sample_rate != self._resampler.from_rate:
                raise ValueError(f"runtime sent {event.sample_rate} Hz audio, expected "
                                 f"{self._resampler.from_rate} Hz")
            await self._send_audio(self._resampler.process(event.samples))

    async def _send_audio(self, samples: np.ndarray) -> None:
        if samples.size == 0:
            return
        if self._first_audio_s is None:
            self._first_audio_s = time.perf_counter()
            self.metrics.ttfa_seconds.labels(endpoint="realtime").observe(
                self._first_audio_s - self._started_s)
        wire = from_pcm16(float_to_pcm16(samples), self.output_format)
        delta = base64.b64encode(wire).decode("ascii")
        self.first_audio_or_end.set()
        self.audio_samples_sent += samples.size
        self.metrics.audio_out_seconds.inc(samples.size / self.output_rate)
        await self.emit(out.AudioDelta(**self.part(), delta=delta))

    async def _complete_transcript(self, final: str | None) -> None:
        """A-T-T-A: the user's transcript is complete once the reply starts (or the turn ends)."""
        if (self._transcript_done or self.user_item is None or self.samples is None
                or (self._transcript is None and final is None)):
            return
        self._transcript_done = True
        transcript = final if final is not None else "".join(self._transcript or [])
        self.user_item.content[0].transcript = transcript
        await self.emit(out.InputTranscriptionCompleted(
            item_id=self.user_item.id, transcript=transcript,
            usage=out.TranscriptionUsage(
                seconds=round(self.samples.size / MODEL_INPUT_RATE_HZ, 3))))

    async def _finish(self, status: str, reason: str | None, *, done: TurnDone | None,
                      error: ErrorCode | None = None, message: str = "") -> None:
        if status != "cancelled" and status != "failed" and not self.text_only:
            await self._send_audio(self._resampler.flush())
        self.first_audio_or_end.set()
        if done is not None:
            await self._complete_transcript(done.user_transcript)
            self._record_speed(done)
        text = done.reply_text if done is not None else "".join(self._text).strip()
        self.item.status = "completed" if status == "completed" else "incomplete"
        if self.text_only:
            self.item.content[0].text = text
            await self.emit(out.OutputTextDone(**self.part(), text=text))
        else:
            self.item.content[0].transcript = text
            await self.emit(out.AudioDone(**self.part()))
            await self.emit(out.OutputAudioTranscriptDone(**self.part(), transcript=text))
        await self.emit(out.ContentPartDone(**self.part(), part=self.item.content[0]))
        await self.emit(out.OutputItemDone(response_id=self.id, item=self.item))
        await self.emit(out.ItemDone(previous_item_id=self.previous_item_id, item=self.item))
        details = status_details(status, reason, error, message)
        usage = response_usage(self.tally)
        self.response = self.response.model_copy(update={
            "status": status, "status_details": details, "output": [self.item], "usage": usage})
        self.metrics.responses.labels(status=status).inc()
        if error is not None:
            self.metrics.errors.labels(code=error.value).inc()
        log.info("response done", extra={"response_id": self.id, "status": status,
                                         "reason": reason, "audio_ms": self.audio_ms_sent,
                                         "ttfa_ms": self._ttfa_ms()})
        await self.emit(out.ResponseDone(response=self.response))

    def _record_speed(self, done: TurnDone) -> None:
        timings = done.timings
        if timings.total_ms is None or timings.prefill_ms is None or done.output_tokens <= 0:
            return
        decode_s = (timings.total_ms - timings.prefill_ms) / 1000
        if decode_s > 0:
            self.metrics.decode_tokens_per_second.observe(done.output_tokens / decode_s)

    def _ttfa_ms(self) -> float | None:
        if self._first_audio_s is None:
            return None
        return round(1000 * (self._first_audio_s - self._started_s), 1)


def _status_of(done: TurnDone) -> tuple[str, str | None]:
    """Realtime status and reason of a finished turn (incomplete: cut by the token limit or by
    malformed output; `end_reason` says which)."""
    if done.status == "incomplete":
        return "incomplete", ("max_output_tokens" if done.end_reason == "length"
                              else done.end_reason)
    return "completed", None
