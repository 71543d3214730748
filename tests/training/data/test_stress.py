"""The stress set: every bucket is voiced by a voice no split uses, and each signal condition
does to the audio what it says (noise kinds at their SNR, level, telephone band, room echo)."""

from __future__ import annotations

import numpy as np
import pytest

from training.data.demo_source import Condition, stress_conditions
from training.data.synth import (
    DEV_VOICE_NAMES,
    HELD_OUT_LANGUAGES,
    HELD_OUT_VARIANTS,
    NOISE_KINDS,
    SAMPLE_RATE_HZ,
    TRAINING_LANGUAGES,
    TRAINING_VARIANTS,
)
from training.data.voicing import NO_AUGMENTATION, Augmentation


def speechlike() -> np.ndarray:
    t = np.arange(SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    tone = sum(np.sin(2 * np.pi * f * t) for f in (200, 1500, 6000)) / 3
    return (0.3 * tone * (t < 0.6)).astype(np.float32)


def test_every_bucket_uses_a_voice_outside_the_training_dev_and_test_lists():
    conditions = stress_conditions()
    training = {f"{lang}+{v}" if v else lang for lang in TRAINING_LANGUAGES
                for v in TRAINING_VARIANTS}
    test = {f"{lang}+{v}" for lang in HELD_OUT_LANGUAGES for v in HELD_OUT_VARIANTS}
    for name, condition in conditions.items():
        assert condition.voice not in training | set(DEV_VOICE_NAMES) | test, name
        assert condition.voice.partition("+")[0] not in HELD_OUT_LANGUAGES
    names = set(conditions)
    assert {"120 wpm", "200 wpm", "level −20 dB", "level +20 dB", "8 kHz band",
            "room echo"} <= names
    assert {f"{kind} noise 20 dB" for kind in NOISE_KINDS} <= names


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_each_noise_kind_is_added_at_its_snr(kind):
    clean = speechlike()
    noisy = Augmentation(snr_db=20.0, noise=kind).apply(clean, "seed")
    snr = 10 * np.log10(np.mean(clean ** 2) / np.mean((noisy - clean) ** 2))
    assert abs(snr - 20.0) < 0.1


def test_level_band_and_echo_change_the_audio_as_named():
    clean = speechlike()
    quiet = Condition(gain_db=-20.0).augmentation(NO_AUGMENTATION).apply(clean, "s")
    assert np.max(np.abs(quiet)) == pytest.approx(np.max(np.abs(clean)) / 10, rel=1e-3)
    loud = Augmentation(gain_db=20.0).apply(clean, "s")
    assert np.max(np.abs(loud)) == pytest.approx(1.0)  # clipped at full scale
    band = Augmentation(band_rate_hz=8000).apply(clean, "s")
    spectrum = np.abs(np.fft.rfft(band[:SAMPLE_RATE_HZ]))
    high = spectrum[4200:].sum() / spectrum.sum()
    assert high < 0.01  # the 6 kHz component is gone
    echo = Augmentation(echo_rt60_s=0.3).apply(clean, "s")
    tail = slice(int(0.65 * SAMPLE_RATE_HZ), int(0.8 * SAMPLE_RATE_HZ))
    assert np.mean(echo[tail] ** 2) > 100 * np.mean(clean[tail] ** 2) + 1e-9  # it rings on
    assert echo.size == clean.size


def test_a_condition_describes_itself_and_refuses_bad_values():
    assert Condition(voice="en-gb-scotland", snr_db=20.0, noise="pink", gain_db=-20.0,
                     band_rate_hz=8000, echo_rt60_s=0.3).describe() == (
        "voice en-gb-scotland, pink noise at 20 dB SNR, level -20 dB, 8 kHz channel, "
        "room echo RT60 0.3 s")
    with pytest.raises(ValueError, match="noise"):
        Condition(snr_db=20.0, noise="babble")
    with pytest.raises(ValueError, match="band_rate_hz"):
        Condition(band_rate_hz=44100)
