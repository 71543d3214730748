"""Evaluation through the real runtime, on tiny bundles trained to memorize two dialogues
(tests/memorized.py): exact replies, transcripts, multi-turn recall, TTFA and audio length; and
the test dialogues voiced under other conditions (voice, speed, noise) with espeak-ng."""

from __future__ import annotations

import numpy as np
import pytest
from memorized import DIALOGUES, speak

from model.bundle import Bundle
from training.data.demo_corpus import DemoCorpusSpec, plan_dialogue
from training.data.demo_source import Condition, demo_dialogues
from training.data.source import EvalTurn
from training.data.synth import SynthesisError
from training.evaluation.eval import count_turns, evaluate

SAMPLE_RATE_HZ = 16_000


@pytest.fixture(scope="module")
def dialogues() -> list[list[EvalTurn]]:
    return [[EvalTurn(user, reply, speak(user), SAMPLE_RATE_HZ, "memorized")
             for user, reply in dialogue] for dialogue in DIALOGUES]


@pytest.fixture(scope="module")
def reports(memorized_atta_bundle, memorized_ata_bundle, dialogues):
    bundles = [("A-T-T-A", memorized_atta_bundle), ("A-T-A ICoT", memorized_ata_bundle)]
    return evaluate(bundles, dialogues, transcribe=None)


def test_memorized_bundles_answer_every_turn_exactly(reports):
    atta, ata = (report.summary() for report in reports)
    assert (atta["chain"], ata["chain"]) == ("A-T-T-A", "A-T-A")
    assert atta["turns"] == ata["turns"] == 3
    assert atta["reply_exact"] == ata["reply_exact"] == 1.0
    assert atta["transcript_exact"] == 1.0 and ata["transcript_exact"] is None
    assert atta["complete_share"] == ata["complete_share"] == 1.0


def test_the_second_turn_is_answered_from_the_conversation_history(reports):
    for report in reports:
        recall = [t for t in report.turns if (t.dialogue, t.turn) == (0, 1)]
        assert recall[0].reply_text == "your name is anna"


def test_every_turn_gets_audio_with_a_first_chunk_before_the_end(reports, memorized_ata_bundle):
    codec = Bundle.load(memorized_ata_bundle).codec
    for report in reports:
        summary = report.summary()
        assert summary["no_audio_turns"] == 0 and summary["ttfa_p50_ms"] > 0
        for turn in report.turns:
            assert 0 < turn.ttfa_ms <= turn.total_ms
            assert turn.speech_seconds > 0
            frames = turn.speech_seconds * codec.sample_rate / codec.samples_per_frame
            assert frames == pytest.approx(round(frames))  # whole frames, nothing lost


def test_the_explicit_chain_generates_more_tokens_before_its_reply(reports):
    atta, ata = reports
    for slow, fast in zip(atta.turns, ata.turns, strict=True):
        assert slow.new_tokens > fast.new_tokens  # the transcript comes first


def test_speech_metrics_are_skipped_without_a_judge(reports):
    for report in reports:
        summary = report.summary()
        assert report.speech_wer is None and summary["speech_exact"] is None
        assert summary["reply_exact"] is not None  # text accuracy needs no judge
        assert all(turn.heard is None for turn in report.turns)


def test_turns_are_counted_by_intent(dialogues):
    assert count_turns(dialogues) == {"memorized": 3}


# ---- conditions: the same dialogues in another voice, at another speed, in noise ---------------

TINY_SPEC = DemoCorpusSpec(train_dialogues=2, dev_dialogues=2, test_dialogues=2)


def test_a_condition_changes_how_the_test_dialogues_sound_but_not_what_they_say():
    plain = demo_dialogues(TINY_SPEC, "test", 1)
    slow = demo_dialogues(TINY_SPEC, "test", 1, Condition("en-gb-scotland+m1", speed_wpm=130))
    fast = demo_dialogues(TINY_SPEC, "test", 1, Condition("en-gb-scotland+m1", speed_wpm=190))
    for a, b, c in zip(plain[0], slow[0], fast[0], strict=True):
        assert a.transcript == b.transcript == c.transcript and a.reply_text == b.reply_text
        assert b.audio.size > 1.2 * c.audio.size  # 130 against 190 words per minute


def test_noise_lands_at_the_asked_snr_and_is_the_same_every_time():
    plain = demo_dialogues(TINY_SPEC, "test", 1)[0][0].audio
    noisy = demo_dialogues(TINY_SPEC, "test", 1, Condition(snr_db=20.0))[0][0].audio
    again = demo_dialogues(TINY_SPEC, "test", 1, Condition(snr_db=20.0))[0][0].audio
    assert np.array_equal(noisy, again)
    noise = noisy - plain
    assert 10 * np.log10(np.mean(plain**2) / np.mean(noise**2)) == pytest.approx(20.0, abs=0.1)


def test_a_plan_keeps_its_pitch_under_a_new_voice_and_conditions_describe_themselves():
    plan = plan_dialogue(TINY_SPEC, "test", 0)
    voiced = Condition("en-gb-x-gbclan", speed_wpm=190, snr_db=20).apply(plan).voice
    assert (voiced.language, voiced.variant, voiced.speed_wpm, voiced.pitch) == (
        "en-gb-x-gbclan", None, 190, plan.voice.pitch)
    assert Condition("en-us+m7", 130, 20.0).describe() == (
        "voice en-us+m7, 130 wpm, white noise at 20 dB SNR")
    assert Condition().describe() == "" and Condition().apply(plan) == plan


@pytest.mark.parametrize(("condition", "error"), [
    (dict(voice="en-xx-nowhere"), "espeak-ng has no language 'en-xx-nowhere'"),
    (dict(voice="en-us+zz9"), "espeak-ng has no variant 'zz9'"),
    (dict(voice="en us"), "language must be an espeak-ng voice name"),
    (dict(speed_wpm=20), "speed_wpm must lie in 80..450"),
    (dict(snr_db=float("nan")), "snr_db must be a finite number"),
])
def test_bad_conditions_fail_before_any_synthesis(condition, error):
    with pytest.raises((ValueError, SynthesisError), match=error):
        Condition(**condition)
