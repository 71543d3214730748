"""A raw `websockets` Realtime client for the server tests: send events, collect events.

Speaks JSON events only; audio helpers turn 16 kHz float32 test speech into base64 PCM16 at the
wire rate. Every receive has a timeout so a missing event fails the test instead of hanging.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from model.audio import float_to_pcm16, pcm16_to_float, resample

RECV_TIMEOUT_S = 15.0


def pcm_b64(samples16k: np.ndarray, rate: int = 24_000) -> str:
    """16 kHz float32 test audio → base64 PCM16 at `rate`."""
    return base64.b64encode(float_to_pcm16(resample(samples16k, 16_000, rate))).decode()


def decode_deltas(events: list[dict[str, Any]], kind: str) -> np.ndarray:
    """Concatenate the base64 PCM16 of every `kind` event into float32 samples."""
    pcm = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == kind)
    return pcm16_to_float(pcm)


class Client:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.log: list[dict[str, Any]] = []  # every event received, with "_t" arrival time

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> Client:
        return cls(await connect(url, max_size=None, **kwargs))

    async def close(self) -> None:
        await self.ws.close()

    async def send(self, **event: Any) -> None:
        await self.ws.send(json.dumps(event))

    async def send_raw(self, message: str | bytes) -> None:
        await self.ws.send(message)

    async def recv(self, timeout_s: float = RECV_TIMEOUT_S) -> dict[str, Any]:
        event = json.loads(await asyncio.wait_for(self.ws.recv(), timeout_s))
        event["_t"] = time.perf_counter()
        self.log.append(event)
        return event

    async def until(self, match: str | Callable[[dict[str, Any]], bool],
                    timeout_s: float = RECV_TIMEOUT_S) -> list[dict[str, Any]]:
        """Events received up to and including the first that matches (a type or a predicate).

        An `error` event that does not match fails at once, naming its code.
        """
        test = (lambda e: e["type"] == match) if isinstance(match, str) else match
        events = []
        deadline = time.monotonic() + timeout_s
        while True:
            event = await self.recv(max(0.01, deadline - time.monotonic()))
            events.append(event)
            if test(event):
                return events
            if event["type"] == "error":
                raise AssertionError(f"unexpected error event: {event['error']}")

    async def append(self, samples16k: np.ndarray, *, rate: int = 24_000,
                     chunk_ms: int = 100) -> None:
        """Stream audio as appends of `chunk_ms` each (as fast as the socket takes them)."""
        pcm = float_to_pcm16(resample(samples16k, 16_000, rate))
        step = 2 * rate * chunk_ms // 1000
        for start in range(0, len(pcm), step):
            await self.send(type="input_audio_buffer.append",
                            audio=base64.b64encode(pcm[start:start + step]).decode())


def types(events: list[dict[str, Any]]) -> list[str]:
    """Event types with consecutive repeats collapsed (delta runs become one entry)."""
    out: list[str] = []
    for event in events:
        if not out or out[-1] != event["type"]:
            out.append(event["type"])
    return out
