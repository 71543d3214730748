"""What a framework session saw: raw server events in arrival order, and the errors it logged.

`ServerEvents` is fed by a framework's own raw-event hook; tests wait on it for the next event of
a kind. `ErrorRecords` catches log records at ERROR level from the framework's loggers, so a test
can assert the framework itself reported nothing.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from typing import Any

from openai_events import EventLog

EVENT_TIMEOUT_S = 60.0
Predicate = Callable[[dict[str, Any]], bool]


class ServerEvents(EventLog):
    """An `EventLog` that tests can also wait on, event by event."""

    def __init__(self, dialect: str = "ga") -> None:
        super().__init__(dialect)
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def add(self, event: Any) -> None:
        super().add(event)
        self._queue.put_nowait(self.events[-1])

    async def next(self, match: str | Predicate,
                   timeout_s: float = EVENT_TIMEOUT_S) -> dict[str, Any]:
        """The next event that matches a type or a predicate (earlier ones are passed over)."""
        test = (lambda e: e.get("type") == match) if isinstance(match, str) else match
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            event = await asyncio.wait_for(self._queue.get(), max(0.01, deadline - loop.time()))
            if test(event):
                return event

    async def until_done(self, timeout_s: float = EVENT_TIMEOUT_S) -> list[dict[str, Any]]:
        """Events from now up to and including the next `response.done`."""
        start = len(self.events) - self._queue.qsize()
        done = await self.next("response.done", timeout_s)
        end = next(i for i in range(len(self.events) - 1, -1, -1) if self.events[i] is done)
        return self.events[start:end + 1]


class ErrorRecords(logging.Handler):
    """Collects ERROR records of the named loggers while installed (`with ErrorRecords(...)`)."""

    def __init__(self, *logger_names: str) -> None:
        super().__init__(level=logging.ERROR)
        self.loggers = [logging.getLogger(name) for name in logger_names]
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]

    def __enter__(self) -> ErrorRecords:
        for logger in self.loggers:
            logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for logger in self.loggers:
            logger.removeHandler(self)


def reply_transcript(done: dict[str, Any]) -> str:
    """The spoken reply's text as `response.done` reports it ('' when there was none)."""
    for item in done["response"].get("output") or []:
        for part in item.get("content") or []:
            text = part.get("transcript") or part.get("text")
            if text:
                return text
    return ""


def audio_bytes(events: list[dict[str, Any]]) -> int:
    """Bytes of reply PCM the events carried (GA or beta audio deltas)."""
    return sum(len(base64.b64decode(e["delta"])) for e in events
               if e.get("type") in ("response.output_audio.delta", "response.audio.delta"))
