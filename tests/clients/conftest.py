"""Fixtures for the client tests: one real `icot serve` of the demo bundle on loopback (behind an
API key, minting secrets for its page), espeak-ng WAV files, `icot talk` as a subprocess, and the
Whisper tiny.en judge that listens to what the clients played or saved.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).parent))  # demo_serve.py
from demo_serve import (  # noqa: E402
    API_KEY,
    DEMO_BUNDLE,
    MAX_TURN_AUDIO_S,
    ROOT,
    SLOTS,
    START_TIMEOUT_S,
    TALK_TIMEOUT_S,
    DemoServer,
    Talked,
)

from bench.load import free_port  # noqa: E402


@pytest.fixture(scope="session")
def demo_server() -> Iterator[DemoServer]:
    """`icot serve` of checkpoints/demo, one torch thread, as a user starts it."""
    server = DemoServer(free_port())
    process = subprocess.Popen(
        [sys.executable, "-m", "icot", "serve", "--bundle", str(DEMO_BUNDLE), "--threads", "1",
         "--slots", str(SLOTS), "--port", str(server.port), "--api-key", API_KEY,
         "--page-client-secrets", "true", "--max-turn-audio-s", str(MAX_TURN_AUDIO_S),
         "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            assert process.poll() is None, f"icot serve died: {process.stderr.read()[-2000:]}"
            try:
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "icot serve did not get ready"
            time.sleep(0.25)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """speech_wav(text, lead_s=0, tail_s=0) → an espeak-ng WAV (22.05 kHz) of `text`, with
    silence before and after."""
    folder = tmp_path_factory.mktemp("speech")
    made: dict[tuple[str, float, float], Path] = {}

    def make(text: str, lead_s: float = 0.0, tail_s: float = 0.0) -> Path:
        key = (text, lead_s, tail_s)
        if key not in made:
            raw = folder / f"raw-{len(made)}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(raw), text],
                           check=True, capture_output=True)
            samples, rate = soundfile.read(raw, dtype="float32")
            padded = np.concatenate([np.zeros(int(lead_s * rate), np.float32), samples,
                                     np.zeros(int(tail_s * rate), np.float32)])
            made[key] = folder / f"{'-'.join(text.split())}-{len(made)}.wav"
            soundfile.write(made[key], padded, rate, subtype="PCM_16")
        return made[key]

    return make


@pytest.fixture(scope="session")
def talk() -> Callable[..., Talked]:
    """talk(*args, env=None) → `icot talk ARGS` run as a user runs it: exit code and output."""

    def run(*args: str, env: dict[str, str] | None = None) -> Talked:
        done = subprocess.run([sys.executable, "-m", "icot", "talk", *args], cwd=ROOT,
                              text=True, capture_output=True, timeout=TALK_TIMEOUT_S,
                              env={**os.environ, **(env or {})})
        return Talked(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture(scope="session")
def judge():
    from training.evaluation.intelligibility import WhisperJudge

    return WhisperJudge()
