"""The one input path: appended and item audio resampled alike and held to the same limits;
server_vad turns come out as events that carry the item id the turn becomes."""

from __future__ import annotations

import numpy as np
import pytest

from model.audio import MODEL_INPUT_RATE_HZ, float_to_pcm16, resample
from server.errors import ErrorCode, ProtocolError
from server.limits import AudioBudget
from server.metrics import Metrics
from server.realtime.input_audio import InputAudio, TurnEnded, TurnStarted
from server.vad import SileroVad, VadConfig

WIRE_RATE_HZ = 24_000


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


def make_input(vad: SileroVad, *, turns: VadConfig | None = None, max_turn_s: float = 10.0,
               budget_s: float = 60.0) -> InputAudio:
    return InputAudio(vad, wire_rate=WIRE_RATE_HZ, vad_config=turns, max_turn_s=max_turn_s,
                      budget=AudioBudget(budget_s), metrics=Metrics(lambda: 0))


def wire_pcm(seconds: float, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return float_to_pcm16(0.1 * rng.standard_normal(int(seconds * WIRE_RATE_HZ)))


def test_item_audio_equals_the_same_audio_appended_and_committed(vad):
    pcm = wire_pcm(1.0)
    appended = make_input(vad)
    for start in range(0, len(pcm), 960):  # 20 ms appends
        assert appended.append(pcm[start:start + 960]) == []
    committed = appended.commit()
    item = make_input(vad).item_audio(pcm)
    assert item.size == committed.size == MODEL_INPUT_RATE_HZ
    np.testing.assert_array_equal(item, committed)


def test_both_ways_in_spend_the_session_budget(vad):
    audio = make_input(vad, budget_s=1.5)
    audio.append(wire_pcm(1.0))
    with pytest.raises(ProtocolError) as info:
        audio.item_audio(wire_pcm(1.0))
    assert info.value.code is ErrorCode.SESSION_AUDIO_LIMIT
    assert audio.budget.used_s == pytest.approx(1.0)


@pytest.mark.parametrize("way", ["append", "item_audio"])
def test_both_ways_in_refuse_a_turn_that_is_too_long(vad, way):
    audio = make_input(vad, max_turn_s=0.5)
    with pytest.raises(ProtocolError) as info:
        getattr(audio, way)(wire_pcm(0.6))
    assert info.value.code is ErrorCode.TURN_AUDIO_TOO_LONG
    assert audio.budget.used_s == 0.0 and audio.buffered_samples == 0


def test_a_detected_turn_starts_and_ends_with_one_item_id(vad, speak):
    speech = resample(speak("what is two plus three"), MODEL_INPUT_RATE_HZ, WIRE_RATE_HZ)
    silence = np.zeros(WIRE_RATE_HZ, dtype=np.float32)
    audio = make_input(vad, turns=VadConfig(silence_duration_ms=500))
    turns = audio.append(float_to_pcm16(np.concatenate([silence, speech, silence])))
    assert [type(turn) for turn in turns] == [TurnStarted, TurnEnded]
    started, ended = turns
    assert started.item_id == ended.item_id and started.item_id.startswith("item_")
    assert ended.audio_end_ms > started.audio_start_ms
    assert ended.samples.size >= (ended.audio_end_ms - started.audio_start_ms) * 16
