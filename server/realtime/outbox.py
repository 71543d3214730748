"""The sending side of one realtime WebSocket: renders server events in the session's dialect.

Everything a session or its response sends goes through one `Outbox`, so server events flow one
way (session → response → outbox → socket) and never call back into the session. Knows nothing
of the conversation or the model; must not receive.
"""

from __future__ import annotations

import asyncio

from starlette.websockets import WebSocket, WebSocketDisconnect

from server.realtime import server_events as out
from server.realtime.dialect import Dialect, render


class Outbox:
    """Sends rendered events one at a time; once the peer is gone or it is shut, it drops them."""

    def __init__(self, websocket: WebSocket, dialect: Dialect) -> None:
        self.ws = websocket
        self.dialect = dialect
        self.closed = False
        self._lock = asyncio.Lock()

    async def send(self, event: out.ServerEvent) -> None:
        """Send one server event in this session's dialect; a gone peer is not an error."""
        text = render(event, self.dialect)
        if text is None or self.closed:
            return
        async with self._lock:
            try:
                await self.ws.send_text(text)
            except (RuntimeError, OSError, WebSocketDisconnect):
                self.closed = True

    def shut(self) -> None:
        """Send nothing more (the session is ending)."""
        self.closed = True
