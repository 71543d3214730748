"""The demo corpus builder: deterministic plans, voices per split, held-out content kept out of
speech training, augmentation, trimming, and a real (small) build voiced by espeak-ng and encoded
by a codec: records, the text split, the held-out proof, resume, refusal."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model.codecs.units import UnitCodec
from training.data.demo_corpus import (
    SPEECH_SPLITS,
    SPLITS,
    DemoCorpusSpec,
    build_demo_corpus,
    check_held_out,
    codec_fit_audio,
    plan_dialogue,
)
from training.data.domain import Category, reply_to
from training.data.shards import Corpus, CorpusError
from training.data.synth import (
    DEV_VOICES,
    HELD_OUT_LANGUAGES,
    HELD_OUT_VARIANTS,
    SAMPLE_RATE_HZ,
    TRAINING_LANGUAGES,
    TRAINING_VARIANTS,
)
from training.data.voicing import NO_AUGMENTATION, Augmentation, trim_silence

SPEC = DemoCorpusSpec(train_dialogues=3, dev_dialogues=1, test_dialogues=2, seed=7,
                      augment_prob=1.0, text_dialogues=3)
MANY = DemoCorpusSpec(train_dialogues=200, dev_dialogues=200, test_dialogues=200,
                      augment_prob=0.5, text_dialogues=200)


def unit_codec(seed: int) -> UnitCodec:
    """A small unit codec fitted on a few espeak-ng clips of the corpus (as the demo's is)."""
    return UnitCodec.fit(codec_fit_audio(SPEC, dialogues=2), units=64, seed=seed, progress=False)


@pytest.fixture(scope="module")
def codec():
    return unit_codec(seed=0)


@pytest.fixture(scope="module")
def built(tmp_path_factory, codec):
    directory = tmp_path_factory.mktemp("demo-corpus")
    manifest = build_demo_corpus(directory, SPEC, codec, shard_size=2, progress=False)
    return directory, manifest


def test_plans_depend_only_on_seed_split_and_position():
    assert plan_dialogue(MANY, "train", 5) == plan_dialogue(MANY, "train", 5)
    assert plan_dialogue(MANY, "train", 5) != plan_dialogue(MANY, "train", 6)
    assert plan_dialogue(MANY, "dev", 5) != plan_dialogue(MANY, "train", 5)
    reseeded = DemoCorpusSpec(200, 200, 200, seed=1, augment_prob=0.5)
    assert plan_dialogue(reseeded, "train", 5) != plan_dialogue(MANY, "train", 5)


def test_each_split_speaks_with_its_own_voices_only():
    for split in SPEECH_SPLITS:
        voices = [plan_dialogue(MANY, split, i).voice for i in range(200)]
        languages = {v.language for v in voices}
        variants = {v.variant for v in voices}
        if split == "test":
            assert languages == set(HELD_OUT_LANGUAGES) and variants == set(HELD_OUT_VARIANTS)
        elif split == "dev":
            assert {(v.language, v.variant) for v in voices} == \
                {(v.language, v.variant) for v in DEV_VOICES}
        else:
            assert languages <= set(TRAINING_LANGUAGES) and variants <= set(TRAINING_VARIANTS)
            assert len(languages) == len(TRAINING_LANGUAGES)


def test_held_out_content_is_only_in_the_test_and_text_splits():
    def categories(split):
        return [turn.category for i in range(200)
                for turn in plan_dialogue(MANY, split, i).dialogue.turns]

    for split in ("train", "dev"):
        assert not any(turn.held_out for i in range(200)
                       for turn in plan_dialogue(MANY, split, i).dialogue.turns)
    test = categories("test")
    for category in Category:  # the test split asks about every category
        assert test.count(category) >= 5, (category, test.count(category))
    assert any(turn.held_out for i in range(200)
               for turn in plan_dialogue(MANY, "text", i).dialogue.turns)


def test_only_training_turns_are_augmented_at_the_requested_rate():
    def augmented(split):
        return [a != NO_AUGMENTATION for i in range(200)
                for a in plan_dialogue(MANY, split, i).augmentations]

    train = augmented("train")
    assert 0.4 < sum(train) / len(train) < 0.6
    assert not any(augmented("dev")) and not any(augmented("test"))
    for i in range(200):
        for a in plan_dialogue(MANY, "train", i).augmentations:
            assert 0.85 <= a.speed_factor <= 1.15  # SPEED_FACTOR_RANGE
            assert a.snr_db is None or 20.0 <= a.snr_db <= 40.0


def test_dialogues_follow_the_reply_rule_including_recall():
    plans = [plan_dialogue(MANY, "train", i) for i in range(200)]
    recalls = 0
    for plan in plans:
        users = [t.user for t in plan.dialogue.turns]
        for index, turn in enumerate(plan.dialogue.turns):
            assert turn == reply_to(turn.user, users[:index])
            recalls += turn.intent in ("recall", "recall_number") and not turn.reply.startswith(
                "i do not know")
    assert recalls > 10  # names and numbers stated earlier are asked for later


def test_noise_is_added_at_the_requested_snr():
    t = np.arange(SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    clean = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    noisy = Augmentation(snr_db=20.0).apply(clean, "seed")
    snr = 10 * np.log10(np.mean(clean ** 2) / np.mean((noisy - clean) ** 2))
    assert abs(snr - 20.0) < 0.1
    assert np.array_equal(noisy, Augmentation(snr_db=20.0).apply(clean, "seed"))
    faster = Augmentation(speed_factor=1.1).apply(clean, "seed")
    assert abs(faster.size - clean.size / 1.1) < 2


def test_trimming_keeps_the_speech_and_a_short_margin():
    rate = SAMPLE_RATE_HZ
    speech = 0.5 * np.sin(2 * np.pi * 200 * np.arange(rate) / rate).astype(np.float32)
    padded = np.concatenate([np.zeros(rate, np.float32), speech, np.zeros(2 * rate, np.float32)])
    trimmed = trim_silence(padded)
    assert rate + 0.19 * rate <= trimmed.size <= rate + 0.21 * rate
    assert np.max(np.abs(trimmed)) == np.max(np.abs(speech))


def test_a_build_stores_every_split_as_dialogue_records(built, codec):
    directory, manifest = built
    corpus = Corpus.open(directory)
    assert manifest["config"]["spec"] == SPEC.to_dict()
    assert manifest["config"]["espeak"].startswith("eSpeak NG")
    for split in SPLITS:
        records = list(corpus.iter_split(split))
        assert len(records) == SPEC.size(split)
        for index, record in enumerate(records):
            plan = plan_dialogue(SPEC, split, index)
            assert record["index"] == index
            if split == "text":  # text chat: words only
                assert all(t["user_units"] == [] == t["reply_units"] for t in record["turns"])
                continue
            assert record["voice"] == plan.voice.espeak_name
            assert [t["transcript"] for t in record["turns"]] == \
                [t.user for t in plan.dialogue.turns]
            for turn in record["turns"]:
                assert turn["reply_text"] == reply_to(turn["transcript"], [
                    t["transcript"] for t in record["turns"]][:record["turns"].index(turn)]).reply
                for key in ("user_units", "reply_units"):
                    units = turn[key]
                    assert units and all(0 <= u < codec.vocab_size for u in units)


def test_the_built_corpus_holds_no_held_out_content_in_a_speech_training_split(built):
    corpus = Corpus.open(built[0])
    assert check_held_out(corpus) == sum(len(r["turns"]) for split in ("train", "dev")
                                         for r in corpus.iter_split(split))


def test_the_held_out_proof_fails_on_a_corpus_that_leaks(built, tmp_path):
    """A corpus whose training split holds an unseen sum is refused by check_held_out."""
    import gzip
    import shutil

    leaky = tmp_path / "leaky"
    shutil.copytree(built[0], leaky)
    manifest = json.loads((leaky / "manifest.json").read_text())
    shard = leaky / manifest["splits"]["train"]["shards"][0]["file"]
    with gzip.open(shard, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    records[0]["turns"][0].update(transcript="what is three plus five", reply_text="eight")
    with gzip.open(shard, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    with pytest.raises(CorpusError, match="held-out content"):
        check_held_out(Corpus.open(leaky))


def test_the_same_reply_always_has_the_same_units(built):
    units: dict[str, list[int]] = {}
    for split in SPEECH_SPLITS:
        for record in Corpus.open(built[0]).iter_split(split):
            for turn in record["turns"]:
                assert units.setdefault(turn["reply_text"], turn["reply_units"]) == \
                    turn["reply_units"]


def test_an_interrupted_build_resumes_to_identical_shards(built, codec, tmp_path):
    directory, manifest = built
    shard = manifest["splits"]["train"]["shards"][1]
    before = (directory / shard["file"]).read_bytes()
    (directory / shard["file"]).unlink()  # as if killed before this shard was written
    data = json.loads((directory / "manifest.json").read_text())
    data["completed"] = False
    (directory / "manifest.json").write_text(json.dumps(data))
    build_demo_corpus(directory, SPEC, codec, shard_size=2, progress=False)
    assert (directory / shard["file"]).read_bytes() == before
    assert Corpus.open(directory).count("train") == SPEC.train_dialogues


def test_a_corpus_built_with_another_codec_is_refused(built):
    other = unit_codec(seed=1)
    with pytest.raises(CorpusError, match="config_hash"):
        build_demo_corpus(built[0], SPEC, other, shard_size=2, progress=False)


def test_dialogues_over_the_speech_limit_are_left_out(codec, tmp_path):
    short = DemoCorpusSpec(train_dialogues=1, dev_dialogues=0, test_dialogues=0,
                           max_speech_tokens=5)
    build_demo_corpus(tmp_path, short, codec, progress=False)
    assert Corpus.open(tmp_path).count("train") == 0


def test_codec_fit_audio_holds_user_turns_and_each_distinct_reply():
    clips = codec_fit_audio(SPEC, dialogues=2, workers=1)
    plans = [plan_dialogue(SPEC, "train", i) for i in range(2)]
    users = sum(len(p.dialogue.turns) for p in plans)
    replies = {t.reply for p in plans for t in p.dialogue.turns}
    assert len(clips) == users + len(replies)
    assert all(c.dtype == np.float32 and c.size > SAMPLE_RATE_HZ // 4 for c in clips)
