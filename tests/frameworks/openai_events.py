"""Strict checks of server events against the `openai` package's own realtime event types.

Every event a framework test sees goes through `check_event`: it must parse as one member of
the SDK's discriminated `RealtimeServerEvent` union of its dialect (GA, or beta), exactly as
openai-agents validates what it receives, and the status reasons it carries must be ones those
types allow. A failure names the event and pydantic's complaint.
"""

from __future__ import annotations

import json
from typing import Any

from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime import RealtimeServerEvent as GaServerEvent
from pydantic import TypeAdapter, ValidationError

_ADAPTERS = {"ga": TypeAdapter(GaServerEvent), "beta": TypeAdapter(BetaServerEvent)}


class EventLog:
    """Every raw server event of one framework session, each checked as it arrives."""

    def __init__(self, dialect: str = "ga") -> None:
        self.dialect = dialect
        self.events: list[dict[str, Any]] = []
        self.invalid: list[str] = []

    def add(self, event: dict[str, Any] | str | bytes) -> None:
        data = json.loads(event) if isinstance(event, str | bytes) else dict(event)
        self.events.append(data)
        problem = check_event(data, self.dialect)
        if problem is not None:
            self.invalid.append(problem)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    def types(self) -> list[str]:
        return [e.get("type", "?") for e in self.events]

    def errors(self) -> list[dict[str, Any]]:
        return self.of_type("error")


def check_event(event: dict[str, Any], dialect: str = "ga") -> str | None:
    """None when `event` is a valid server event of `dialect`, else what is wrong with it."""
    try:
        parsed = _ADAPTERS[dialect].validate_python(event)
    except ValidationError as exc:
        return f"{event.get('type')}: {exc.errors(include_url=False)[:3]}"
    if parsed.type != event.get("type"):
        return f"{event.get('type')} parsed as {parsed.type}"
    return None
