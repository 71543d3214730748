"""Render a server event as JSON text in the connection's dialect: beta or GA event names.

Server events are built with beta names and shapes (server_events.py). GA renames some events
(`response.audio.delta` → `response.output_audio.delta`), nests session and response audio
formats, and has events beta lacks (`conversation.item.done`), which beta clients do not get.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from server.realtime.client_events import DEFAULT_RATE_HZ
from server.realtime.server_events import ServerEvent


class Dialect(StrEnum):
    """Event names: `beta` (OpenAI-Beta: realtime=v1) or `ga` (the GA Realtime API)."""

    BETA = "beta"
    GA = "ga"


# Beta name → GA name (events not listed keep their name).
GA_NAMES: dict[str, str] = {
    "conversation.item.created": "conversation.item.added",
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
}
GA_ONLY: frozenset[str] = frozenset({"conversation.item.done"})  # not sent to beta clients


def render(event: ServerEvent, dialect: Dialect) -> str | None:
    """The JSON text of `event` in `dialect`, or None when the dialect has no such event."""
    if dialect is Dialect.BETA and event.type in GA_ONLY:
        return None
    data = event.model_dump(mode="json")
    if dialect is Dialect.GA:
        data["type"] = GA_NAMES.get(event.type, event.type)
    _render_nested(data, dialect)
    return json.dumps(data, separators=(",", ":"))


def _render_nested(data: dict[str, Any], dialect: Dialect) -> None:
    if "session" in data:
        data["session"] = _render_session(data["session"], dialect)
    if "response" in data:
        data["response"] = _render_response(data["response"], dialect)
    if "item" in data:
        _render_item(data["item"], dialect)


_BETA_G711 = {"audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
_ECHOED = ("instructions", "tools", "tool_choice", "temperature")  # same name in both dialects


def _format(rate: int, dialect: Dialect, kind: str = "audio/pcm") -> Any:
    if kind in _BETA_G711:
        return _BETA_G711[kind] if dialect is Dialect.BETA else {"type": kind}
    if dialect is Dialect.BETA:
        return "pcm16" if rate == DEFAULT_RATE_HZ else {"type": "audio/pcm", "rate": rate}
    return {"type": "audio/pcm", "rate": rate}


def _render_session(session: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    turn_detection = session["turn_detection"]
    common = {"id": session["id"], "object": "realtime.session", "chain": session["chain"],
              **{key: session[key] for key in _ECHOED if session.get(key) is not None}}
    input_format = _format(session["input_rate"], dialect, session.get("input_format", ""))
    output_format = _format(session["output_rate"], dialect, session.get("output_format", ""))
    voice = {"voice": session["voice"]} if session.get("voice") is not None else {}
    max_tokens = session.get("max_output_tokens")
    if dialect is Dialect.BETA:  # beta's `model` is a closed list of OpenAI names: left out
        return {**common, **voice, "modalities": session["modalities"],
                "input_audio_format": input_format, "output_audio_format": output_format,
                "input_audio_transcription": session.get("transcription"),
                "turn_detection": turn_detection,
                **({"max_response_output_tokens": max_tokens} if max_tokens is not None else {})}
    return {**common, "type": "realtime", "model": session["model"],
            "output_modalities": session["modalities"],
            **({"max_output_tokens": max_tokens} if max_tokens is not None else {}),
            "audio": {
                "input": {"format": input_format, "turn_detection": turn_detection,
                          "transcription": session.get("transcription")},
                "output": {"format": output_format, **voice},
            }}


def _render_response(response: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    rate, kind = response.pop("output_rate"), response.pop("output_format")
    for item in response["output"]:
        _render_item(item, dialect)
    if dialect is Dialect.BETA:
        response["output_audio_format"] = _format(rate, dialect, kind)
        return response
    response["output_modalities"] = response.pop("modalities")
    response["audio"] = {"output": {"format": _format(rate, dialect, kind)}}
    return response


_GA_CONTENT_TYPES = {"audio": "output_audio", "text": "output_text"}


def _render_item(item: dict[str, Any], dialect: Dialect) -> None:
    """GA names an assistant's content `output_audio` / `output_text` (content parts stay
    `audio` / `text`); fields a part does not use are left out."""
    for part in item["content"]:
        for unused in [key for key in ("transcript", "text") if part.get(key) is None]:
            if not (unused == "transcript" and part["type"] in ("audio", "input_audio")):
                del part[unused]
        if dialect is Dialect.GA:
            part["type"] = _GA_CONTENT_TYPES.get(part["type"], part["type"])
