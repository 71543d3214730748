"""Reader for SODA-TTS (robinysh/soda_tts): the paper's training data, one dialogue turn a row.

The dataset is parquet on the Hugging Face hub, `data/{split}-NNNNN-of-NNNNN.parquet` for splits
train (663,103 rows), validation (6,622) and test (6,540), with columns input_audio,
output_audio (audio structs), original_index, dialogue_turn, input_tts_wer, output_tts_wer
(int64 / float64), input_tokens, output_tokens (SpeechTokenizer layer-1 units written as
`<🗣️12><🗣️7>…` strings) and input_transcript, output_transcript. This module reads only the
text and unit columns of a local copy (never the audio, never the network), parses the units,
applies the paper's filters and yields typed `SodaExample`s. It knows nothing of prompts,
tokenizers or models.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from model.speech_tokens import SPEECH_END, SPEECH_START

SPLITS = ("train", "validation", "test")
SPEECHTOKENIZER_UNITS = 1024  # codebook size of RVQ layer 1
PAPER_MAX_SPEECH_TOKENS = 500  # the paper dropped turns longer than this
REQUIRED_COLUMNS = (
    "input_tokens", "output_tokens", "input_transcript", "output_transcript", "dialogue_turn",
)
OPTIONAL_COLUMNS = ("original_index", "input_tts_wer", "output_tts_wer")
# `<🗣️12>`; the variation selector U+FE0F after U+1F5E3 is optional in what we accept.
_UNIT_TOKEN_RE = re.compile("<\U0001f5e3\ufe0f?([0-9]+)>")


class SodaError(ValueError):
    """A SODA-TTS file or row that cannot be read; the message names the file, row and column."""


@dataclass(frozen=True)
class SodaExample:
    """One turn: the user's speech and its transcript, the reply's text and speech."""

    user_units: tuple[int, ...]
    transcript: str
    reply_text: str
    reply_units: tuple[int, ...]
    turn: int
    """dialogue_turn: the turn's position in its dialogue."""
    dialogue_id: int | None = None
    """original_index: the SODA dialogue the turn comes from (rows of a dialogue share it)."""
    input_tts_wer: float | None = None
    output_tts_wer: float | None = None

    def to_record(self) -> dict[str, Any]:
        """JSON data for a corpus shard (training/data/shards.py)."""
        return {
            "user_units": list(self.user_units),
            "transcript": self.transcript,
            "reply_text": self.reply_text,
            "reply_units": list(self.reply_units),
            "turn": self.turn,
            "dialogue_id": self.dialogue_id,
            "input_tts_wer": self.input_tts_wer,
            "output_tts_wer": self.output_tts_wer,
        }


@dataclass(frozen=True)
class SodaFilter:
    """Which rows to keep.

    max_speech_tokens: drop a turn whose user or reply speech has more units (the paper: 500).
    max_tts_wer: drop a row whose input or output TTS WER is above this, or unknown (None):
        a threshold keeps only speech whose synthesis was checked. None keeps every row.
    """

    max_speech_tokens: int | None = PAPER_MAX_SPEECH_TOKENS
    max_tts_wer: float | None = None

    def __post_init__(self) -> None:
        if self.max_speech_tokens is not None and self.max_speech_tokens < 1:
            raise ValueError(f"max_speech_tokens must be ≥ 1 or None, got {self.max_speech_tokens}")
        if self.max_tts_wer is not None and not self.max_tts_wer >= 0:
            raise ValueError(f"max_tts_wer must be ≥ 0 or None, got {self.max_tts_wer}")

    def reject_reason(self, example: SodaExample) -> str | None:
        """Why `example` is dropped ("too_long", "tts_wer", "empty"), or None to keep it."""
        if not example.user_units or not example.reply_units:
            return "empty"
        if self.max_speech_tokens is not None and (
            max(len(example.user_units), len(example.reply_units)) > self.max_speech_tokens
        ):
            return "too_long"
        if self.max_tts_wer is not None:
            for wer in (example.input_tts_wer, example.output_tts_wer):
                if wer is None or wer > self.max_tts_wer:
                    return "tts_wer"
        return None


def parse_units(value: Any, *, n_units: int = SPEECHTOKENIZER_UNITS) -> tuple[int, ...]:
    """Units from a `<sosp><🗣️12><🗣️7>…<eosp>` string (markers and spaces optional) or from a
    list of ints; anything else in the string, or a unit outside [0, n_units), is a ValueError."""
    if isinstance(value, str):
        text = value.strip()
        text = text.removeprefix(SPEECH_START).removesuffix(SPEECH_END)
        units = tuple(int(match) for match in _UNIT_TOKEN_RE.findall(text))
        leftover = _UNIT_TOKEN_RE.sub("", text).strip()
        if leftover:
            raise ValueError(f"unexpected text among the speech tokens: {leftover[:40]!r}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes):
        if any(isinstance(unit, bool) or not isinstance(unit, int) for unit in value):
            raise ValueError("a unit list must hold integers only")
        units = tuple(value)
    else:
        raise ValueError(f"expected a unit string or a list of ints, got {type(value).__name__}")
    bad = [unit for unit in units if not 0 <= unit < n_units]
    if bad:
        raise ValueError(f"unit {bad[0]} outside [0, {n_units})")
    return units


def soda_files(directory: str | Path, split: str) -> list[Path]:
    """The parquet files of `split` in a local copy, in order.

    Accepts the hub's layout (`data/{split}-*.parquet`), the parquet-converter branch
    (`default/{split}/*.parquet`) and a flat folder (`{split}-*.parquet`).
    """
    directory = Path(directory)
    patterns = (f"data/{split}-*.parquet", f"default/{split}/*.parquet", f"{split}-*.parquet")
    for pattern in patterns:
        files = sorted(directory.glob(pattern))
        if files:
            return files
    raise SodaError(
        f"{directory}: no parquet files for split {split!r} (looked for {', '.join(patterns)})"
    )


def count_rows(directory: str | Path, split: str) -> int:
    """Rows of `split` before filtering, from the parquet footers (reads no data)."""
    return sum(pq.ParquetFile(path).metadata.num_rows for path in soda_files(directory, split))


def _optional_float(value: Any) -> float | None:
    """A WER cell as a float; null and NaN both mean "not measured" and become None."""
    if value is None or math.isnan(value):
        return None
    return float(value)


def _example(row: dict[str, Any], n_units: int, where: str) -> SodaExample:
    fields = {}
    for column, name in (("input_tokens", "user_units"), ("output_tokens", "reply_units")):
        try:
            fields[name] = parse_units(row[column], n_units=n_units)
        except ValueError as error:
            raise SodaError(f"{where}, column {column}: {error}") from None
    for column in ("input_transcript", "output_transcript", "dialogue_turn"):
        if row[column] is None:
            raise SodaError(f"{where}, column {column}: null")
    return SodaExample(
        user_units=fields["user_units"],
        transcript=str(row["input_transcript"]).strip(),
        reply_text=str(row["output_transcript"]).strip(),
        reply_units=fields["reply_units"],
        turn=int(row["dialogue_turn"]),
        dialogue_id=row.get("original_index"),
        input_tts_wer=_optional_float(row.get("input_tts_wer")),
        output_tts_wer=_optional_float(row.get("output_tts_wer")),
    )


def read_soda(
    directory: str | Path,
    split: str,
    keep: SodaFilter | None = None,
    *,
    start: int = 0,
    stop: int | None = None,
    n_units: int = SPEECHTOKENIZER_UNITS,
    stats: Counter[str] | None = None,
) -> Iterator[SodaExample]:
    """Yield the kept examples among rows start..stop-1 of `split` (row numbers before filtering,
    counted across the split's files in order, so a corpus shard can ask for its range).

    keep: the filter (default: the paper's 500-unit limit). stats, if given, counts rows read
    ("rows"), kept ("kept") and dropped by reason. Reads row groups only where the range needs
    them, and only the text and unit columns.
    """
    keep = SodaFilter() if keep is None else keep
    stats = Counter() if stats is None else stats
    offset = 0  # row number of the current row group's first row within the split
    for path in soda_files(directory, split):
        file_first = offset
        parquet = pq.ParquetFile(path)
        names = set(parquet.schema_arrow.names)
        missing = [column for column in REQUIRED_COLUMNS if column not in names]
        if missing:
            raise SodaError(f"{path}: missing column(s) {', '.join(missing)}")
        columns = [*REQUIRED_COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in names)]
        for group in range(parquet.num_row_groups):
            group_rows = parquet.metadata.row_group(group).num_rows
            first, last = offset, offset + group_rows
            offset = last
            if last <= start or (stop is not None and first >= stop):
                continue
            rows = parquet.read_row_group(group, columns=columns).to_pylist()
            for index, row in enumerate(rows, start=first):
                if index < start or (stop is not None and index >= stop):
                    continue
                stats["rows"] += 1
                example = _example(row, n_units, f"{path.name} row {index - file_first}")
                reason = keep.reject_reason(example)
                if reason is None:
                    stats["kept"] += 1
                    yield example
                else:
                    stats[reason] += 1
        if stop is not None and offset >= stop:
            return
