"""Structured logs: one JSON object (or one text line) per record, tagged with the session id.

`session_id` is a context variable the realtime session and the REST handler set; the filter
copies it onto every record logged inside that context. Callers log event names, sizes, codes and
timings only — never audio, base64 payloads or keys (nothing here could scrub them afterwards).
"""

from __future__ import annotations

import contextvars
import json
import logging
import time

session_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("session_id",
                                                                        default=None)
# Record attributes that are not extra fields; uvicorn adds an ANSI-coloured copy of its messages.
_STANDARD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "session_id",
                                                            "color_message"}


class _SessionFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.session_id = session_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "logger", "msg", "session_id", **extra} on one line."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if getattr(record, "session_id", None):
            data["session_id"] = record.session_id
        data.update({k: v for k, v in vars(record).items() if k not in _STANDARD_FIELDS})
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD_FIELDS}
        session = getattr(record, "session_id", None)
        line = f"{self.formatTime(record)} {record.levelname.lower():7s} {record.name}"
        line += f" [{session}]" if session else ""
        line += f" {record.getMessage()}"
        line += "".join(f" {k}={v}" for k, v in extra.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str, fmt: str) -> None:
    """Route the root, uvicorn and our loggers through one handler on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_SessionFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
