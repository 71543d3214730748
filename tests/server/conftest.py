"""Fixtures for the server tests: espeak-ng speech, and real uvicorn servers on loopback.

`serve(runtime, **settings)` starts the app exactly as `icot serve` builds it (server/serve.py)
in a background thread on a free loopback port and stops it after the test.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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




sys.path.insert(0, str(Path(__file__).parent))  # scripted_runtime.py, the runtime test double

STARTUP_TIMEOUT_S = 20.0


@dataclass
class Live:
    """A running server: its app state and addresses."""

    server: object
    thread: threading.Thread
    port: int

    @property
    def state(self):
        return self.server.config.app.state.icot

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    def wait(self, condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met in time")
            time.sleep(0.01)


def start_live(runtime, *, ready: bool = True, **overrides) -> Live:
    from server.app import create_app
    from server.serve import build_server
    from server.settings import ServerSettings

    settings = ServerSettings(**{"port": 0, "log_level": "warning", **overrides})
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = build_server(create_app(settings, runtime), settings)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    live = Live(server=server, thread=thread, port=sock.getsockname()[1])
    live.wait(lambda: server.started, STARTUP_TIMEOUT_S)
    if ready:
        live.wait(lambda: live.state.ready, STARTUP_TIMEOUT_S)
    return live


def stop_live(live: Live) -> None:
    live.server.should_exit = True
    live.thread.join(STARTUP_TIMEOUT_S)


@pytest.fixture
def serve() -> Iterator[Callable[..., Live]]:
    """serve(runtime, **settings) → a live server, stopped after the test."""
    started: list[Live] = []

    def make(runtime, **overrides) -> Live:
        started.append(start_live(runtime, **overrides))
        return started[-1]

    yield make
    for live in started:
        stop_live(live)


@pytest.fixture
def scripted(speak) -> Callable[..., object]:
    """scripted(**options) → a ScriptedRuntime (test double) speaking espeak-ng replies."""
    from scripted_runtime import ScriptedRuntime

    return lambda **options: ScriptedRuntime(speak, **options)
