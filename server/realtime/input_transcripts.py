"""A session's input transcription: each committed user turn's words, from the server's ASR.

When a session asks for input transcription, every user audio item is transcribed by the shared
`SpeechRecognizer` (transcription.py) and answered with
`conversation.item.input_audio_transcription.delta` and `.completed` (or `.failed`). A turn is
transcribed only once the reply that answers it has sent its first audio (or ended), so Whisper
never competes with the prefill for the CPU; a turn no reply takes within
`UNANSWERED_AFTER_S` (manual turns, `create_response` off) is transcribed then. Sends through
`emit` only; knows no socket and no model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import numpy as np

from server.realtime import server_events as out
from server.realtime.transcription import SAMPLE_RATE_HZ, SpeechRecognizer

UNANSWERED_AFTER_S = 2.0
log = logging.getLogger("icot.realtime")
Emit = Callable[[out.ServerEvent], Awaitable[None]]


class InputTranscripts:
    """Transcription jobs of one session; `close` cancels those still running."""

    def __init__(self, recognizer: Callable[[], SpeechRecognizer], emit: Emit) -> None:
        self._recognizer = recognizer
        self._emit = emit
        self._gates: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, item: out.Item, samples: np.ndarray) -> None:
        """Transcribe `samples` (float32 (T,) at 16 kHz) for user item `item` when its gate
        opens: its reply's first audio (`answered_by`), or `UNANSWERED_AFTER_S` from now."""
        gate = self._gates[item.id] = asyncio.Event()
        timer = asyncio.get_running_loop().call_later(UNANSWERED_AFTER_S, gate.set)
        task = asyncio.create_task(self._transcribe(item, samples, gate, timer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def answered_by(self, item_ids: list[str], first_audio_or_end: asyncio.Event) -> None:
        """The reply to these items has started: open their gates when its audio begins."""
        for item_id in item_ids:
            gate = self._gates.get(item_id)
            if gate is not None:
                task = asyncio.create_task(_open_after(first_audio_or_end, gate))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _transcribe(self, item: out.Item, samples: np.ndarray, gate: asyncio.Event,
                          timer: asyncio.TimerHandle) -> None:
        try:
            await gate.wait()
        finally:
            timer.cancel()
            self._gates.pop(item.id, None)
        try:
            transcript = await self._recognizer().transcribe(samples)
        except Exception as exc:  # the ASR failed: the client hears why, the session goes on
            log.warning("input transcription failed", extra={"item_id": item.id,
                                                              "why": repr(exc)})
            await self._emit(out.InputTranscriptionFailed(
                item_id=item.id, error={"type": "server_error", "code": "transcription_failed",
                                        "message": f"input transcription failed: {exc}"}))
            return
        item.content[0].transcript = transcript
        await self._emit(out.InputTranscriptionDelta(item_id=item.id, delta=transcript))
        await self._emit(out.InputTranscriptionCompleted(
            item_id=item.id, transcript=transcript,
            usage=out.TranscriptionUsage(seconds=round(samples.size / SAMPLE_RATE_HZ, 3))))


async def _open_after(event: asyncio.Event, gate: asyncio.Event) -> None:
    await event.wait()
    gate.set()
