"""One reply turn: user audio → units → prompt → engine → parsed events → streamed PCM.

`TurnRunner.run` brings the user's speech into the level range the bundle was trained on
(model/audio/level.py), encodes it with the codec, renders the chain's prompt after the history that
fits, drives one engine request, parses the generated ids into events and decodes speech units
into PCM as they arrive (model/codecs/streaming.py), so the first audio leaves long before the
reply is finished. The runner is built once per runtime from the parts it names; it keeps no
history (the conversation hands its history in and takes the finished turn back). Knows no HTTP,
no sessions and no bundle directory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from model import parser
from model.audio import check_samples, fit_level, resample
from model.bundle import GenerationConfig
from model.chain import Chain
from model.codecs import SpeechCodec, StreamingDecoder
from model.engine import Engine, Request
from model.parser import ReplyTextDelta, UserTranscriptDelta
from model.sampling import SegmentRule
from model.speech_tokens import SpeechVocab
from model.template import PastTurn, Template


@dataclass(frozen=True)
class ReplyAudio:
    """A chunk of reply speech: float32 PCM (S,) at `sample_rate` (the codec's rate)."""

    samples: np.ndarray
    sample_rate: int


@dataclass(frozen=True)
class TurnTimings:
    """Milliseconds from the start of the turn (the audio is in hand) to each milestone.

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


@dataclass
class TokenTally:
    """Tokens a turn has used so far, updated while it runs (so a cancelled turn still tells).

    `*_audio_tokens` count speech-unit tokens of each total; `cached_tokens` are prompt tokens an
    engine slot still held (not prefilled again).
    """

    input_tokens: int = 0
    input_audio_tokens: int = 0
    cached_tokens: int = 0
    cached_audio_tokens: int = 0
    output_tokens: int = 0
    output_audio_tokens: int = 0


@dataclass(frozen=True)
class TurnDone:
    """The end of a reply. status "incomplete": the token limit or malformed output cut it.

    user_transcript: what the model heard the user say (A-T-T-A), else None.
    reply_text: what the assistant answered in text ("" for A-A).
    """

    status: TurnStatus
    end_reason: str
    user_transcript: str | None
    reply_text: str
    timings: TurnTimings
    input_tokens: int
    cached_input_tokens: int  # of input_tokens, those an engine slot still held (not prefilled)
    output_tokens: int
    audio_seconds: float
    tokens: TokenTally = field(default_factory=TokenTally)  # the same counts, split text/audio


# Text deltas are the parser's own events, passed through unchanged.
Event = UserTranscriptDelta | ReplyTextDelta | ReplyAudio | TurnDone


@dataclass
class _TurnRecord:
    """What one reply produced so far; becomes a history turn when the reply ends or stops."""

    user_units: list[int]
    user_transcript: str = ""
    reply_text: str = ""
    reply_units: list[int] = field(default_factory=list)
    output_tokens: int = 0
    typed: bool = False  # the user typed `user_transcript` (the text-in chain)

    def past_turn(self) -> PastTurn:
        return PastTurn(self.user_units, self.user_transcript.strip(), self.reply_text.strip(),
                        self.reply_units, typed=self.typed)


# What a turn's prompt step hands to generation: (prompt ids, chain, record, start time).
_Prompted = tuple[list[int], Chain, _TurnRecord, float]


class TurnRunner:
    """Answers turns with one engine, codec and template; shared by every conversation."""

    def __init__(
        self,
        *,
        engine: Engine,
        codec: SpeechCodec,
        template: Template,
        generation: GenerationConfig,
        chains: Sequence[Chain],
        input_level_dbfs: tuple[float, ...] | None,
        prompt_budget: int,
    ) -> None:
        """chains: those a request may ask for, the default first. input_level_dbfs: the
        (low, high) speech level the model was trained on, or None to encode audio as it comes.
        prompt_budget: the most prompt tokens, leaving room for the longest reply."""
        self.engine = engine
        self.codec = codec
        self.template = template
        self.generation = generation
        self.chains = tuple(chains)
        self.input_level_dbfs = input_level_dbfs
        self.prompt_budget = prompt_budget
        self._max_seq_len = engine.config.max_seq_len
        vocab: SpeechVocab = template.vocab
        self._vocab = vocab
        self._unit_id_set = frozenset(vocab.unit_ids)
        markers = vocab.markers
        self._speech_rule = SegmentRule(
            start_id=markers.speech_start,
            end_id=markers.speech_end,
            allowed_ids=self._unit_id_set,
            sampling=generation.speech,
        )
        self._stop_ids = frozenset({markers.speech_end, markers.end_of_assistant, markers.human})

    def run(
        self,
        samples: np.ndarray,
        sample_rate: int,
        *,
        chain: str | Chain | None,
        history: Sequence[PastTurn],
        keep: Callable[[PastTurn], None],
        tally: TokenTally | None = None,
    ) -> AsyncIterator[Event]:
        """Answer the user's speech `samples` (float32 (T,) at `sample_rate`) after `history`.

        Yields transcript deltas (A-T-T-A), reply text deltas, PCM chunks and one `TurnDone`;
        the turn as it stands is passed to `keep` when the reply ends, fails or is closed early.
        Closing the iterator early, or cancelling the task that reads it, cancels the engine
        request at once. Raises `model.engine.EngineBusy` when no engine slot is free,
        `PromptTooLongError` when the turn does not fit the context, `model.audio.AudioError`
        for unusable audio (all raised when the first event is awaited). `tally` (optional) is kept
        up to date with the tokens used.
        """

        async def spoken_prompt() -> _Prompted:
            chosen = Chain.parse(chain or self.chains[0])
            if chosen not in self.chains:
                raise ValueError(f"this bundle answers with {', '.join(self.chains)}, not {chosen}")
            started = time.perf_counter()
            checked = check_samples(samples, sample_rate)
            codec_samples = resample(checked, sample_rate, self.codec.sample_rate)
            user_units = await asyncio.to_thread(self._user_units, codec_samples)
            prompt = self.template.prompt(chosen, user_units, history, self.prompt_budget)
            return prompt.ids, chosen, _TurnRecord(user_units), started

        return self._generate(spoken_prompt, keep, tally)

    def run_typed(
        self,
        text: str,
        *,
        history: Sequence[PastTurn],
        keep: Callable[[PastTurn], None],
        tally: TokenTally | None = None,
    ) -> AsyncIterator[Event]:
        """Answer typed words with the text-in chain (typed words → reply text → reply speech,
        `Template.typed_prompt`); `text` "" answers from the conversation alone (a greeting).
        Events, errors and `keep` as for `run`."""

        async def typed_prompt() -> _Prompted:
            started = time.perf_counter()
            prompt = self.template.typed_prompt(text, history, self.prompt_budget)
            record = _TurnRecord([], user_transcript=text.strip(), typed=True)
            return prompt.ids, Chain.ATA, record, started

        return self._generate(typed_prompt, keep, tally)

    async def _generate(
        self,
        prompted: Callable[[], Awaitable[_Prompted]],
        keep: Callable[[PastTurn], None],
        tally: TokenTally | None,
    ) -> AsyncIterator[Event]:
        """Render the prompt (`prompted`, awaited here so that the caller iterates one generator
        and nothing runs before the first event is awaited), then generate, parse and decode one
        reply to it (see `run`)."""
        prompt_ids, chain, record, started = await prompted()
        codec_rate = self.codec.sample_rate
        request = self._request(prompt_ids)
        tally = tally if tally is not None else TokenTally()
        tally.input_tokens = len(prompt_ids)
        tally.input_audio_tokens = self._audio_tokens(prompt_ids)
        prefill_ms = first_text_ms = first_audio_ms = None
        stream_parser = parser.ChainParser(self._vocab, chain)
        decoder = StreamingDecoder(self.codec)
        audio_samples = 0
        end_reason = parser.EndReason.LENGTH
        token = -1  # the last generated id

        def elapsed_ms() -> float:
            return 1000.0 * (time.perf_counter() - started)

        try:
            async with self.engine.submit(request) as handle:
                async for token in handle:
                    if prefill_ms is None:
                        prefill_ms = elapsed_ms()
                        tally.cached_tokens = handle.cached_tokens
                        tally.cached_audio_tokens = self._audio_tokens(
                            prompt_ids[:handle.cached_tokens])
                    record.output_tokens += 1
                    tally.output_tokens = record.output_tokens
                    for event in stream_parser.feed(token):
                        if isinstance(event, parser.EndOfTurn):
                            end_reason = event.reason
                            break
                        if isinstance(event, UserTranscriptDelta):
                            record.user_transcript += event.text
                            yield event
                        elif isinstance(event, ReplyTextDelta):
                            record.reply_text += event.text
                            if first_text_ms is None:
                                first_text_ms = elapsed_ms()
                            yield event
                        elif isinstance(event, parser.SpeechUnits):
                            record.reply_units.extend(event.units)
                            tally.output_audio_tokens = len(record.reply_units)
                            # Off the loop only when a chunk is decoded: a push that only
                            # stores units costs less than the thread hand-off.
                            chunks = (await asyncio.to_thread(decoder.push, event.units)
                                      if decoder.emits_after(len(event.units))
                                      else decoder.push(event.units))
                            for chunk in chunks:
                                if first_audio_ms is None:
                                    first_audio_ms = elapsed_ms()
                                audio_samples += chunk.size
                                yield ReplyAudio(chunk, codec_rate)
                    if stream_parser.done:
                        break
            for event in stream_parser.close():
                if isinstance(event, parser.EndOfTurn):
                    end_reason = event.reason
            if end_reason is parser.EndReason.LENGTH and token in self._stop_ids:
                # the model ended its turn (a stop id the parser had no use for, e.g. `<eosp>`
                # after units it never opened with `<sosp>`): no speech, not the token limit
                end_reason = parser.EndReason.NO_SPEECH
            tail = await asyncio.to_thread(decoder.flush)
            if tail.size:
                if first_audio_ms is None:
                    first_audio_ms = elapsed_ms()
                audio_samples += tail.size
                yield ReplyAudio(tail, codec_rate)
        finally:
            keep(record.past_turn())

        complete = end_reason in (parser.EndReason.COMPLETE, parser.EndReason.NO_SPEECH)
        yield TurnDone(
            status="completed" if complete else "incomplete",
            end_reason=str(end_reason),
            user_transcript=record.user_transcript.strip() if chain.emits_transcript else None,
            reply_text=record.reply_text.strip(),
            timings=TurnTimings(prefill_ms, first_text_ms, first_audio_ms, elapsed_ms()),
            input_tokens=len(prompt_ids),
            cached_input_tokens=handle.cached_tokens,
            output_tokens=record.output_tokens,
            audio_seconds=audio_samples / codec_rate,
            tokens=replace(tally),
        )

    def _audio_tokens(self, ids: Sequence[int]) -> int:
        """How many of `ids` are speech-unit tokens."""
        return sum(1 for i in ids if i in self._unit_id_set)

    def _user_units(self, samples: np.ndarray) -> list[int]:
        """The user's speech at the codec's rate → units, first brought into the trained level
        range (off the event loop: both pass over the whole turn)."""
        if self.input_level_dbfs is not None:
            samples = fit_level(samples, self.codec.sample_rate, *self.input_level_dbfs)
        return self.codec.encode(samples).tolist()

    def _request(self, prompt_ids: list[int]) -> Request:
        """One engine request for a reply: text sampling outside speech, speech sampling and
        unit ids only inside `<sosp>…<eosp>`, stopping at the end of the reply speech."""
        generation = self.generation
        return Request(
            prompt_ids=tuple(prompt_ids),
            max_new_tokens=min(generation.max_new_tokens,
                               self._max_seq_len - len(prompt_ids)),
            sampling=generation.text,
            stop_ids=self._stop_ids,
            segments=(self._speech_rule,),
            seed=generation.seed,
        )
