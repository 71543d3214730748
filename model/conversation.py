"""A spoken conversation with a bundle's model: user audio in, reply text and PCM chunks out.

`Conversation.respond(samples, rate)` brings the user's speech into the level range the bundle
was trained on (model/level.py), encodes it with the bundle's codec, renders
the chain's prompt after the history that fits, drives one engine request, parses the generated
ids into events and decodes speech units into PCM as they arrive (the codec's streaming decoder),
so the first audio leaves long before the reply is finished. History is kept per conversation
(docs/bundles.md, "History"). Knows no HTTP and no WebSocket: the server wires events to clients.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from model import parser
from model.audio import check_samples, resample
from model.chain import Chain
from model.engine import Request
from model.level import fit_level
from model.parser import ReplyTextDelta, TranscriptDelta
from model.sampling import SegmentRule
from model.template import PastTurn

if TYPE_CHECKING:
    from model.runtime import Runtime


@dataclass(frozen=True)
class ReplyAudio:
    """A chunk of reply speech: float32 PCM (S,) at `sample_rate` (the codec's rate)."""

    samples: np.ndarray
    sample_rate: int


@dataclass(frozen=True)
class TurnTimings:
    """Milliseconds from the call of `respond` (the audio is in hand) to each milestone.

    prefill_ms: the first generated token (encode + prompt prefill + one step).
    first_text_ms: the first reply text delta (None when the chain writes none).
    first_audio_ms: the first PCM chunk (None when the reply had no speech).
    total_ms: the end of the turn.
    """

    prefill_ms: float | None = None
    first_text_ms: float | None = None
    first_audio_ms: float | None = None
    total_ms: float | None = None


TurnStatus = Literal["completed", "incomplete"]


@dataclass(frozen=True)
class TurnDone:
    """The end of a reply. status "incomplete": the token limit or malformed output cut it."""

    status: TurnStatus
    end_reason: str
    transcript: str | None
    text: str
    timings: TurnTimings
    input_tokens: int
    cached_input_tokens: int  # of input_tokens, those an engine slot still held (not prefilled)
    output_tokens: int
    audio_seconds: float


# Text deltas are the parser's own events, passed through unchanged.
Event = TranscriptDelta | ReplyTextDelta | ReplyAudio | TurnDone


@dataclass
class _TurnRecord:
    """What one reply produced so far; becomes a history turn when the reply ends or stops."""

    user_units: list[int]
    transcript: str = ""
    text: str = ""
    units: list[int] = field(default_factory=list)
    output_tokens: int = 0

    def past_turn(self) -> PastTurn:
        return PastTurn(self.user_units, self.transcript.strip(), self.text.strip(), self.units)


class Conversation:
    """One conversation's history over a shared runtime; one reply at a time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.history: list[PastTurn] = []

    def reset(self) -> None:
        """Forget every earlier turn."""
        self.history.clear()

    def truncate_last_reply(self, audio_end_ms: int) -> None:
        """Keep only the first `audio_end_ms` of the last reply's speech (what the user heard,
        after a barge-in), so later turns see the reply as it was played."""
        if not self.history:
            raise ValueError("there is no reply to truncate")
        if audio_end_ms < 0:
            raise ValueError(f"audio_end_ms must be ≥ 0, got {audio_end_ms}")
        frames = int(audio_end_ms * self.runtime.codec.frame_rate // 1000)
        last = self.history[-1]
        self.history[-1] = replace(last, reply_units=list(last.reply_units)[:frames])

    async def respond(
        self, samples: np.ndarray, sample_rate: int, *, chain: str | Chain | None = None
    ) -> AsyncIterator[Event]:
        """Answer the user's speech `samples` (float32 (T,) at `sample_rate`).

        Yields transcript deltas (A-T-T-A), reply text deltas, PCM chunks and one `TurnDone`.
        Closing the iterator early, or cancelling the task that reads it, cancels the engine
        request at once; the partial reply is still kept in the history. Raises
        `model.engine.EngineBusy` when no engine slot is free, `PromptTooLongError` when the
        turn does not fit the context, `model.audio.AudioError` for unusable audio.
        """
        runtime, bundle = self.runtime, self.runtime.bundle
        chain = Chain.parse(chain or bundle.chain)
        if chain not in runtime.chains:
            raise ValueError(f"this bundle answers with {', '.join(runtime.chains)}, not {chain}")
        started = time.perf_counter()
        samples = check_samples(samples, sample_rate)
        codec_samples = resample(samples, sample_rate, runtime.codec.sample_rate)
        user_units = await asyncio.to_thread(self._user_units, codec_samples)
        prompt = bundle.template.prompt(chain, user_units, self.history, runtime.prompt_budget)
        request = self._request(prompt.ids)

        record = _TurnRecord(user_units)
        timings: dict[str, float] = {}
        stream_parser = parser.ChainParser(bundle.vocab, chain)
        decoder = runtime.codec.streaming_decoder()
        audio_samples = 0
        end_reason = parser.EndReason.LENGTH

        def elapsed_ms() -> float:
            return 1000.0 * (time.perf_counter() - started)

        try:
            async with runtime.engine.submit(request) as handle:
                async for token in handle:
                    timings.setdefault("prefill_ms", elapsed_ms())
                    record.output_tokens += 1
                    for event in stream_parser.feed(token):
                        if isinstance(event, parser.EndOfTurn):
                            end_reason = event.reason
                            break
                        if isinstance(event, TranscriptDelta):
                            record.transcript += event.text
                            yield event
                        elif isinstance(event, ReplyTextDelta):
                            record.text += event.text
                            timings.setdefault("first_text_ms", elapsed_ms())
                            yield event
                        elif isinstance(event, parser.SpeechUnits):
                            record.units.extend(event.units)
                            chunks = await asyncio.to_thread(decoder.push, event.units)
                            for chunk in chunks:
                                timings.setdefault("first_audio_ms", elapsed_ms())
                                audio_samples += chunk.size
                                yield ReplyAudio(chunk, runtime.codec.sample_rate)
                    if stream_parser.done:
                        break
            for event in stream_parser.close():
                if isinstance(event, parser.EndOfTurn):
                    end_reason = event.reason
            tail = await asyncio.to_thread(decoder.flush)
            if tail.size:
                timings.setdefault("first_audio_ms", elapsed_ms())
                audio_samples += tail.size
                yield ReplyAudio(tail, runtime.codec.sample_rate)
        finally:
            self.history.append(record.past_turn())

        complete = end_reason in (parser.EndReason.COMPLETE, parser.EndReason.NO_SPEECH)
        yield TurnDone(
            status="completed" if complete else "incomplete",
            end_reason=str(end_reason),
            transcript=record.transcript.strip() if chain.emits_transcript else None,
            text=record.text.strip(),
            timings=TurnTimings(total_ms=elapsed_ms(), **timings),
            input_tokens=len(prompt.ids),
            cached_input_tokens=handle.cached_tokens,
            output_tokens=record.output_tokens,
            audio_seconds=audio_samples / runtime.codec.sample_rate,
        )

    def _user_units(self, samples: np.ndarray) -> list[int]:
        """The user's speech at the codec's rate → units, first brought into the bundle's trained
        level range (off the event loop: both pass over the whole turn)."""
        codec, level = self.runtime.codec, self.runtime.bundle.config.input_level_dbfs
        if level is not None:
            samples = fit_level(samples, codec.sample_rate, *level)
        return codec.encode(samples).tolist()

    def _request(self, prompt_ids: list[int]) -> Request:
        """One engine request for a reply: text sampling outside speech, speech sampling and
        unit ids only inside `<sosp>…<eosp>`, stopping at the end of the reply speech."""
        bundle = self.runtime.bundle
        generation, markers = bundle.config.generation, bundle.vocab.markers
        speech = SegmentRule(
            start_id=markers.speech_start,
            end_id=markers.speech_end,
            allowed_ids=frozenset(bundle.vocab.unit_ids),
            sampling=generation.speech,
        )
        return Request(
            prompt_ids=tuple(prompt_ids),
            max_new_tokens=min(generation.max_new_tokens,
                               self.runtime.max_seq_len - len(prompt_ids)),
            sampling=generation.text,
            stop_ids=frozenset({markers.speech_end, markers.end_of_assistant, markers.human}),
            segments=(speech,),
            seed=generation.seed,
        )
