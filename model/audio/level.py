"""Speech level: how loud the speech in a clip is, and bringing it into the range a model knows.

A model trained on synthetic speech has heard user turns only within a narrow band of levels, and
units of a log-mel codec shift with level: without this step the shipped demo-cot bundle answered
37 of 40 dev questions at their own level, 5 at −10 dB and 0 at −20 dB (with it: 37 and 37;
docs/bundles.md). A microphone can easily be 20 dB off. So the
runtime scales each user turn whose speech level lies outside the bundle's trained range onto the
nearer edge of that range (a turn inside it is left exactly as it is). numpy only.
"""

from __future__ import annotations

import numpy as np

FRAME_S = 0.02  # level is measured over 20 ms frames
SPEECH_SPAN_DB = 30.0  # frames within this of the loudest frame count as speech
PEAK_LIMIT = 0.99  # a gain never drives the loudest sample past this


def speech_level_dbfs(samples: np.ndarray, sample_rate: int) -> float | None:
    """The mean power of the speech frames of float32 (T,) samples, in dB relative to full scale
    (a full-scale sine is −3 dBFS); speech frames lie within 30 dB of the loudest 20 ms frame.
    None for digital silence or a clip shorter than one frame."""
    frame = max(1, round(FRAME_S * sample_rate))
    count = samples.size // frame
    if count == 0:
        return None
    power = np.square(samples[: count * frame].reshape(count, frame), dtype=np.float64).mean(1)
    loudest = power.max()
    if loudest <= 0.0:
        return None
    speech = power[power >= loudest * 10.0 ** (-SPEECH_SPAN_DB / 10.0)]
    return float(10.0 * np.log10(speech.mean()))


def fit_level(
    samples: np.ndarray, sample_rate: int, low_dbfs: float, high_dbfs: float
) -> np.ndarray:
    """`samples` scaled so that their speech level lies in [low_dbfs, high_dbfs]: unchanged when it
    already does (or for silence), else moved to the nearer edge. Raising a quiet clip stops where
    its peak would pass 0.99, so no gain ever clips."""
    if not low_dbfs < high_dbfs:
        raise ValueError(f"the level range needs low < high, got [{low_dbfs}, {high_dbfs}]")
    level = speech_level_dbfs(samples, sample_rate)
    if level is None or low_dbfs <= level <= high_dbfs:
        return samples
    target = low_dbfs if level < low_dbfs else high_dbfs
    gain = 10.0 ** ((target - level) / 20.0)
    peak = float(np.abs(samples).max())
    gain = min(gain, PEAK_LIMIT / peak) if gain > 1.0 else gain
    return (samples * gain).astype(np.float32)
