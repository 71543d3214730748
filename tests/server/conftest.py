"""Fixtures for the server tests: espeak-ng speech, and real uvicorn servers on loopback.

`serve(runtime, **settings)` starts the app exactly as `icot serve` builds it (server/serve.py)
in a background thread on a free loopback port and stops it after the test.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from model.audio import read_audio
from server.app import create_app
from server.serve import ThreadedServer
from server.settings import ServerSettings

sys.path.insert(0, str(Path(__file__).parent))  # scripted_runtime.py, realtime_client.py
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


def start_live(runtime, *, ready: bool = True, **overrides) -> ThreadedServer:
    settings = ServerSettings(**{"port": 0, "log_level": "warning", **overrides})
    return ThreadedServer(create_app(settings, runtime), settings).start(wait_ready=ready)


@pytest.fixture
def serve() -> Iterator[Callable[..., ThreadedServer]]:
    """serve(runtime, **settings) → a live server on loopback, stopped after the test."""
    started: list[ThreadedServer] = []

    def make(runtime, **overrides) -> ThreadedServer:
        started.append(start_live(runtime, **overrides))
        return started[-1]

    yield make
    for live in started:
        live.stop()


@pytest.fixture
def scripted(speak) -> Callable[..., object]:
    """scripted(**options) → a ScriptedRuntime (test double) speaking espeak-ng replies."""
    from scripted_runtime import ScriptedRuntime

    return lambda **options: ScriptedRuntime(speak, **options)
