"""Speech level measurement and fitting a turn into a trained level range."""

from __future__ import annotations

import numpy as np
import pytest

from model.audio import fit_level, speech_level_dbfs

RATE = 16_000


def tone(amplitude: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_a_sine_measures_its_textbook_level() -> None:
    assert speech_level_dbfs(tone(1.0), RATE) == pytest.approx(-3.01, abs=0.01)
    assert speech_level_dbfs(tone(0.1), RATE) == pytest.approx(-23.01, abs=0.01)


def test_pauses_do_not_lower_the_level() -> None:
    """Only frames within 30 dB of the loudest count, so silence between words is left out."""
    gappy = np.concatenate([tone(0.1), np.zeros(RATE, np.float32), tone(0.1)])
    assert speech_level_dbfs(gappy, RATE) == pytest.approx(-23.01, abs=0.01)


def test_silence_and_scraps_have_no_level() -> None:
    assert speech_level_dbfs(np.zeros(RATE, np.float32), RATE) is None
    assert speech_level_dbfs(tone(0.5)[:100], RATE) is None  # under one 20 ms frame


def test_a_turn_inside_the_range_is_left_as_it_is() -> None:
    clip = tone(0.1)  # −23 dBFS
    assert fit_level(clip, RATE, -30.0, -20.0) is clip


@pytest.mark.parametrize(("amplitude", "expected"), [(0.01, -30.0), (0.9, -20.0)])
def test_a_turn_outside_moves_to_the_nearer_edge(amplitude: float, expected: float) -> None:
    fitted = fit_level(tone(amplitude), RATE, -30.0, -20.0)
    assert speech_level_dbfs(fitted, RATE) == pytest.approx(expected, abs=0.01)


def test_raising_a_quiet_turn_never_clips() -> None:
    """A click at full scale among quiet speech caps the gain at a 0.99 peak."""
    clip = tone(0.001)
    clip[100] = 0.5
    fitted = fit_level(clip, RATE, -10.0, -5.0)
    assert np.abs(fitted).max() == pytest.approx(0.99, rel=1e-6)


def test_silence_is_never_amplified() -> None:
    silence = np.zeros(RATE, np.float32)
    assert fit_level(silence, RATE, -30.0, -20.0) is silence


def test_the_range_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="low < high"):
        fit_level(tone(0.1), RATE, -20.0, -30.0)
