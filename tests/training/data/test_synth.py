"""espeak-ng voicing: real audio out, voices as the demo domain lists them, augmentation levels."""

from __future__ import annotations

import random

import numpy as np
import pytest

from training.data import synth
from training.data.synth import ASSISTANT_VOICE, SynthesisError, Voice, synthesize


def _voiced_seconds(samples: np.ndarray) -> float:
    """Seconds of 20 ms frames louder than −40 dB relative to the loudest frame."""
    frames = samples[: samples.size // 320 * 320].reshape(-1, 320)
    energy = (frames**2).mean(axis=1)
    return float((energy > energy.max() * 1e-4).sum() * 0.02)


def test_synthesize_gives_16khz_float_speech() -> None:
    samples = synthesize("what is two plus three")
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert 0.8 < samples.size / synth.SAMPLE_RATE_HZ < 4.0
    assert 0.05 < np.abs(samples).max() <= 1.0
    assert _voiced_seconds(samples) > 0.6


def test_longer_text_and_slower_speed_take_longer() -> None:
    short = synthesize("hello")
    long = synthesize("the opposite of early is late")
    slow = synthesize("the opposite of early is late", Voice("en-us", None, 120, 50))
    assert long.size > 1.5 * short.size
    assert slow.size > 1.2 * long.size


def test_voices_differ_and_synthesis_is_deterministic() -> None:
    text = "good morning"
    first = synthesize(text, Voice("en-gb-x-rp", "f2"))
    assert np.array_equal(first, synthesize(text, Voice("en-gb-x-rp", "f2")))
    other = synthesize(text, Voice("en-us", "m3"))
    assert first.size != other.size or not np.allclose(first, other)


def test_every_listed_voice_speaks() -> None:
    for voice in (ASSISTANT_VOICE, *synth.HELD_OUT_VOICES, synth.TRAINING_VOICES[-1]):
        assert _voiced_seconds(synthesize("hello there", voice)) > 0.3, voice


def test_voice_lists_match_the_demo_domain() -> None:
    assert ASSISTANT_VOICE == Voice("en-us", None, 160, 50)
    assert ASSISTANT_VOICE.espeak_name == "en-us"
    assert {v.espeak_name for v in synth.HELD_OUT_VOICES} == {
        "en-gb-x-gbcwmd+m4", "en-gb-x-gbcwmd+f4", "en-us-nyc+m4", "en-us-nyc+f4"}
    training_languages = {v.language for v in synth.TRAINING_VOICES}
    assert training_languages == {"en-us", "en-gb", "en-gb-x-rp", "en-029"}
    assert not training_languages & {v.language for v in synth.HELD_OUT_VOICES}
    assert len(synth.TRAINING_VOICES) == 4 * 7


def test_training_voice_sampler_is_seeded_and_in_range() -> None:
    draws = [synth.sample_training_voice(random.Random(5)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = random.Random(0)
    voices = [synth.sample_training_voice(rng) for _ in range(300)]
    assert {v.language for v in voices} == set(synth.TRAINING_LANGUAGES)
    assert {v.variant for v in voices} == set(synth.TRAINING_VARIANTS)
    assert all(140 <= v.speed_wpm <= 180 and 35 <= v.pitch <= 65 for v in voices)


def test_voice_validates_itself() -> None:
    with pytest.raises(ValueError, match="speed_wpm"):
        Voice("en-us", None, 20, 50)
    with pytest.raises(ValueError, match="language"):
        Voice("en-us+m1")
    with pytest.raises(ValueError, match="variant"):
        Voice("en-us", "m1;rm")


def test_unknown_voice_is_a_clear_error() -> None:
    with pytest.raises(SynthesisError, match="no-such-voice"):
        synthesize("hello", Voice("no-such-voice"))
    with pytest.raises(SynthesisError, match="z9"):
        synthesize("hello", Voice("en-us", "z9"))


def test_missing_espeak_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SynthesisError, match="apt-get install espeak-ng"):
        synthesize("hello")


def test_synthesize_many_keeps_order() -> None:
    items = [("hello", ASSISTANT_VOICE), ("thank you", ASSISTANT_VOICE), ("hello", ASSISTANT_VOICE)]
    clips = synth.synthesize_many(items, workers=2)
    assert np.array_equal(clips[0], clips[2]) and clips[0].size != clips[1].size


def test_speed_perturbation_changes_duration() -> None:
    samples = synthesize("what color is the sky")
    faster = synth.speed_perturb(samples, 1.25)
    slower = synth.speed_perturb(samples, 0.8)
    assert faster.size == pytest.approx(samples.size / 1.25, rel=0.01)
    assert slower.size == pytest.approx(samples.size / 0.8, rel=0.01)
    with pytest.raises(ValueError):
        synth.speed_perturb(samples, 3.0)


@pytest.mark.parametrize("color", ["white", "pink"])
@pytest.mark.parametrize("snr_db", [20.0, 5.0])
def test_noise_is_added_at_the_requested_snr(color: str, snr_db: float) -> None:
    samples = synthesize("good night")
    noisy = synth.add_noise(samples, snr_db, np.random.default_rng(0), color=color)
    noise = noisy.astype(np.float64) - samples
    measured_db = 10 * np.log10(np.mean(samples.astype(np.float64) ** 2) / np.mean(noise**2))
    assert measured_db == pytest.approx(snr_db, abs=0.1)
    assert noisy.dtype == np.float32 and noisy.shape == samples.shape


def test_pink_noise_has_more_low_than_high_frequency_power() -> None:
    silence_free = np.ones(16_000, dtype=np.float32) * 0.1
    noise = synth.add_noise(silence_free, 0.0, np.random.default_rng(1), color="pink") - 0.1
    power = np.abs(np.fft.rfft(noise)) ** 2
    assert power[50:500].mean() > 5 * power[5000:8000].mean()
