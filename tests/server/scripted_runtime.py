"""ScriptedRuntime: a TEST DOUBLE of model.runtime.Runtime for protocol-level server tests.

It implements the runtime interface the server talks to (new_conversation / respond / truncate,
slots, warmup, close) with real audio — the reply is espeak-ng speech of a scripted sentence,
streamed in chunks with awaits between them, as the streaming decoder would — but no model: the
words never depend on what the user said. It records what the server did to it (cancellations,
truncations, the audio it was given) so tests can check the server's side of the contract.
End-to-end behaviour (recall, real latency) is tested against real bundles instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np

from model.engine import EngineBusy
from model.parser import ReplyTextDelta, UserTranscriptDelta
from model.turn import ReplyAudio, TokenTally, TurnDone, TurnTimings

CODEC_RATE_HZ = 16_000
CHUNK_SAMPLES = 1_600  # 100 ms of reply audio per ReplyAudio
SCRIPTED_TRANSCRIPT = "what is two plus three"


@dataclass
class Record:
    """What the server did to the runtime, for assertions."""

    inputs: list[np.ndarray] = field(default_factory=list)  # user audio per respond(), 16 kHz
    typed: list[str] = field(default_factory=list)  # words per respond_typed() ("": greeting)
    forgotten: list[int] = field(default_factory=list)  # history indices of deleted replies
    chains: list[str | None] = field(default_factory=list)
    cancelled: int = 0
    completed: int = 0
    truncations: list[int] = field(default_factory=list)
    resets: int = 0
    closed: bool = False


class ScriptedRuntime:
    def __init__(self, speak: Callable[[str], np.ndarray], *, chain: str = "A-T-A",
                 chains: tuple[str, ...] | None = None, max_slots: int = 2,
                 reply: str = "two plus three is five", chunk_delay_s: float = 0.02,
                 first_delay_s: float = 0.01, warmup_s: float = 0.0,
                 fail_truncate: bool = False) -> None:
        self.chain = chain
        self.chains = chains or (chain,)
        self.sample_rate = CODEC_RATE_HZ
        self.max_slots = max_slots
        self.reply = reply
        self.reply_audio = speak(reply)  # (S,) float32 at 16 kHz
        self.chunk_delay_s = chunk_delay_s
        self.first_delay_s = first_delay_s
        self.warmup_s = warmup_s
        self.fail_truncate = fail_truncate  # fault injection: truncate_last_reply raises
        self.record = Record()
        self._active = 0
        self.failure: BaseException | None = None  # a real engine's failed step (none here)

    @property
    def active_slots(self) -> int:
        return self._active

    def new_conversation(self) -> ScriptedConversation:
        return ScriptedConversation(self)

    async def warmup(self) -> None:
        await asyncio.sleep(self.warmup_s)

    async def close(self) -> None:
        self.record.closed = True


class ScriptedConversation:
    def __init__(self, runtime: ScriptedRuntime) -> None:
        self.runtime = runtime
        self.turns = 0
        self.history: list[str] = []  # one entry per reply, kept as the real conversation does

    def respond(self, samples: np.ndarray, sample_rate: int, *, chain: str | None = None,
                tally: TokenTally | None = None) -> AsyncIterator[object]:
        self.runtime.record.inputs.append(np.asarray(samples).copy())
        return self._reply(samples.size // 320, chain, tally or TokenTally())

    def respond_typed(self, text: str, *, tally: TokenTally | None = None
                      ) -> AsyncIterator[object]:
        self.runtime.record.typed.append(text)
        return self._reply(0, None, tally or TokenTally())

    async def _reply(self, input_audio_tokens: int, chain: str | None,
                     tally: TokenTally) -> AsyncIterator[object]:
        rt = self.runtime
        if rt._active >= rt.max_slots:
            raise EngineBusy("every slot is taken")
        rt._active += 1
        rt.record.chains.append(chain)
        tally.input_tokens = input_audio_tokens + 40  # the instruction's text tokens
        tally.input_audio_tokens = input_audio_tokens
        started = time.perf_counter()
        finished = False
        try:
            self.turns += 1
            await asyncio.sleep(rt.first_delay_s)  # "prefill"
            explicit = (chain or rt.chain) == "A-T-T-A"
            if explicit:
                for word in SCRIPTED_TRANSCRIPT.split():
                    yield UserTranscriptDelta(text=word + " ")
            words = rt.reply.split()
            for i, word in enumerate(words):
                tally.output_tokens += 1
                yield ReplyTextDelta(text=word if i == len(words) - 1 else word + " ")
            first_audio_ms = None
            for start in range(0, rt.reply_audio.size, CHUNK_SAMPLES):
                if first_audio_ms is None:
                    first_audio_ms = 1000 * (time.perf_counter() - started)
                tally.output_tokens += 1
                tally.output_audio_tokens += 1
                yield ReplyAudio(samples=rt.reply_audio[start:start + CHUNK_SAMPLES],
                                 sample_rate=CODEC_RATE_HZ)
                await asyncio.sleep(rt.chunk_delay_s)
            finished = True
            rt.record.completed += 1
            total_ms = 1000 * (time.perf_counter() - started)
            yield TurnDone(status="completed", end_reason="complete",
                           user_transcript=SCRIPTED_TRANSCRIPT if explicit else None,
                           reply_text=rt.reply, timings=TurnTimings(
                               prefill_ms=1000 * rt.first_delay_s, first_text_ms=None,
                               first_audio_ms=first_audio_ms, total_ms=total_ms),
                           input_tokens=tally.input_tokens, cached_input_tokens=0,
                           output_tokens=tally.output_tokens,
                           audio_seconds=rt.reply_audio.size / CODEC_RATE_HZ, tokens=tally)
        finally:
            if not finished:
                rt.record.cancelled += 1
            self.history.append(rt.reply)
            rt._active -= 1

    def reset(self) -> None:
        self.runtime.record.resets += 1
        self.turns = 0

    def truncate_last_reply(self, audio_end_ms: int, index: int = -1) -> None:
        if self.runtime.fail_truncate:
            raise RuntimeError("injected fault")
        self.runtime.record.truncations.append(audio_end_ms)

    def forget_reply(self, index: int) -> None:
        self.runtime.record.forgotten.append(index)
