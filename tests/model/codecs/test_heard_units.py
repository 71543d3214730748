"""The whisper-units codec: user speech as Whisper-encoder units beside reply units, one
vocabulary; lengths, ranges, decoding in the reply voice, save/load, and that its user units
keep a question apart from its neighbours across voices better than by chance."""

from __future__ import annotations

import numpy as np
import pytest

from model.codecs import load_codec
from model.codecs.heard_units import HeardUnitCodec
from model.codecs.units import UnitCodec
from training.data.synth import ASSISTANT_VOICE, Voice, synthesize_many
from training.data.voicing import trim_silence

QUESTIONS = ("what is two plus six", "what is two plus seven", "count from three to five",
             "what color is snow", "i come from peru", "say red blue monday backwards")


@pytest.fixture(scope="module")
def clips() -> dict[str, list[np.ndarray]]:
    voices = {"train": Voice("en-us", "m1", 160), "other": Voice("en-gb-scotland", None, 150)}
    return {name: [trim_silence(c) for c in synthesize_many([(q, v) for q in QUESTIONS])]
            for name, v in voices.items()}


@pytest.fixture(scope="module")
def codec(clips) -> HeardUnitCodec:
    replies = synthesize_many([("seven", ASSISTANT_VOICE), ("paris is lovely", ASSISTANT_VOICE),
                               ("three four five", ASSISTANT_VOICE)])
    reply = UnitCodec.fit(replies, units=16, seed=0, iterations=10, progress=False)
    return HeardUnitCodec.fit(reply, clips["train"], units=24, seed=0)


def test_user_units_follow_the_reply_units_at_50_hz(codec, clips):
    assert codec.vocab_size == 16 + 24 and codec.frame_rate == 50
    for clip in clips["other"]:
        units = codec.encode(clip)
        assert units.shape == (-(-clip.size // 320),)
        assert units.min() >= 16 and units.max() < 40
    assert codec.encode(np.zeros(0, np.float32)).size == 0
    assert codec.encode(np.zeros(100, np.float32)).shape == (1,)


def test_reply_speech_is_encoded_and_decoded_by_the_reply_codec(codec):
    reply = synthesize_many([("seven", ASSISTANT_VOICE)])[0]
    units = codec.encode_output(reply)
    assert np.array_equal(units, codec.reply.encode(reply)) and units.max() < 16
    assert np.array_equal(codec.decode(units), codec.reply.decode(units))
    # a user unit the model wrote into a reply renders as the quietest reply unit, not an error
    mixed = codec.decode(np.array([units[0], 30, units[-1]]))
    assert mixed.shape == (3 * 320,)
    with pytest.raises(ValueError):
        codec.decode(np.array([40]))


def test_save_and_load_round_trip(codec, clips, tmp_path):
    codec.save(tmp_path)
    loaded = load_codec("whisper-units", tmp_path)
    assert isinstance(loaded, HeardUnitCodec) and loaded.vocab_size == codec.vocab_size
    assert np.array_equal(loaded.encode(clips["other"][0]), codec.encode(clips["other"][0]))
    (tmp_path / "user_centroids.npy").unlink()
    with pytest.raises(FileNotFoundError, match="centroids"):
        load_codec("whisper-units", tmp_path)


def test_a_question_in_another_voice_is_nearest_its_own_text(codec, clips):
    """bench/unit_context.py's rule on six near neighbours: most queries find their text."""
    from bench.unit_context import identified_share

    references = list(zip(QUESTIONS, clips["train"], strict=True))
    queries = list(zip(QUESTIONS, clips["other"], strict=True))
    assert identified_share(codec.encode, references, queries) >= 4 / 6
