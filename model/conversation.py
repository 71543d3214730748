"""A spoken conversation: its history of turns, and truncation of the last reply after a barge-in.

`Conversation.respond` hands the user's speech and the history to the runtime's `TurnRunner`
(model/turn.py), which owns everything a turn does, and keeps the finished turn. History is kept
per conversation (docs/bundles.md, "History"). Knows no engine, codec or HTTP: only turns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import numpy as np

from model.chain import Chain
from model.template import PastTurn
from model.turn import Event, TokenTally, TurnRunner


class Conversation:
    """One conversation's history over a shared `TurnRunner`; one reply at a time."""

    def __init__(self, turns: TurnRunner, frame_rate: int) -> None:
        """frame_rate: speech units per second of the reply audio (the codec's)."""
        self.turns = turns
        self.frame_rate = frame_rate
        self.history: list[PastTurn] = []

    def reset(self) -> None:
        """Forget every earlier turn."""
        self.history.clear()

    def truncate_last_reply(self, audio_end_ms: int, index: int = -1) -> None:
        """Keep only the first `audio_end_ms` of the last reply's speech (what the user heard,
        after a barge-in), so later turns see the reply as it was played; `index` names an
        earlier turn of the history instead."""
        if not self.history:
            raise ValueError("there is no reply to truncate")
        if audio_end_ms < 0:
            raise ValueError(f"audio_end_ms must be ≥ 0, got {audio_end_ms}")
        frames = int(audio_end_ms * self.frame_rate // 1000)
        turn = self.history[index]
        self.history[index] = replace(turn, reply_units=list(turn.reply_units)[:frames])

    def respond(
        self, samples: np.ndarray, sample_rate: int, *, chain: str | Chain | None = None,
        tally: TokenTally | None = None,
    ) -> AsyncIterator[Event]:
        """Answer the user's speech `samples` (float32 (T,) at `sample_rate`) after this
        conversation's history: `TurnRunner.run`'s events; the turn joins the history when the
        reply ends or is closed early (the partial reply is kept). `tally` counts its tokens."""
        return self.turns.run(samples, sample_rate, chain=chain, history=self.history,
                              keep=self.history.append, tally=tally)

    def respond_typed(self, text: str, *, tally: TokenTally | None = None
                      ) -> AsyncIterator[Event]:
        """Answer typed words (the text-in chain), or with `text` "" answer from the history
        alone (a greeting); kept in the history like a spoken turn."""
        return self.turns.run_typed(text, history=self.history, keep=self.history.append,
                                    tally=tally)

    def forget_reply(self, index: int) -> None:
        """Drop the reply of history turn `index` (the client deleted it): the user's side
        stays, the assistant's text and speech leave the model's history."""
        turn = self.history[index]
        self.history[index] = replace(turn, reply_text="", reply_units=())
