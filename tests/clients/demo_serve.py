"""The demo server the client tests talk to, and what they share: the key, the limits, ports.

Imported by tests/clients/conftest.py and the tests (this folder is put on sys.path there).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
DEMO_BUNDLE = ROOT / "checkpoints" / "demo"
API_KEY = "client-tests-key"
SLOTS = 2
MAX_TURN_AUDIO_S = 15  # small, so a long file meets the turn limit quickly
START_TIMEOUT_S = 240.0
TALK_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class DemoServer:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=10).text

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Until no session is open (sessions of an earlier test close asynchronously)."""
        deadline = time.monotonic() + timeout_s
        while "icot_active_sessions 0.0" not in self.metrics():
            assert time.monotonic() < deadline, "sessions stayed open"
            time.sleep(0.05)


@dataclass(frozen=True)
class Talked:
    returncode: int
    stdout: str
    stderr: str
