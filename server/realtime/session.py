"""One `/v1/realtime` WebSocket session: lifecycle, dispatch of client events, and emit.

It owns the session configuration (dialect, wire rates, turn detection) and at most one response
at a time; the input path (input_audio.py) turns audio into turns, the item ledger (items.py)
keeps the conversation items, and the response runner (response.py) streams a reply. Every client
event is handled in arrival order; a bad one gets an `error` event and the session goes on.
Speech while a response plays cancels it (barge-in); a disconnect cancels generation at once.
The model is reached only through the runtime's `Conversation`; `session.update` goes through
session_options.py, wire formats through wire_audio.py, input transcription through
input_transcripts.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from model.chain import Chain
from server import logs
from server.errors import ErrorCode, ProtocolError, new_id
from server.limits import CLOSE_NORMAL, CLOSE_POLICY_VIOLATION, AudioBudget
from server.realtime import server_events as out
from server.realtime.client_events import (
    ConversationItemCreate,
    ConversationItemDelete,
    ConversationItemRetrieve,
    ConversationItemTruncate,
    InputAudioBufferAppend,
    InputAudioBufferClear,
    InputAudioBufferCommit,
    ResponseCancel,
    ResponseCreate,
    SessionUpdate,
)
from server.realtime.client_parsing import parse_client_event
from server.realtime.dialect import Dialect
from server.realtime.input_audio import InputAudio, TurnEnded, TurnEvent, TurnStarted
from server.realtime.input_transcripts import InputTranscripts
from server.realtime.items import ItemLedger
from server.realtime.outbox import Outbox
from server.realtime.response import ResponseRun
from server.realtime.session_options import SessionOptions, output_modalities
from server.realtime.turn_settings import TurnSettings
from server.realtime.wire_audio import to_pcm16
from server.vad import VadConfig

if TYPE_CHECKING:
    from server.state import ServerState

log = logging.getLogger("icot.realtime")


class RealtimeSession:
    """Runs one accepted WebSocket until the client leaves, idles out or the server drains."""

    def __init__(self, websocket: WebSocket, state: ServerState, dialect: Dialect) -> None:
        self.ws = websocket
        self.state = state
        self.settings = state.settings
        self.id = new_id("sess")
        self.outbox = Outbox(websocket, dialect)
        self.emit = self.outbox.send
        self.conversation = state.runtime.new_conversation()
        self.conversation_id = new_id("conv")
        self.vad_defaults = VadConfig(
            threshold=self.settings.vad_threshold,
            prefix_padding_ms=self.settings.vad_prefix_padding_ms,
            silence_duration_ms=self.settings.vad_silence_duration_ms)
        self.options = SessionOptions(chain=str(state.runtime.chain),
                                      turns=TurnSettings(vad=self.vad_defaults))
        self.transcripts = InputTranscripts(lambda: state.recognizer, self.emit)
        self.input = InputAudio(state.vad, wire_rate=self.options.input_format.rate,
                                vad_config=self.options.turns.vad,
                                max_turn_s=self.settings.max_turn_audio_s,
                                budget=AudioBudget(self.settings.max_session_audio_s),
                                metrics=state.metrics)
        self.items = ItemLedger()
        self.response: ResponseRun | None = None
        self._response_task: asyncio.Task[None] | None = None
        self._handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            SessionUpdate: self._session_update,
            InputAudioBufferAppend: self._append,
            InputAudioBufferCommit: self._commit_buffer,
            InputAudioBufferClear: self._clear_buffer,
            ResponseCreate: self._response_create,
            ResponseCancel: self._response_cancel,
            ConversationItemCreate: self._item_create,
            ConversationItemTruncate: self._item_truncate,
            ConversationItemDelete: self._item_delete,
            ConversationItemRetrieve: self._item_retrieve,
        }

    @property
    def dialect(self) -> Dialect:
        return self.outbox.dialect

    @property
    def responding(self) -> bool:
        return self.response is not None

    @property
    def turns(self) -> TurnSettings:
        return self.options.turns

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        logs.session_id.set(self.id)
        self.state.metrics.active_sessions.inc()
        log.info("session opened", extra={"dialect": self.dialect.value})
        try:
            await self.emit(out.SessionCreated(session=self._session_state()))
            while not self.outbox.closed:
                message = await self._receive()
                if message is None:
                    break
                await self._handle(message)
        finally:
            self.outbox.shut()  # nothing more can be sent: cancel without notifying
            await self._cancel_response("client_disconnected")
            await self.transcripts.close()
            self.state.metrics.active_sessions.dec()
            log.info("session closed",
                     extra={"audio_in_s": round(self.input.budget.used_s, 2)})

    async def close(self, code: int, reason: str) -> None:
        """Cancel any response (the client still gets `response.done`) and close the socket."""
        if self.outbox.closed:
            return
        await self._cancel_response("server_shutting_down")
        self.outbox.shut()
        try:
            await self.ws.close(code, reason)
        except (RuntimeError, OSError, WebSocketDisconnect):
            pass  # the peer is already gone

    async def _receive(self) -> dict[str, Any] | None:
        """The next client message; None once the client is gone (or stopped reading) or the
        session idled out."""
        while True:
            try:
                message = await asyncio.wait_for(self._receive_unless_stalled(),
                                                 timeout=self.settings.idle_timeout_s)
            except TimeoutError:
                if self.responding:
                    continue  # a response in progress is not idleness
                await self._error(ProtocolError(
                    ErrorCode.IDLE_TIMEOUT,
                    f"no message for {self.settings.idle_timeout_s:g} s; closing the session"))
                await self.close(CLOSE_NORMAL, "idle timeout")
                return None
            except (WebSocketDisconnect, RuntimeError, OSError):
                return None
            if message is None or message["type"] == "websocket.disconnect":
                return None
            return message

    async def _receive_unless_stalled(self) -> dict[str, Any] | None:
        """`ws.receive()`, or None as soon as the outbox finds the client stopped reading."""
        receive = asyncio.ensure_future(self.ws.receive())
        stalled = asyncio.ensure_future(self.outbox.gone.wait())
        try:
            await asyncio.wait({receive, stalled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stalled.cancel()
            if not receive.done():
                receive.cancel()
        return receive.result() if receive.done() and not receive.cancelled() else None

    # ------------------------------------------------------------ dispatch

    async def _handle(self, message: dict[str, Any]) -> None:
        event = None
        try:
            text = message.get("text")
            if text is None:
                raise ProtocolError(ErrorCode.INVALID_JSON,
                                    "binary frames are not supported; send JSON text messages")
            event = parse_client_event(text, max_bytes=self.settings.max_message_bytes)
            await self._handlers[type(event)](event)
        except ProtocolError as exc:
            if exc.event_id is None and event is not None:
                exc.event_id = event.event_id
            await self._error(exc)
            if exc.code is ErrorCode.SESSION_AUDIO_LIMIT:
                await self.close(CLOSE_POLICY_VIOLATION, "session audio limit")
        except Exception:  # a server bug must not end the session: report it and go on
            log.exception("handling a client event failed",
                          extra={"event": getattr(event, "type", None)})
            await self._error(ProtocolError(ErrorCode.SERVER_ERROR,
                                            "the server failed to handle this event",
                                            event_id=getattr(event, "event_id", None)))

    async def _error(self, exc: ProtocolError) -> None:
        self.state.metrics.errors.labels(code=exc.code.value).inc()
        log.info("client error", extra={"code": exc.code.value, "param": exc.param})
        await self.emit(out.ErrorEvent.of(exc))

    def _session_state(self) -> out.SessionState:
        return self.options.state(self.id, self.state.model_name)

    async def _session_update(self, event: SessionUpdate) -> None:
        """Validate the whole update first, then apply it, so a refused update changes nothing."""
        options = self.options.updated(event.session, chains=self.state.runtime.chains,
                                       vad_defaults=self.vad_defaults)
        if event.session.type == "realtime":
            self.outbox.dialect = Dialect.GA
        self.input.set_wire_rate(options.input_format.rate)
        if options.turns.vad != self.turns.vad:
            self.input.set_turn_detection(options.turns.vad)
        self.options = options
        await self.emit(out.SessionUpdated(session=self._session_state()))

    async def _append(self, event: InputAudioBufferAppend) -> None:
        pcm = to_pcm16(event.audio, self.options.input_format)
        for turn in await asyncio.to_thread(self.input.append, pcm):
            await self._on_turn(turn)

    async def _commit_buffer(self, event: InputAudioBufferCommit) -> None:
        await self._add_user_item(self.input.commit(), new_id("item"), committed=True)

    async def _clear_buffer(self, event: InputAudioBufferClear) -> None:
        self.input.clear()
        await self.emit(out.BufferCleared())

    async def _response_create(self, event: ResponseCreate) -> None:
        params = event.response
        if self.response is not None:
            raise ProtocolError(ErrorCode.RESPONSE_ACTIVE,
                                f"response {self.response.id} is still in progress; cancel it "
                                "or wait for response.done")
        modalities = self.options.modalities
        if params is not None:
            modalities = output_modalities(params.requested_modalities(), modalities,
                                           "response.output_modalities")
            if params.conversation not in (None, "auto"):
                raise ProtocolError(ErrorCode.UNSUPPORTED_VALUE,
                                    "out-of-band responses are not supported; use "
                                    "conversation \"auto\"", param="response.conversation")
        await self._start_response(modalities, params.metadata if params else None)

    async def _response_cancel(self, event: ResponseCancel) -> None:
        if self.response is None or event.response_id not in (None, self.response.id):
            raise ProtocolError(ErrorCode.NO_ACTIVE_RESPONSE,
                                "Cancellation failed: no active response found"
                                if self.response is None else
                                f"Cancellation failed: response {event.response_id} is not "
                                "in progress", param="response_id" if event.response_id else None)
        await self._cancel_response("client_cancelled")

    async def _item_create(self, event: ConversationItemCreate) -> None:
        new = self.items.check_create(event)
        item_id = event.item.id or new_id("item")
        if new.audio is None:
            item, previous = self.items.add_text(item_id, new.role, new.text)
            await self.emit(out.ItemCreated(previous_item_id=previous, item=item))
            await self.emit(out.ItemDone(previous_item_id=previous, item=item))
            return
        pcm = to_pcm16(new.audio, self.options.input_format)
        samples = await asyncio.to_thread(self.input.item_audio, pcm)
        await self._add_user_item(samples, item_id, committed=False)

    async def _item_truncate(self, event: ConversationItemTruncate) -> None:
        run = self.items.truncatable(event)
        if self.response is run:
            await self._cancel_response("client_cancelled")
        if run.history_index < len(self.conversation.history):  # a failed reply kept nothing
            self.conversation.truncate_last_reply(event.audio_end_ms, run.history_index)
        await self.emit(out.ItemTruncated(item_id=event.item_id, content_index=0,
                                          audio_end_ms=event.audio_end_ms))

    async def _item_delete(self, event: ConversationItemDelete) -> None:
        run = self.items.delete(event.item_id)
        if run is not None:
            if self.response is run:
                await self._cancel_response("client_cancelled")
            if run.history_index < len(self.conversation.history):
                self.conversation.forget_reply(run.history_index)
        await self.emit(out.ItemDeleted(item_id=event.item_id))

    async def _item_retrieve(self, event: ConversationItemRetrieve) -> None:
        await self.emit(out.ItemRetrieved(item=self.items.get(event.item_id)))

    # ------------------------------------------------------------ turns and responses

    async def _on_turn(self, turn: TurnEvent) -> None:
        """Act on a turn start or end the input path detected (server_vad)."""
        if isinstance(turn, TurnStarted):
            await self.emit(out.SpeechStarted(audio_start_ms=turn.audio_start_ms,
                                              item_id=turn.item_id))
            if self.responding and self.turns.interrupt_response:
                await self._cancel_response("turn_detected")  # barge-in
            return
        await self._turn_ended(turn)

    async def _turn_ended(self, turn: TurnEnded) -> None:
        await self.emit(out.SpeechStopped(audio_end_ms=turn.audio_end_ms, item_id=turn.item_id))
        await self._add_user_item(turn.samples, turn.item_id, committed=True)
        if not self.turns.create_response:
            return
        try:
            if self.responding:
                raise ProtocolError(ErrorCode.RESPONSE_ACTIVE,
                                    "a response is in progress (interrupt_response is off); "
                                    "the turn was committed without a response")
            await self._start_response()
        except ProtocolError as exc:
            await self._error(exc)

    async def _add_user_item(self, samples: np.ndarray, item_id: str, *,
                             committed: bool) -> None:
        item, previous = self.items.add_user(item_id, samples)
        if committed:
            await self.emit(out.BufferCommitted(item_id=item_id, previous_item_id=previous))
        await self.emit(out.ItemCreated(previous_item_id=previous, item=item))
        await self.emit(out.ItemDone(previous_item_id=previous, item=item))
        own_transcript = Chain(self.options.chain).emits_transcript  # A-T-T-A writes its own
        if self.options.transcription is not None and not own_transcript:
            self.transcripts.submit(item, samples)

    async def _start_response(self, modalities: tuple[str, ...] | None = None,
                              metadata: dict[str, str] | None = None) -> None:
        if self.state.draining:
            raise ProtocolError(ErrorCode.SHUTTING_DOWN,
                                "the server is shutting down and starts no new responses")
        pending = self.items.take_pending()
        chain = self.options.chain
        run = ResponseRun(conversation=self.conversation, samples=pending.samples,
                          text=pending.text,
                          chain=None if chain == str(self.state.runtime.chain) else chain,
                          user_item=pending.user_item, previous_item_id=pending.previous_item_id,
                          conversation_id=self.conversation_id,
                          output_format=self.options.output_format,
                          modalities=modalities or self.options.modalities, metadata=metadata,
                          codec_rate=self.state.runtime.sample_rate, emit=self.emit,
                          metrics=self.state.metrics)
        if pending.user_item is not None:
            self.transcripts.answered_by(pending.item_ids, run.first_audio_or_end)
        self.items.add_reply(run)
        self.response = run
        self._response_task = asyncio.create_task(self._run_response(run))

    async def _run_response(self, run: ResponseRun) -> None:
        try:
            await run.run()
        finally:
            if self.response is run:
                self.response, self._response_task = None, None

    async def _cancel_response(self, reason: str) -> bool:
        """Cancel the running response and wait until it has sent `response.done`."""
        run, task = self.response, self._response_task
        if run is None or task is None:
            return False
        run.cancel_reason = reason
        # A task cancelled before its first step never runs its body, so it would send no
        # `response.done`; one pass of the loop lets it start (its step is already scheduled).
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        return True
