"""Fixtures for the server tests: espeak-ng speech as 16 kHz float32 (cached per text)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from model.audio import read_audio

SPEECH_RATE_HZ = 16_000


def _espeak(text: str, voice: str, out: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "-w", str(out), text], check=True,
                   capture_output=True)
    samples, _ = read_audio(out, target_rate=SPEECH_RATE_HZ)
    return samples


@pytest.fixture(scope="session")
def speak(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., np.ndarray]:
    """speak(text, voice="en-us") → espeak-ng speech, float32 (T,) at 16 kHz."""
    cache: dict[tuple[str, str], np.ndarray] = {}
    folder = tmp_path_factory.mktemp("espeak")

    def make(text: str, voice: str = "en-us") -> np.ndarray:
        key = (text, voice)
        if key not in cache:
            cache[key] = _espeak(text, voice, folder / f"{len(cache)}.wav")
        return cache[key].copy()

    return make


def voiced_span_s(samples: np.ndarray, rate: int = SPEECH_RATE_HZ) -> tuple[float, float]:
    """First and last sample louder than 1 % of full scale, in seconds: where speech really is."""
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    return loud[0] / rate, (loud[-1] + 1) / rate


@pytest.fixture(scope="session")
def voiced_span() -> Callable[..., tuple[float, float]]:
    return voiced_span_s
