"""Corpus records → turns with their history → the token sequences each training stage learns.

A record is one dialogue (`{"turns": [...]}`, the demo corpus) or one turn (the SODA corpus:
user_units, transcript, reply_text, reply_units). `turn_items` expands a record into one
`TurnItem` per turn, carrying the earlier turns of its dialogue as history. `Renderer` turns an
item into a `Rendered` sequence for a stage through model/template.py, so training sees exactly
the token layout the server prompts with. Knows nothing of models, optimizers or files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from model.chain import Chain
from model.template import PastTurn, Template

TURN_FIELDS = ("user_units", "transcript", "reply_text", "reply_units")


@dataclass(frozen=True)
class TurnItem:
    """One turn to learn, with the dialogue's earlier turns (oldest first) as its history.

    History turns carry no history of their own; `intent` is the demo domain's label, if any.
    """

    user_units: tuple[int, ...]
    transcript: str
    reply_text: str
    reply_units: tuple[int, ...]
    history: tuple[TurnItem, ...] = ()
    intent: str | None = None


def _turn(raw: Mapping[str, Any], where: str) -> TurnItem:
    missing = [name for name in TURN_FIELDS if name not in raw]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
    return TurnItem(
        user_units=tuple(int(u) for u in raw["user_units"]),
        transcript=str(raw["transcript"]),
        reply_text=str(raw["reply_text"]),
        reply_units=tuple(int(u) for u in raw["reply_units"]),
        intent=raw.get("intent"),
    )


def approx_tokens(item: TurnItem) -> int:
    """About how many tokens the item renders to (speech units and words of every turn), for
    grouping turns of similar length; not exact for any tokenizer."""
    turns = (*item.history, item)
    return sum(len(t.user_units) + len(t.reply_units) + len(t.transcript.split())
               + len(t.reply_text.split()) for t in turns)


def turn_items(record: Mapping[str, Any], max_history: int) -> list[TurnItem]:
    """Every turn of `record` as a TurnItem with up to `max_history` earlier turns of history."""
    if max_history < 0:
        raise ValueError(f"max_history must be ≥ 0, got {max_history}")
    if "turns" not in record:
        return [_turn(record, "record")]
    turns = [_turn(raw, f"turn {i}") for i, raw in enumerate(record["turns"])]
    items = []
    for index, turn in enumerate(turns):
        history = tuple(turns[max(0, index - max_history):index]) if max_history else ()
        items.append(TurnItem(turn.user_units, turn.transcript, turn.reply_text,
                              turn.reply_units, history, turn.intent))
    return items


@dataclass(frozen=True)
class Rendered:
    """A training sequence: the loss covers `ids[boundary:]`.

    speech_positions: positions of the current reply's speech tokens (units and the closing
        `<eosp>`); the logits at p − 1 predict them (what the KL term compares).
    removed: tokens deleted from the chain (transcript, or reply text for A-A) by the schedule.
    teacher: the frozen stage-1 model's view of the same turn (full A-T-T-A), for the KL term.
    """

    ids: list[int]
    boundary: int
    speech_positions: tuple[int, ...]
    removed: int = 0
    teacher: Rendered | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.boundary < len(self.ids):
            raise ValueError(f"boundary {self.boundary} outside (0, {len(self.ids)})")


class Renderer:
    """Renders TurnItems for each stage with one Template and a token budget per sequence.

    History policy (docs/training.md): stage 1 renders earlier turns as the A-T-T-A server keeps
    them (with their transcripts); every stage that internalizes the transcript renders them
    with an empty transcript, as the A-T-A server keeps them, and A-A stages also without reply
    text. A sequence over `max_tokens` drops its oldest history turns (Template's rule); a turn
    that alone exceeds it raises PromptTooLongError.
    """

    def __init__(self, template: Template, max_tokens: int) -> None:
        self.template = template
        self.max_tokens = max_tokens
        markers = template.vocab.markers
        self._speech_start = markers.speech_start
        self._speech_end = markers.speech_end

    def transcript_len(self, item: TurnItem) -> int:
        """Tokens of the item's transcript: what stage 2 removes."""
        return len(self.template.transcript_ids(item.transcript))

    def reply_text_len(self, item: TurnItem) -> int:
        """Tokens of the item's reply text: what the A-A stage removes."""
        return len(self.template.transcript_ids(item.reply_text))

    def atta(self, item: TurnItem) -> Rendered:
        """Stage 1 (and the KL teacher's view): the explicit chain, nothing removed."""
        return self._example(Chain.ATTA, item, self._history(item, transcripts=True))

    def icot(self, item: TurnItem, drop: int, *, teacher: bool = False) -> Rendered:
        """Stage 2: A-T-T-A with the first `drop` transcript tokens deleted (all of them: the
        A-T-A example); `teacher` attaches the full A-T-T-A rendering."""
        history = self._history(item, transcripts=False)
        rendered = self._example(Chain.ATTA, item, history, transcript_drop=drop)
        return self._with_teacher(rendered, item, teacher)

    def typed(self, item: TurnItem, *, speech: bool = True) -> Rendered:
        """The text-in chain: the transcript typed, then reply text and reply speech (without
        `speech`, an empty speech segment: stage 0's text chat). History turns are typed too."""
        history = [PastTurn((), turn.transcript, turn.reply_text,
                            turn.reply_units if speech else (), typed=True)
                   for turn in item.history]
        example = self.template.typed_example(
            item.transcript, item.reply_text, item.reply_units if speech else (),
            history=history, max_tokens=self.max_tokens)
        return Rendered(example.ids, example.boundary, self._speech_positions(example.ids))

    def ata(self, item: TurnItem) -> Rendered:
        """The no-CoT baseline: the A-T-A chain directly."""
        return self._example(Chain.ATA, item, self._history(item, transcripts=False))

    def aa_icot(self, item: TurnItem, drop: int, *, teacher: bool = False) -> Rendered:
        """A-A with ICoT: the A-T-A example with the first `drop` reply-text tokens deleted as
        well; with all of them gone, the A-A example (its prompt ends at the reply's `<sosp>`)."""
        history = self._history(item, transcripts=False, reply_texts=False)
        full = self._example(Chain.ATA, item, history)
        reply = self.template.transcript_ids(item.reply_text)
        drop = min(drop, len(reply))
        start = full.boundary
        if full.ids[start:start + len(reply)] != reply:
            raise AssertionError("the A-T-A target does not start with the reply text")
        ids = full.ids[:start] + full.ids[start + drop:]
        boundary = start
        if drop == len(reply):  # the A-A prompt runs through the reply's <sosp>
            boundary = ids.index(self._speech_start, start) + 1
        rendered = Rendered(ids, boundary, self._speech_positions(ids), removed=drop)
        return self._with_teacher(rendered, item, teacher)

    def _with_teacher(self, rendered: Rendered, item: TurnItem, teacher: bool) -> Rendered:
        if not teacher:
            return rendered
        return Rendered(rendered.ids, rendered.boundary, rendered.speech_positions,
                        rendered.removed, self.atta(item))

    def _history(
        self, item: TurnItem, *, transcripts: bool, reply_texts: bool = True
    ) -> list[PastTurn]:
        return [PastTurn(turn.user_units, turn.transcript if transcripts else "",
                         turn.reply_text if reply_texts else "", turn.reply_units)
                for turn in item.history]

    def _example(
        self, chain: Chain, item: TurnItem, history: Sequence[PastTurn], transcript_drop: int = 0
    ) -> Rendered:
        example = self.template.example(
            chain, item.user_units, item.transcript, item.reply_text, item.reply_units,
            history=history, transcript_drop=transcript_drop, max_tokens=self.max_tokens,
        )
        removed = example.transcript_total - example.transcript_kept
        return Rendered(example.ids, example.boundary, self._speech_positions(example.ids),
                        removed)

    def _speech_positions(self, ids: Sequence[int]) -> tuple[int, ...]:
        """Positions of the last speech segment's units and its `<eosp>` (the reply's)."""
        start = len(ids) - 1 - ids[::-1].index(self._speech_start)
        end = ids.index(self._speech_end, start)
        return tuple(range(start + 1, end + 1))
