"""`icot talk`'s microphone mode against the real demo server, with file-fed devices
(file_devices.py) in place of a sound card: server VAD turns are answered and played, and
speaking over a reply stops it and truncates it to what the speaker played."""

from __future__ import annotations

import asyncio
import io

import numpy as np
from demo_serve import API_KEY
from file_devices import FileDevices

from clients.connection import Connection
from clients.microphone import talk_live
from clients.replies import Printer

QUESTION, ANSWER = "what is two plus three", "two plus three is five"
LISTEN_TIMEOUT_S = 40.0


async def listen_until(demo_server, devices: FileDevices, done) -> str:
    """Run the microphone mode until `done(output)` holds; the conversation it printed."""
    out, err = io.StringIO(), io.StringIO()
    conn = await Connection.open(demo_server.ws_url, API_KEY)
    session = asyncio.create_task(talk_live(conn, devices, Printer(out, err)))
    try:
        for _ in range(int(LISTEN_TIMEOUT_S / 0.1)):
            if done(out.getvalue()) or session.done():
                break
            await asyncio.sleep(0.1)
    finally:
        session.cancel()
        await asyncio.gather(session, return_exceptions=True)
        await conn.close()
    assert err.getvalue() == ""
    return out.getvalue()


def speech_played_s(devices: FileDevices) -> float:
    """Seconds of sound (not silence) the speaker was given."""
    played = np.frombuffer(bytes(devices.played), dtype="<i2")
    return np.count_nonzero(np.abs(played) > 300) / 24_000


async def test_a_spoken_turn_is_answered_and_played(demo_server, speech_wav):
    devices = FileDevices(speech_wav(QUESTION, lead_s=0.5, tail_s=1.0), loop=False)
    shown = await listen_until(demo_server, devices, lambda out: "completed" in out
                               and speech_played_s(devices) > 0.5)  # the reply is ≈ 1.5 s
    assert f"assistant: {ANSWER}\n" in shown and "first audio" in shown
    assert speech_played_s(devices) > 0.5


async def test_speaking_over_the_reply_stops_it(demo_server, speech_wav):
    # the question again and again: each repeat starts while the last reply plays
    devices = FileDevices(speech_wav(QUESTION, lead_s=0.3, tail_s=1.0), loop=True)
    shown = await listen_until(demo_server, devices, lambda out: "interrupted after" in out)
    interrupted_ms = int(shown.split("interrupted after ")[1].split(" ms")[0])
    assert 0 < interrupted_ms < 1500  # the reply is about 1.5 s long: stopped before its end
