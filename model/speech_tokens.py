"""The token map of an AnyGPT-format tokenizer: speech unit i ↔ token id, and the special tokens.

`SpeechVocab` is built once from a Hugging Face tokenizer and answers, per token id, "is this a
speech unit (which one), one of the AnyGPT markers, or text?" so that prompt building
(model/template.py) and stream parsing (model/parser.py) work on token ids without string
matching. It knows nothing of chains, models, codecs or files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

SPEECH_PREFIX = "🗣️"  # U+1F5E3 U+FE0F, AnyGPT's speech modality prefix
HUMAN = "[Human]"
ASSISTANT = "[AnyGPT]"
END_OF_HUMAN = "<eoh>"
END_OF_ASSISTANT = "<eos>"
INSTRUCTION_SEP = "<-Ins->"
RESPONSE_SEP = "<-Res->"
SPEECH_START = "<sosp>"
SPEECH_END = "<eosp>"
MARKERS = (
    HUMAN, ASSISTANT, END_OF_HUMAN, END_OF_ASSISTANT, INSTRUCTION_SEP, RESPONSE_SEP, SPEECH_START,
    SPEECH_END,
)
UNIT_RUN_ABBREVIATION = 8  # `describe` shows at most this many units of a run, then a count


def unit_token(unit: int) -> str:
    """The token string of speech unit `unit`: `<🗣️12>`."""
    return f"<{SPEECH_PREFIX}{unit}>"


class MissingTokenError(ValueError):
    """The tokenizer lacks a token the AnyGPT format needs; the message names the token."""


@dataclass(frozen=True)
class MarkerIds:
    """Token ids of the eight AnyGPT markers."""

    human: int
    assistant: int
    end_of_human: int
    end_of_assistant: int
    instruction_sep: int
    response_sep: int
    speech_start: int
    speech_end: int


class SpeechVocab:
    """Token-id view of a tokenizer holding the AnyGPT speech tokens and markers.

    n_units: how many speech units the codec produces. Unit tokens `<🗣️0>…<🗣️n_units-1>` must all
        exist; unit tokens beyond n_units (a tokenizer with more than the codec uses) count as
        non-text, non-unit ids. None: count the consecutive unit tokens present from 0.
    Raises MissingTokenError naming the first missing token.
    """

    def __init__(self, tokenizer: Any, n_units: int | None = None) -> None:
        self.tokenizer = tokenizer
        vocab: dict[str, int] = tokenizer.get_vocab()
        self.size = len(tokenizer)

        def lookup(token: str) -> int:
            if token not in vocab:
                raise MissingTokenError(f"the tokenizer has no token {token!r}")
            return vocab[token]

        self.markers = MarkerIds(*(lookup(token) for token in MARKERS))
        if n_units is None:
            n_units = 0
            while unit_token(n_units) in vocab:
                n_units += 1
        if n_units < 1:
            raise MissingTokenError(
                f"the tokenizer has no speech tokens (the first would be {unit_token(0)!r})"
            )
        self.n_units = n_units
        self.unit_ids: tuple[int, ...] = tuple(lookup(unit_token(u)) for u in range(n_units))
        self._unit_of = {token_id: unit for unit, token_id in enumerate(self.unit_ids)}
        # unit tokens beyond n_units (and anything else shaped like one) are never text
        unit_shaped = (i for token, i in vocab.items() if token.startswith("<" + SPEECH_PREFIX))
        self.bos_id: int | None = tokenizer.bos_token_id
        added = getattr(tokenizer, "added_tokens_decoder", {})
        self.non_text_ids = frozenset(
            [*self.unit_ids, *(getattr(self.markers, f) for f in MarkerIds.__dataclass_fields__),
             *tokenizer.all_special_ids, *added.keys(), *unit_shaped]
        )
        self._encode_cached = lru_cache(maxsize=256)(self._encode)

    # ---- per-id questions ----------------------------------------------------------------

    def unit_of(self, token_id: int) -> int | None:
        """The speech unit a token id stands for, or None if it is not a unit token."""
        return self._unit_of.get(token_id)

    def is_text(self, token_id: int) -> bool:
        """True for ordinary text tokens: not a unit, marker, special or added token, in range."""
        return 0 <= token_id < self.size and token_id not in self.non_text_ids

    # ---- conversions -----------------------------------------------------------------------

    def units_to_ids(self, units: Iterable[int]) -> list[int]:
        """Speech units → their token ids; a unit outside [0, n_units) is a ValueError."""
        out = []
        for unit in units:
            unit = int(unit)
            if not 0 <= unit < self.n_units:
                raise ValueError(f"speech unit {unit} outside [0, {self.n_units})")
            out.append(self.unit_ids[unit])
        return out

    def encode_text(self, text: str) -> list[int]:
        """Text → token ids, without BOS/EOS; repeated strings (template pieces) are cached."""
        return list(self._encode_cached(text))

    def decode_text(self, ids: Sequence[int]) -> str:
        """Text token ids → string, exactly as the tokenizer decodes them (no cleanup)."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=False,
                                     clean_up_tokenization_spaces=False)

    def describe(self, ids: Sequence[int]) -> str:
        """A readable rendering of any id sequence for docs, logs and test failures: markers and
        units by name (long unit runs abbreviated), text decoded."""
        names = {getattr(self.markers, f): token
                 for f, token in zip(MarkerIds.__dataclass_fields__, MARKERS, strict=True)}
        out: list[str] = []
        text: list[int] = []
        units: list[int] = []

        def flush() -> None:
            if text:
                out.append(self.decode_text(text))
                text.clear()
            if units:
                shown = "".join(unit_token(u) for u in units[:UNIT_RUN_ABBREVIATION])
                more = len(units) - UNIT_RUN_ABBREVIATION
                out.append(shown + (f"…(+{more} units)" if more > 0 else ""))
                units.clear()

        for token_id in ids:
            unit = self.unit_of(token_id)
            if unit is not None:
                if text:
                    flush()
                units.append(unit)
            elif self.is_text(token_id):
                if units:
                    flush()
                text.append(token_id)
            else:
                flush()
                out.append(names.get(token_id, f"<id {token_id}>"
                                     if not 0 <= token_id < self.size
                                     else self.tokenizer.convert_ids_to_tokens(token_id)))
        flush()
        return "".join(out)

    def _encode(self, text: str) -> tuple[int, ...]:
        return tuple(self.tokenizer.encode(text, add_special_tokens=False))

