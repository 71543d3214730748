"""Prompts and training examples in the AnyGPT chat template, as token ids, for every chain.

The layout (text form; each marker is one token, speech is `<sosp><🗣️…>…<eosp>`):

    You are [AnyGPT]. You are chatting with [Human]. {INSTRUCTION} <-Ins-> [Human]: {speech} <eoh>
    [AnyGPT]: <-Res-> {transcript}
    [AnyGPT]: {reply text} {speech} <eos>
    [Human]: {speech} <eoh>                          ← each later turn repeats these three lines
    [AnyGPT]: <-Res->                                ← an A-T-T-A prompt ends here

Inference prompts, the conversation history and training examples are all rendered through one
definition of a turn (`_user_ids`, `_assistant_ids`), so training/ and the server agree to the
token. docs/bundles.md ("Chains") says where each chain's prompt ends. Knows nothing of models,
audio or files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from model.chain import Chain
from model.speech_tokens import ASSISTANT, HUMAN, INSTRUCTION_SEP, SpeechVocab

INSTRUCTION = (
    "Step by step, give me the transcript of the provided audio, a chat response to the "
    "transcript, and read the response."
)
_HEADER = ("You are ", ASSISTANT, ". You are chatting with ", HUMAN, f". {INSTRUCTION} ",
           INSTRUCTION_SEP, " ")
_PIECES = (": ", "\n", ":", " ")  # the text between markers inside a turn
TEMPLATE_TEXT = " ".join(p for p in (*_HEADER, *_PIECES) if p not in (ASSISTANT, HUMAN,
                                                                       INSTRUCTION_SEP))


@dataclass(frozen=True)
class PastTurn:
    """One finished exchange as the history keeps it (docs/bundles.md, "History").

    user_units: the user's speech units, always kept (they carry what was said, e.g. a name).
    transcript: the transcript the model wrote (A-T-T-A); "" when the chain wrote none. For a
        typed turn, the typed words (the text-in chain puts them where A-T-T-A's transcript is).
    reply_text: the reply text the model wrote; "" for A-A.
    reply_units: the reply's speech units.
    typed: the user typed `transcript` instead of speaking (`user_units` is empty); a turn with
        neither speech nor typed words is a reply from the conversation alone (a greeting).
    """

    user_units: Sequence[int]
    transcript: str = ""
    reply_text: str = ""
    reply_units: Sequence[int] = ()
    typed: bool = False


@dataclass(frozen=True)
class Prompt:
    """Token ids to prefill, and how many history turns the budget kept (newest first kept)."""

    ids: list[int]
    turns_kept: int
    turns_dropped: int


@dataclass(frozen=True)
class Example:
    """A training sequence: `ids[:boundary]` is exactly what the chain's inference prompt would
    be, `ids[boundary:]` what the model should generate (ending with `<eos>`).

    transcript_kept / transcript_total: transcript tokens left after dropping the first k, and
    their number before dropping (both 0 for chains that write no transcript).
    """

    ids: list[int]
    boundary: int
    transcript_kept: int
    transcript_total: int
    turns_kept: int

    @property
    def prompt_ids(self) -> list[int]:
        return self.ids[: self.boundary]

    @property
    def target_ids(self) -> list[int]:
        return self.ids[self.boundary:]


class PromptTooLongError(ValueError):
    """The current turn alone does not fit the token budget."""


class Template:
    """Renders prompts and examples with one tokenizer's ids (see the module docstring)."""

    def __init__(self, vocab: SpeechVocab) -> None:
        self.vocab = vocab
        m = vocab.markers
        self._marker_ids = {ASSISTANT: m.assistant, HUMAN: m.human,
                            INSTRUCTION_SEP: m.instruction_sep}
        self.header_ids: list[int] = ([] if vocab.bos_id is None else [vocab.bos_id]) + [
            i for piece in _HEADER for i in self._piece_ids(piece)
        ]

    # ---- inference ---------------------------------------------------------------------------

    def prompt(
        self,
        chain: Chain,
        user_units: Sequence[int],
        history: Sequence[PastTurn] = (),
        max_tokens: int | None = None,
    ) -> Prompt:
        """The prompt that makes the model answer `user_units` with `chain`, after as many of the
        newest `history` turns as fit in `max_tokens` (None: all)."""
        tail = self._user_ids(user_units) + self._assistant_ids(chain=chain)
        kept = self._fit_history(len(tail), history, max_tokens)
        return Prompt(self._join(kept, tail), len(kept), len(history) - len(kept))

    def typed_prompt(
        self,
        text: str,
        history: Sequence[PastTurn] = (),
        max_tokens: int | None = None,
    ) -> Prompt:
        """The text-in chain: typed words → reply text → reply speech. The user line holds the
        typed words and the assistant's first line repeats them where A-T-T-A writes its
        transcript, so the model goes on exactly as after an A-T-A prompt (reply text, then
        speech). `text` "" answers from the conversation alone: no user line (a greeting)."""
        tail = (self._typed_user_ids(text)
                + self._assistant_ids(self.transcript_ids(text), chain=Chain.ATA))
        kept = self._fit_history(len(tail), history, max_tokens)
        return Prompt(self._join(kept, tail), len(kept), len(history) - len(kept))

    def turn_ids(self, turn: PastTurn) -> list[int]:
        """A finished exchange as it appears in later prompts (ends with `<eos>` and a newline)."""
        transcript = self.transcript_ids(turn.transcript)
        user = (self._typed_user_ids(turn.transcript) if turn.typed
                else self._user_ids(turn.user_units))
        return (user + self._assistant_ids(transcript, turn.reply_text, turn.reply_units)
                + self.vocab.encode_text("\n"))

    # ---- training ----------------------------------------------------------------------------

    def example(
        self,
        chain: Chain,
        user_units: Sequence[int],
        transcript: str,
        reply_text: str,
        reply_units: Sequence[int],
        history: Sequence[PastTurn] = (),
        transcript_drop: int = 0,
        max_tokens: int | None = None,
    ) -> Example:
        """A full training sequence for `chain`: prompt + target with the boundary between.

        transcript_drop: for A-T-T-A, delete the first k transcript tokens (stepwise
            internalization); with every token dropped the ids equal the A-T-A example's. Ignored by
            chains that write no transcript.
        max_tokens: budget for the whole sequence; the oldest history turns go first.
        """
        if transcript_drop < 0:
            raise ValueError(f"transcript_drop must be ≥ 0, got {transcript_drop}")
        all_transcript = self.transcript_ids(transcript) if chain.emits_transcript else []
        kept_transcript = all_transcript[transcript_drop:]
        user = self._user_ids(user_units)
        cut = len(self._assistant_ids(chain=chain))
        reply = self._assistant_ids(kept_transcript, reply_text if chain.emits_reply_text else "",
                                    reply_units)
        kept = self._fit_history(len(user) + len(reply), history, max_tokens)
        ids = self._join(kept, user + reply)
        boundary = len(ids) - len(reply) + cut
        return Example(ids, boundary, len(kept_transcript), len(all_transcript), len(kept))

    def typed_example(
        self,
        text: str,
        reply_text: str,
        reply_units: Sequence[int] = (),
        history: Sequence[PastTurn] = (),
        max_tokens: int | None = None,
    ) -> Example:
        """The text-in chain as a training sequence: exactly `typed_prompt(text)`, then the reply
        text and the reply speech (an empty speech segment when `reply_units` is empty: text
        chat, text in and text out, as training/ teaches before any speech)."""
        words = self.transcript_ids(text)
        user = self._typed_user_ids(text)
        cut = len(self._assistant_ids(words, chain=Chain.ATA))
        reply = self._assistant_ids(words, reply_text, reply_units)
        kept = self._fit_history(len(user) + len(reply), history, max_tokens)
        ids = self._join(kept, user + reply)
        return Example(ids, len(ids) - len(reply) + cut, 0, 0, len(kept))

    def transcript_ids(self, transcript: str) -> list[int]:
        """The transcript's tokens as the template writes them (ICoT drops them k at a time)."""
        transcript = transcript.strip()
        return self.vocab.encode_text(" " + transcript) if transcript else []

    # ---- one turn ----------------------------------------------------------------------------

    def _user_ids(self, units: Sequence[int]) -> list[int]:
        m, enc = self.vocab.markers, self.vocab.encode_text
        return ([m.human, *enc(": "), m.speech_start, *self.vocab.units_to_ids(units),
                 m.speech_end, *enc(" "), m.end_of_human, *enc("\n")])

    def _typed_user_ids(self, text: str) -> list[int]:
        """`[Human]: {typed words} <eoh>` and a newline; nothing for no words."""
        text = text.strip()
        if not text:
            return []
        m, enc = self.vocab.markers, self.vocab.encode_text
        return [m.human, *enc(": " + text + " "), m.end_of_human, *enc("\n")]

    def _assistant_ids(
        self,
        transcript_ids: Sequence[int] = (),
        reply_text: str = "",
        reply_units: Sequence[int] = (),
        chain: Chain | None = None,
    ) -> list[int]:
        """The assistant's two lines, ending with `<eos>`; with `chain`, only the part the
        chain's prompt contains (A-T-T-A: through `<-Res->`; A-T-A: through the second
        `[AnyGPT]:`; A-A: through its `<sosp>`)."""
        m, enc = self.vocab.markers, self.vocab.encode_text
        ids = [m.assistant, *enc(": "), m.response_sep]
        if chain is Chain.ATTA:
            return ids
        ids += [*transcript_ids, *enc("\n"), m.assistant, *enc(":")]
        if chain is Chain.ATA:
            return ids
        reply_text = reply_text.strip()
        if reply_text:
            ids += enc(" " + reply_text)
        ids += [*enc(" "), m.speech_start]
        if chain is Chain.AA:
            return ids
        return ids + [*self.vocab.units_to_ids(reply_units), m.speech_end, *enc(" "),
                      m.end_of_assistant]

    # ---- history -----------------------------------------------------------------------------

    def _fit_history(
        self, tail_tokens: int, history: Sequence[PastTurn], max_tokens: int | None
    ) -> list[list[int]]:
        """Rendered history turns (oldest first) that fit beside the header and a tail of
        `tail_tokens`; the oldest go first. Raises PromptTooLongError if the tail alone is over."""
        used = len(self.header_ids) + tail_tokens
        if max_tokens is not None and used > max_tokens:
            raise PromptTooLongError(
                f"the current turn needs {used} tokens with the instruction; the budget is "
                f"{max_tokens} (shorten the audio or raise the context)"
            )
        kept: list[list[int]] = []
        for turn in reversed(history):
            ids = self.turn_ids(turn)
            if max_tokens is not None and used + len(ids) > max_tokens:
                break
            kept.append(ids)
            used += len(ids)
        return kept[::-1]

    def _join(self, turns: list[list[int]], tail: list[int]) -> list[int]:
        return [*self.header_ids, *(i for turn in turns for i in turn), *tail]

    def _piece_ids(self, piece: str) -> list[int]:
        marker = self._marker_ids.get(piece)
        return [marker] if marker is not None else self.vocab.encode_text(piece)
