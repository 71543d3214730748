"""A Realtime connection for `icot talk`: open, send and receive events, and say clearly why not.

Speaks only the public OpenAI Realtime protocol (GA event names; beta names from other servers
are mapped to GA on receipt) over the `websockets` library, so it works against any compatible
server. Every failure to connect becomes a `TalkError` whose message a person can act on:
unreachable server, bad key, full or loading server (close 1013), not a Realtime server.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import itertools
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

CONNECT_TIMEOUT_S = 10.0
TRANSCRIPTION_MODEL = "whisper-1"  # OpenAI's name; icot serve answers any name with its own ASR
CLOSE_TRY_AGAIN_LATER = 1013
BETA_TO_GA = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}
CLOSE_MEANINGS = {
    1000: "the session ended (idle timeout or normal close)",
    1008: "the session broke a server limit",
    1009: "a message was larger than the server accepts",
    1011: "the server hit an internal error",
    1012: "the server is restarting",
    CLOSE_TRY_AGAIN_LATER: "the server is full, still loading or shutting down; try again later",
}


class TalkError(Exception):
    """Why `icot talk` cannot go on, worded for the person at the terminal."""


def closed_message(closed: ConnectionClosed) -> str:
    code = closed.rcvd.code if closed.rcvd is not None else None
    reason = closed.rcvd.reason if closed.rcvd is not None else ""
    meaning = CLOSE_MEANINGS.get(code, "the connection closed") if code else "the connection broke"
    return f"{meaning} (close {code}{': ' + reason if reason else ''})"


class Connection:
    """One open session: `send(type, **fields)` returns the event id; `recv()` the next event."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._held: collections.deque[dict[str, Any]] = collections.deque()

    @classmethod
    async def open(cls, url: str, api_key: str | None) -> Connection:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        try:
            ws = await connect(url, additional_headers=headers, max_size=None,
                               open_timeout=CONNECT_TIMEOUT_S, subprotocols=["realtime"])
        except InvalidStatus as refused:
            raise TalkError(_refusal(url, refused.response.status_code, api_key)) from None
        except InvalidURI as exc:
            raise TalkError(f"{url} is not a WebSocket URL (ws://HOST:PORT/v1/realtime): {exc}") \
                from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise TalkError(f"cannot reach a Realtime server at {url} ({exc}); is `icot serve` "
                            "running there? (--url ws://HOST:PORT/v1/realtime)") from None
        connection = cls(ws)
        try:
            first = await connection.recv(CONNECT_TIMEOUT_S)
        except ConnectionClosed as closed:
            raise TalkError(f"the server closed the session at once: {closed_message(closed)}") \
                from None
        except TimeoutError:
            raise TalkError(f"{url} sent no session.created; is it a Realtime server?") from None
        if first["type"] != "session.created":
            raise TalkError(f"expected session.created first, got {first['type']}")
        return connection

    async def send(self, type: str, **fields: Any) -> str:
        event_id = f"evt_talk_{next(self._ids)}"
        await self.ws.send(json.dumps({"type": type, "event_id": event_id, **fields}))
        return event_id

    async def append(self, pcm16: bytes) -> str:
        return await self.send("input_audio_buffer.append",
                               audio=base64.b64encode(pcm16).decode("ascii"))

    async def recv(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The next server event (GA names); ConnectionClosed or TimeoutError when none comes."""
        if self._held:
            return self._held.popleft()
        raw = await asyncio.wait_for(self.ws.recv(), timeout_s)  # cancelling recv loses nothing
        event = json.loads(raw)
        event["type"] = BETA_TO_GA.get(event.get("type"), event.get("type"))
        return event

    async def errors_so_far(self) -> list[dict[str, Any]]:
        """The `error` events already received, without waiting; other events stay for recv."""
        arrived = list(self._held)
        self._held.clear()
        while True:
            try:
                arrived.append(await self.recv(0))
            except TimeoutError:
                break
        self._held.extend(e for e in arrived if e["type"] != "error")
        return [e["error"] for e in arrived if e["type"] == "error"]

    async def close(self) -> None:
        await self.ws.close()


def session_update(turn_detection: dict[str, Any] | None) -> dict[str, Any]:
    """A GA session.update: 24 kHz PCM16 both ways, the given turn detection (None: manual),
    and input transcription (shown as the user's words when the server offers it)."""
    pcm = {"type": "audio/pcm", "rate": 24_000}
    return {"type": "realtime", "audio": {
        "input": {"format": pcm, "turn_detection": turn_detection,
                  "transcription": {"model": TRANSCRIPTION_MODEL}},
        "output": {"format": pcm}}}


def decode_audio(event: dict[str, Any]) -> bytes:
    return base64.b64decode(event["delta"])


def _refusal(url: str, status: int, api_key: str | None) -> str:
    if status == 401:
        given = "the API key was refused" if api_key else "the server needs an API key"
        return f"{given} (HTTP 401): pass --api-key KEY or set ICOT_API_KEY"
    if status == 403:
        return f"{url} refused this client (HTTP 403)"
    if status == 404:
        return f"{url} has no Realtime endpoint (HTTP 404); the path is usually /v1/realtime"
    return f"{url} refused the WebSocket (HTTP {status})"
