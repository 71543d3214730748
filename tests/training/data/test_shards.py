"""Sharded corpus storage: round trip, resume after an interruption, config guard, DDP slices."""

from __future__ import annotations

import json

import pytest

from training.data.shards import (
    MANIFEST_NAME,
    Corpus,
    CorpusError,
    SplitPlan,
    build_corpus,
    config_hash,
)

CONFIG = {"codec": "units", "seed": 3, "voices": ["en-us", "en-gb"]}


def example(i: int) -> dict:
    return {
        "user_units": [i % 7, (i * 3) % 11, i],
        "transcript": f"what is {i} plus one",
        "reply_text": f"{i} plus one is {i + 1}",
        "reply_units": list(range(i % 5)),
        "history": [{"user": "hello", "reply": "hello there"}] if i % 2 else [],
        "voice": "en-gb+m1",
    }


def source(start: int, stop: int):
    for i in range(start, stop):
        if i % 10 != 9:  # a filtered source: every tenth position yields nothing
            yield example(i)


def expected(size: int) -> list[dict]:
    return [example(i) for i in range(size) if i % 10 != 9]


def test_round_trip_with_counts_and_manifest(tmp_path):
    plans = {"train": SplitPlan(45, source), "eval": SplitPlan(12, source)}
    manifest = build_corpus(tmp_path, plans, CONFIG, shard_size=10, progress=False)
    assert manifest["completed"] is True
    assert manifest["config_hash"] == config_hash(CONFIG)
    corpus = Corpus.open(tmp_path)
    assert corpus.splits == ["train", "eval"]
    assert corpus.count("train") == len(expected(45)) == 41
    assert list(corpus.iter_split("train")) == expected(45)
    assert list(corpus.iter_split("eval")) == expected(12)
    assert [s["file"] for s in manifest["splits"]["train"]["shards"]] == [
        f"train-0000{i}.jsonl.gz" for i in range(5)
    ]
    assert corpus.config == CONFIG
    with pytest.raises(CorpusError, match="no split 'test'"):
        corpus.count("test")


def test_resume_after_interruption_yields_the_same_corpus(tmp_path):
    size, shard_size = 40, 10

    def failing(start, stop):
        for i in range(start, stop):
            if i == 25:
                raise RuntimeError("simulated crash")
            yield example(i)

    calls = []

    def recording(start, stop):
        calls.append((start, stop))
        return (example(i) for i in range(start, stop))

    interrupted = tmp_path / "interrupted"
    with pytest.raises(RuntimeError, match="simulated crash"):
        build_corpus(interrupted, {"train": SplitPlan(size, failing)}, CONFIG,
                     shard_size=shard_size, progress=False)
    manifest = json.loads((interrupted / MANIFEST_NAME).read_text())
    assert manifest["completed"] is False
    assert [s["index"] for s in manifest["splits"]["train"]["shards"]] == [0, 1]
    with pytest.raises(CorpusError, match="did not finish"):
        Corpus.open(interrupted)

    build_corpus(interrupted, {"train": SplitPlan(size, recording)}, CONFIG,
                 shard_size=shard_size, progress=False)
    assert calls == [(20, 30), (30, 40)]  # finished shards were skipped

    clean = tmp_path / "clean"
    build_corpus(clean, {"train": SplitPlan(size, recording)}, CONFIG,
                 shard_size=shard_size, progress=False)
    resumed, fresh = Corpus.open(interrupted), Corpus.open(clean)
    assert list(resumed.iter_split("train")) == list(fresh.iter_split("train"))
    assert list(resumed.iter_split("train")) == [example(i) for i in range(size)]
    sha = [[s["sha256"] for s in c.manifest["splits"]["train"]["shards"]] for c in (resumed, fresh)]
    assert sha[0] == sha[1]
    assert not list(interrupted.glob("*.tmp"))


def test_a_damaged_shard_is_rebuilt(tmp_path):
    plans = {"train": SplitPlan(30, source)}
    build_corpus(tmp_path, plans, CONFIG, shard_size=10, progress=False)
    manifest_path = tmp_path / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["completed"] = False  # as if the run died after shard 1 was damaged
    manifest_path.write_text(json.dumps(manifest))
    (tmp_path / "train-00001.jsonl.gz").write_bytes(b"garbage")
    calls = []

    def recording(start, stop):
        calls.append((start, stop))
        return source(start, stop)

    build_corpus(tmp_path, {"train": SplitPlan(30, recording)}, CONFIG, shard_size=10,
                 progress=False)
    assert calls == [(10, 20)]
    assert list(Corpus.open(tmp_path).iter_split("train")) == expected(30)


def test_a_different_config_is_refused_unless_overwriting(tmp_path):
    plans = {"train": SplitPlan(5, source)}
    build_corpus(tmp_path, plans, CONFIG, shard_size=10, progress=False)
    other = {**CONFIG, "seed": 4}
    with pytest.raises(CorpusError, match="different config_hash"):
        build_corpus(tmp_path, plans, other, shard_size=10, progress=False)
    with pytest.raises(CorpusError, match="plans splits"):
        build_corpus(tmp_path, {"train": SplitPlan(6, source)}, CONFIG, shard_size=10,
                     progress=False)
    manifest = build_corpus(tmp_path, plans, other, shard_size=10, overwrite=True, progress=False)
    assert manifest["config_hash"] == config_hash(other)


def test_bad_sources_are_reported_with_their_shard(tmp_path):
    def too_many(start, stop):
        return (example(i) for i in range(start, stop + 1))

    with pytest.raises(CorpusError, match="train train-00000.jsonl.gz: the source yielded more"):
        build_corpus(tmp_path / "a", {"train": SplitPlan(5, too_many)}, CONFIG, progress=False)

    def not_json(start, stop):
        return ({"units": {1, 2}} for _ in range(start, stop))

    with pytest.raises(CorpusError, match="example 0 is not JSON data"):
        build_corpus(tmp_path / "b", {"train": SplitPlan(5, not_json)}, CONFIG, progress=False)


def test_ranks_read_disjoint_slices_that_cover_the_split(tmp_path):
    build_corpus(tmp_path, {"train": SplitPlan(23, source)}, CONFIG, shard_size=4, progress=False)
    corpus = Corpus.open(tmp_path)
    everything = list(corpus.iter_split("train"))
    assert everything == expected(23)
    for rank in range(3):
        assert list(corpus.iter_split("train", rank=rank, world_size=3)) == everything[rank::3]
    with pytest.raises(ValueError, match="rank"):
        next(corpus.iter_split("train", rank=3, world_size=3))


def test_progress_bar_names_the_corpus(tmp_path, capsys):
    build_corpus(tmp_path / "demo-corpus", {"train": SplitPlan(3, source)}, CONFIG)
    assert "corpus demo-corpus" in capsys.readouterr().err
