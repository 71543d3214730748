"""SODA-TTS reader on tiny parquet shards written here in the dataset's schema."""

from __future__ import annotations

import math
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from training.data.shards import Corpus, SplitPlan, build_corpus
from training.data.soda import (
    SodaError,
    SodaFilter,
    count_rows,
    parse_units,
    read_soda,
    soda_files,
)

AUDIO = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
SCHEMA = pa.schema([
    ("input_audio", AUDIO),
    ("original_index", pa.int64()),
    ("dialogue_turn", pa.int64()),
    ("input_tts_wer", pa.float64()),
    ("output_tts_wer", pa.float64()),
    ("input_tokens", pa.string()),
    ("output_tokens", pa.string()),
    ("input_transcript", pa.string()),
    ("output_transcript", pa.string()),
    ("output_audio", AUDIO),
])


def units_string(units) -> str:
    return "<sosp>" + "".join(f"<🗣️{u}>" for u in units) + "<eosp>"


def make_row(i: int, *, reply_len: int = 6, in_wer: float | None = 0.0, out_wer=0.05) -> dict:
    return {
        "input_audio": {"bytes": b"RIFF....", "path": f"in-{i}.wav"},
        "original_index": 100 + i // 2,
        "dialogue_turn": i % 2,
        "input_tts_wer": in_wer,
        "output_tts_wer": out_wer,
        "input_tokens": units_string([(i * 7 + k) % 1024 for k in range(5)]),
        "output_tokens": units_string([(i * 13 + k) % 1024 for k in range(reply_len)]),
        "input_transcript": f" Hi, this is row {i}. ",
        "output_transcript": f"Reply number {i}!",
        "output_audio": {"bytes": b"RIFF....", "path": f"out-{i}.wav"},
    }


def write_shard(path, rows, row_group_size=2):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path, row_group_size=row_group_size)


@pytest.fixture
def soda_dir(tmp_path):
    rows = [make_row(i) for i in range(10)]
    rows[2] = make_row(2, reply_len=501)  # longer than the paper's 500-unit limit
    rows[3] = make_row(3, reply_len=500)  # exactly at the limit: kept
    rows[5] = make_row(5, out_wer=0.4)
    rows[6] = make_row(6, in_wer=None)
    rows[7] = make_row(7, out_wer=math.nan)
    write_shard(tmp_path / "data" / "train-00000-of-00002.parquet", rows[:6])
    write_shard(tmp_path / "data" / "train-00001-of-00002.parquet", rows[6:])
    write_shard(tmp_path / "data" / "validation-00000-of-00001.parquet", [make_row(50)])
    return tmp_path


def test_parse_units_accepts_the_dataset_spellings():
    assert parse_units("<sosp><🗣️12><🗣️7><eosp>") == (12, 7)
    assert parse_units(" <🗣️0> <🗣️1023> ") == (0, 1023)
    assert parse_units("<\U0001f5e35>") == (5,)  # without the variation selector
    assert parse_units([3, 4]) == (3, 4)
    assert parse_units("<sosp><eosp>") == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("<🗣️12>hello<🗣️7>", "unexpected text"),
        ("<🗣️1024>", "outside"),
        ([1, True], "integers only"),
        (3.5, "expected a unit string"),
    ],
)
def test_parse_units_rejects_anything_else(value, message):
    with pytest.raises(ValueError, match=message):
        parse_units(value)


def test_reads_typed_examples_and_applies_the_length_limit(soda_dir):
    stats = Counter()
    examples = list(read_soda(soda_dir, "train", stats=stats))
    assert [e.dialogue_id * 2 + e.turn - 200 for e in examples] == [0, 1, 3, 4, 5, 6, 7, 8, 9]
    first = examples[0]
    assert first.user_units == (0, 1, 2, 3, 4)
    assert first.reply_units == (0, 1, 2, 3, 4, 5)
    assert first.transcript == "Hi, this is row 0."
    assert first.reply_text == "Reply number 0!"
    assert (first.turn, first.dialogue_id) == (0, 100)
    assert first.input_tts_wer == 0.0 and first.output_tts_wer == 0.05
    assert len(examples[2].reply_units) == 500
    assert examples[6].output_tts_wer is None  # NaN in the file: not measured
    assert stats == Counter(rows=10, kept=9, too_long=1)
    assert first.to_record()["user_units"] == [0, 1, 2, 3, 4]


def test_tts_wer_threshold_drops_bad_and_unknown_rows(soda_dir):
    stats = Counter()
    keep = SodaFilter(max_speech_tokens=None, max_tts_wer=0.1)
    kept = [e.dialogue_id * 2 + e.turn - 200 for e in read_soda(soda_dir, "train", keep,
                                                                  stats=stats)]
    assert kept == [0, 1, 2, 3, 4, 8, 9]
    assert stats["tts_wer"] == 3


def test_row_ranges_cross_files_and_row_groups(soda_dir):
    everything = list(read_soda(soda_dir, "train", SodaFilter(max_speech_tokens=None)))
    assert count_rows(soda_dir, "train") == 10
    for start, stop in [(0, 10), (3, 7), (5, 6), (6, 10), (9, 20)]:
        part = list(read_soda(soda_dir, "train", SodaFilter(max_speech_tokens=None),
                              start=start, stop=stop))
        assert part == everything[start:stop]


def test_builds_a_sharded_corpus(soda_dir, tmp_path):
    def rows(start, stop):
        return (e.to_record() for e in read_soda(soda_dir, "train", start=start, stop=stop))

    plans = {"train": SplitPlan(count_rows(soda_dir, "train"), rows)}
    build_corpus(tmp_path / "corpus", plans, {"source": "soda"}, shard_size=4, progress=False)
    corpus = Corpus.open(tmp_path / "corpus")
    assert corpus.count("train") == 9
    assert [r["reply_text"] for r in corpus.iter_split("train")][:2] == [
        "Reply number 0!", "Reply number 1!",
    ]


def test_layouts_and_missing_splits(tmp_path):
    write_shard(tmp_path / "flat" / "test-00000-of-00001.parquet", [make_row(1)])
    write_shard(tmp_path / "conv" / "default" / "test" / "0000.parquet", [make_row(1)])
    assert soda_files(tmp_path / "flat", "test")[0].name == "test-00000-of-00001.parquet"
    assert soda_files(tmp_path / "conv", "test")[0].name == "0000.parquet"
    with pytest.raises(SodaError, match="no parquet files for split 'train'"):
        soda_files(tmp_path / "flat", "train")


def test_errors_name_the_file_row_and_column(tmp_path):
    bad = make_row(0)
    bad["output_tokens"] = "<🗣️1><🗣️x>"
    write_shard(tmp_path / "data" / "train-00000-of-00001.parquet", [make_row(1), bad])
    with pytest.raises(SodaError, match=r"00001.parquet row 1, column output_tokens"):
        list(read_soda(tmp_path, "train"))

    table = pa.Table.from_pylist([make_row(0)], schema=SCHEMA).drop_columns(["input_transcript"])
    (tmp_path / "v" / "data").mkdir(parents=True)
    pq.write_table(table, tmp_path / "v" / "data" / "validation-00000-of-00001.parquet")
    with pytest.raises(SodaError, match="missing column.*input_transcript"):
        list(read_soda(tmp_path / "v", "validation"))
