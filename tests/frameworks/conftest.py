"""Fixtures for the voice-agent framework tests: a live `icot serve` and espeak-ng speech."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # framework_server, openai_events, session_log

from framework_server import LiveServer, espeak_pcm, start_server, stop_server  # noqa: E402


@pytest.fixture(scope="module")
def icot_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`icot serve` of checkpoints/demo on loopback, shared by one test module."""
    live = start_server(tmp_path_factory.mktemp("icot-serve") / "server.log")
    yield live
    stop_server(live)


@pytest.fixture(scope="session")
def speech_pcm(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., bytes]:
    """speech_pcm(text, voice="en-us") → espeak-ng speech as PCM16 mono at 24 kHz."""
    folder = tmp_path_factory.mktemp("espeak-24k")
    cache: dict[tuple[str, str], bytes] = {}

    def make(text: str, voice: str = "en-us") -> bytes:
        if (text, voice) not in cache:
            cache[(text, voice)] = espeak_pcm(text, voice, folder / f"{len(cache)}.wav")
        return cache[(text, voice)]

    return make
