"""Evaluation through the real runtime, on tiny bundles trained to memorize two dialogues
(tests/memorized.py): exact replies, transcripts, multi-turn recall, TTFA and audio length."""

from __future__ import annotations

import pytest
from memorized import DIALOGUES, speak

from model.bundle import Bundle
from training.eval import EvalTurn, count_turns, evaluate

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
        assert report.speech_wer is None and report.summary()["speech_exact"] == 0.0
        assert all(turn.heard is None for turn in report.turns)


def test_turns_are_counted_by_intent(dialogues):
    assert count_turns(dialogues) == {"memorized": 3}
