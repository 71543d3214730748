"""Incremental parser of a generated token stream into typed events, for any chain.

Feed token ids as they are sampled; get `UserTranscriptDelta` (what the model heard the user
say), `ReplyTextDelta` (what it answers), `SpeechUnits` and finally one `EndOfTurn`. The parser
never raises on model output, whatever it is:
- a speech segment is `<sosp>…<eosp>`; only unit tokens inside it become `SpeechUnits`, text
  inside it is dropped, and `<eosp>` completes the turn (the engine can stop there);
- a speech segment cut by `<eos>`, a new turn's marker or `close()` ends the turn as
  "unterminated_speech"; units outside a segment and unknown special tokens are dropped;
- text deltas are decoded from the accumulated ids of the segment, so characters spanning
  several tokens (byte fallback) come out whole: a trailing U+FFFD and trailing whitespace are
  held back until more text follows.
Knows token ids and the tokenizer only (through SpeechVocab); nothing of models, audio or sessions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from model.chain import Chain
from model.speech_tokens import SpeechVocab

_HELD_BACK_RE = re.compile(r"[\s\ufffd]+$")  # trailing whitespace / incomplete character
_LEADING_SPACE_RE = re.compile(r"^\s*")
_ROLE_PREFIX_RE = re.compile(r"^\s*:?\s*")  # the ": " after a generated `[AnyGPT]`


@dataclass(frozen=True)
class UserTranscriptDelta:
    """New text of the user's transcript (A-T-T-A only): what the model heard, not its reply."""

    text: str


@dataclass(frozen=True)
class ReplyTextDelta:
    """New text of the assistant's reply (A-T-T-A, A-T-A)."""

    text: str


@dataclass(frozen=True)
class SpeechUnits:
    """Reply speech units, in order, each in [0, n_units)."""

    units: list[int]


class EndReason(StrEnum):
    COMPLETE = "complete"  # `<eosp>` closed the reply speech
    NO_SPEECH = "no_speech"  # the turn ended (`<eos>` or a new turn's marker) before any speech
    UNTERMINATED_SPEECH = "unterminated_speech"  # speech cut by `<eos>`, a marker or close()
    LENGTH = "length"  # close() before any speech: the token limit ran out


@dataclass(frozen=True)
class EndOfTurn:
    reason: EndReason


Event = UserTranscriptDelta | ReplyTextDelta | SpeechUnits | EndOfTurn


class Phase(StrEnum):
    TRANSCRIPT = "transcript"
    REPLY_TEXT = "reply_text"
    SPEECH = "speech"
    DONE = "done"


_START_PHASE = {Chain.ATTA: Phase.TRANSCRIPT, Chain.ATA: Phase.REPLY_TEXT, Chain.AA: Phase.SPEECH}


class ChainParser:
    """Parses what the model generates after `Template.prompt(chain, …)` (one turn)."""

    def __init__(self, vocab: SpeechVocab, chain: Chain) -> None:
        self.vocab = vocab
        self.chain = chain
        self.phase = _START_PHASE[chain]
        m = vocab.markers
        self._turn_enders = {m.end_of_assistant, m.human, m.end_of_human, m.instruction_sep}
        self._text_ids: list[int] = []  # ids of the current text segment
        self._emitted = ""  # what this segment has emitted so far
        self._strip_role_prefix = False  # the segment follows a generated `[AnyGPT]`

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    @property
    def in_speech(self) -> bool:
        """True while the next token is expected to be a speech unit (speech sampling applies)."""
        return self.phase is Phase.SPEECH

    def feed(self, token_id: int) -> list[Event]:
        """Consume one generated token id; return the events it completes (often none)."""
        token_id = int(token_id)
        m = self.vocab.markers
        if self.phase is Phase.DONE:
            return []
        if self.phase is Phase.SPEECH:
            unit = self.vocab.unit_of(token_id)
            if unit is not None:
                return [SpeechUnits([unit])]
            if token_id == m.speech_end:
                return self._end(EndReason.COMPLETE)
            if token_id in self._turn_enders or token_id == m.assistant:
                return self._end(EndReason.UNTERMINATED_SPEECH)
            return []  # text or stray specials inside speech are dropped
        # a text phase: transcript or reply text
        if self.vocab.is_text(token_id):
            self._text_ids.append(token_id)
            return self._text_delta(final=False)
        if token_id == m.speech_start:
            events = self._text_delta(final=True)
            self.phase = Phase.SPEECH
            return events
        if token_id == m.assistant and self.phase is Phase.TRANSCRIPT:
            events = self._text_delta(final=True)
            self.phase = Phase.REPLY_TEXT
            self._strip_role_prefix = True
            return events
        if token_id in self._turn_enders:
            return self._text_delta(final=True) + self._end(EndReason.NO_SPEECH)
        return []  # `<-Res->`, `<eosp>`, units outside speech, other specials: dropped

    def close(self) -> list[Event]:
        """The stream ended (token limit or cancellation): flush text and end the turn."""
        if self.phase is Phase.DONE:
            return []
        if self.phase is Phase.SPEECH:
            return self._end(EndReason.UNTERMINATED_SPEECH)
        return self._text_delta(final=True) + self._end(EndReason.LENGTH)

    def _end(self, reason: EndReason) -> list[Event]:
        self.phase = Phase.DONE
        return [EndOfTurn(reason)]

    def _text_delta(self, *, final: bool) -> list[Event]:
        """Emit the new stable suffix of the segment's decoded text; `final` closes the segment."""
        text = self.vocab.decode_text(self._text_ids) if self._text_ids else ""
        text = (_ROLE_PREFIX_RE if self._strip_role_prefix else _LEADING_SPACE_RE).sub("", text, 1)
        stable = _HELD_BACK_RE.sub("", text)
        # decoding is prefix-stable for the tokenizers we build; if one rewrites earlier text we
        # still never repeat or retract: emit from the same character position
        new = stable[len(self._emitted):]
        if final:
            self._text_ids, self._emitted, self._strip_role_prefix = [], "", False
        elif new:
            self._emitted = stable
        if not new:
            return []
        if self.phase is Phase.TRANSCRIPT:
            return [UserTranscriptDelta(new)]
        return [ReplyTextDelta(new)]
