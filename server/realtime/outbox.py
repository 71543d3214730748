"""The sending side of one realtime WebSocket: renders server events in the session's dialect.

Everything a session or its response sends goes through one `Outbox`, so server events flow one
way (session → response → outbox → socket) and never call back into the session. Knows nothing
of the conversation or the model; must not receive.

A client that stops reading fills the socket buffers, and then a send waits for them to drain
(uvicorn's flow control): nothing piles up in the process. A send still waiting after
`STALL_TIMEOUT_S` shuts the outbox as stalled (`gone` is set), so the session ends and frees its
slot; uvicorn's keep-alive then closes the connection (1011) behind the data already queued.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.websockets import WebSocket, WebSocketDisconnect

from server.realtime import server_events as out
from server.realtime.dialect import Dialect, render

STALL_TIMEOUT_S = 10.0
log = logging.getLogger("icot.realtime")


class Outbox:
    """Sends rendered events one at a time; once the peer is gone or it is shut, it drops them."""

    def __init__(self, websocket: WebSocket, dialect: Dialect) -> None:
        self.ws = websocket
        self.dialect = dialect
        self.closed = False
        self.gone = asyncio.Event()  # set when the client stopped reading (a stalled send)
        self._lock = asyncio.Lock()

    async def send(self, event: out.ServerEvent) -> None:
        """Send one server event in this session's dialect; a gone peer is not an error."""
        text = render(event, self.dialect)
        if text is None or self.closed:
            return
        async with self._lock:
            try:
                await asyncio.wait_for(self.ws.send_text(text), STALL_TIMEOUT_S)
            except TimeoutError:
                log.warning("client stopped reading: closing the session",
                            extra={"stalled_s": STALL_TIMEOUT_S})
                self.closed = True
                self.gone.set()
            except (RuntimeError, OSError, WebSocketDisconnect):
                self.closed = True

    def shut(self) -> None:
        """Send nothing more (the session is ending)."""
        self.closed = True
