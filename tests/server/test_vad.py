"""silero-vad streaming on espeak-ng speech padded with silence: offsets, turns, isolation."""

from __future__ import annotations

import numpy as np
import pytest

from model.audio import MODEL_INPUT_RATE_HZ
from server.vad import SileroVad, SpeechEnd, SpeechStart, VadConfig

PAD_S = 1.0
TOLERANCE_S = 0.12  # about 4 windows of 32 ms


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * MODEL_INPUT_RATE_HZ), dtype=np.float32)


def _feed(stream, audio: np.ndarray, chunk: int) -> list:
    events = []
    for start in range(0, audio.size, chunk):
        events.extend(stream.push(audio[start:start + chunk]))
    return events


@pytest.mark.parametrize("chunk", [480, 512, 1600, 7])
def test_speech_start_and_end_offsets_match_the_voiced_span(vad, speak, voiced_span, chunk):
    speech = speak("what is two plus three")
    first, last = voiced_span(speech)
    audio = np.concatenate([_silence(PAD_S), speech, _silence(PAD_S)])
    events = _feed(vad.stream(VadConfig(silence_duration_ms=500)), audio, chunk)
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd]
    assert events[0].start_ms / 1000 == pytest.approx(PAD_S + first, abs=TOLERANCE_S)
    assert events[1].end_ms / 1000 == pytest.approx(PAD_S + last, abs=TOLERANCE_S)


def test_end_is_reported_only_after_the_silence_duration(vad, speak, voiced_span):
    speech = speak("what is two plus three")
    trailing_s = speech.size / MODEL_INPUT_RATE_HZ - voiced_span(speech)[1]
    stream = vad.stream(VadConfig(silence_duration_ms=800))
    assert [type(e) for e in stream.push(np.concatenate([_silence(0.5), speech]))] == [SpeechStart]
    assert stream.push(_silence(0.8 - trailing_s - 0.2)) == []  # quiet for 0.6 s < 0.8 s
    assert stream.speaking
    events = stream.push(_silence(0.4))
    assert [type(e) for e in events] == [SpeechEnd]
    assert not stream.speaking


def test_a_short_pause_keeps_one_turn_and_a_long_pause_makes_two(vad, speak):
    one, two = speak("my name is anna"), speak("what is my name")
    config = VadConfig(silence_duration_ms=700)
    short = np.concatenate([_silence(PAD_S), one, _silence(0.2), two, _silence(PAD_S)])
    long = np.concatenate([_silence(PAD_S), one, _silence(1.5), two, _silence(PAD_S)])
    assert [type(e) for e in vad.stream(config).push(short)] == [SpeechStart, SpeechEnd]
    assert [type(e) for e in vad.stream(config).push(long)] == [SpeechStart, SpeechEnd] * 2


def test_silence_and_low_noise_make_no_events(vad):
    rng = np.random.default_rng(0)
    noise = (0.003 * rng.standard_normal(3 * MODEL_INPUT_RATE_HZ)).astype(np.float32)
    assert vad.stream(VadConfig()).push(_silence(3.0)) == []
    assert vad.stream(VadConfig()).push(noise) == []


def test_interleaved_streams_do_not_disturb_each_other(vad, speak):
    a = np.concatenate([_silence(0.7), speak("hello"), _silence(1.0)])
    b = np.concatenate([_silence(1.3), speak("good night"), _silence(1.0)])
    alone = [vad.stream(VadConfig()).push(x) for x in (a, b)]
    sa, sb = vad.stream(VadConfig()), vad.stream(VadConfig())
    together = ([], [])
    for start in range(0, max(a.size, b.size), 800):
        together[0].extend(sa.push(a[start:start + 800]))
        together[1].extend(sb.push(b[start:start + 800]))
    assert list(together) == alone


def test_a_higher_threshold_needs_louder_speech(vad, speak):
    quiet = np.concatenate([_silence(PAD_S), 0.02 * speak("hello"), _silence(PAD_S)])
    assert vad.stream(VadConfig(threshold=0.3)).push(quiet) != []
    assert vad.stream(VadConfig(threshold=0.95)).push(quiet) == []


@pytest.mark.parametrize("bad", [dict(threshold=0.0), dict(threshold=1.0),
                                 dict(prefix_padding_ms=-1), dict(silence_duration_ms=0)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        VadConfig(**bad)
