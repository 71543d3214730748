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


def _format(rate: int, dialect: Dialect) -> Any:
    if dialect is Dialect.BETA:
        return "pcm16" if rate == DEFAULT_RATE_HZ else {"type": "audio/pcm", "rate": rate}
    return {"type": "audio/pcm", "rate": rate}


def _render_session(session: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    turn_detection = session["turn_detection"]
    common = {"id": session["id"], "object": "realtime.session", "chain": session["chain"]}
    if dialect is Dialect.BETA:  # beta's `model` is a closed list of OpenAI names: left out
        return {**common, "modalities": session["modalities"],
                "input_audio_format": _format(session["input_rate"], dialect),
                "output_audio_format": _format(session["output_rate"], dialect),
                "turn_detection": turn_detection}
    return {**common, "type": "realtime", "model": session["model"],
            "output_modalities": session["modalities"],
            "audio": {
                "input": {"format": _format(session["input_rate"], dialect),
                          "turn_detection": turn_detection},
                "output": {"format": _format(session["output_rate"], dialect)},
            }}


def _render_response(response: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    rate = response.pop("output_rate")
    for item in response["output"]:
        _render_item(item, dialect)
    if dialect is Dialect.BETA:
        response["output_audio_format"] = _format(rate, dialect)
        return response
    response["output_modalities"] = response.pop("modalities")
    response["audio"] = {"output": {"format": _format(rate, dialect)}}
    return response


def _render_item(item: dict[str, Any], dialect: Dialect) -> None:
    """GA names an assistant's audio content `output_audio` (content parts stay `audio`)."""
    for part in item["content"]:
        if dialect is Dialect.GA and part["type"] == "audio":
            part["type"] = "output_audio"
