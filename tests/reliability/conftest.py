"""Fixtures of the reliability suites: espeak-ng speech and the spoken question every case ends
with. The live servers themselves are module fixtures of each suite (live_icot.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.audio import read_audio

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "server"))  # realtime_client.py
sys.path.insert(0, str(HERE))  # live_icot.py


def espeak(text: str, out: Path) -> np.ndarray:
    """espeak-ng speech of `text` as float32 (T,) at 16 kHz."""
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(out), text], check=True,
                   capture_output=True)
    return read_audio(out, target_rate=16_000)[0]


@pytest.fixture(scope="session")
def question(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """'what is two plus three', spoken: the demo bundle answers it in about a second."""
    from live_icot import QUESTION

    return espeak(QUESTION, tmp_path_factory.mktemp("speech") / "question.wav")
