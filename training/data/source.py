"""What a corpus source is: where a recipe's dialogues come from (the demo domain, SODA-TTS).

A source fits the unit codec on its own audio (or refuses: its units come with it), builds or
opens the sharded corpus its recipe describes, knows the speech level of its user turns, and
gives the dialogues an evaluation speaks to the bundles (`EvalTurn`: user audio and the
references). The pipeline (training/pipeline.py) and `icot eval` talk to sources through this
contract only. Defines the contract; knows no source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from model.codecs import SpeechCodec
from training.data.shards import Corpus


@dataclass(frozen=True)
class EvalTurn:
    """One user turn to answer: its audio (float32 (T,) at `sample_rate`) and the references."""

    transcript: str
    reply_text: str
    audio: np.ndarray = field(repr=False)
    sample_rate: int
    intent: str | None = None
    category: str | None = None
    """What the turn tests (the demo domain's `Category`: seen, unseen sums, …), if known."""


EvalDialogue = Sequence[EvalTurn]


class SourceError(ValueError):
    """A source cannot do what was asked (fit a codec, give evaluation dialogues); the message
    says why and what to do instead."""


class CorpusSource(Protocol):
    """One recipe's corpus: see the module docstring."""

    def fit_codec(self, directory: Path, progress: bool) -> None:
        """Fit the unit codec on this source's audio and save it to `directory`."""

    def build_corpus(self, codec: SpeechCodec, progress: bool) -> None:
        """Build (or resume building) the corpus in the recipe's data.corpus_dir."""

    def open_corpus(self, codec: SpeechCodec) -> Corpus:
        """The corpus a build left in data.corpus_dir; CorpusError when it is missing or was
        built for another recipe or codec."""

    def input_level_dbfs(self) -> tuple[float, float] | None:
        """The 1st–99th percentile speech level of the training user turns (None: unknown)."""

    def split_voices(self, split: str) -> str:
        """Who speaks the user turns of `split`, for the results page."""

    def dialogues(self, split: str, limit: int | None = None,
                  condition: Any = None) -> list[list[EvalTurn]]:
        """The first `limit` dialogues of `split` (None: all) with their user audio, voiced under
        `condition` where the source can re-voice them; SourceError when it has no audio."""
