"""Fixtures for the deployment tests: the docker/ files, spoken turns, loopback processes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(Path(__file__).parent))  # processes.py
sys.path.insert(0, str(ROOT / "tests" / "server"))  # realtime_client.py


@pytest.fixture(scope="session")
def speak24k(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], np.ndarray]:
    """speak24k(text) → espeak-ng speech at the wire rate, float32 (T,) at 24 kHz."""
    from bench.latency import _speak

    folder = tmp_path_factory.mktemp("espeak24k")
    return lambda text: _speak(text, "en-us", folder / f"{abs(hash(text))}.wav")
