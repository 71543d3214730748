"""The `/v1/realtime` WebSocket route: auth, dialect, admission lease, then one `RealtimeSession`.

A missing or wrong API key is refused in the handshake with HTTP 401 (JSON body). A server that
is loading, draining or out of engine slots accepts and closes at once with 1013 (try again
later), which browsers and the openai SDK both surface. The dialect comes from the
`OpenAI-Beta: realtime=v1` header (or the `openai-beta.realtime-v1` subprotocol, for browsers)
or `?dialect=beta|ga`; the default is GA.
"""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket

from server.admission import Refused
from server.auth import choose_subprotocol
from server.errors import ErrorCode, error_response
from server.limits import CLOSE_TRY_AGAIN_LATER
from server.realtime.dialect import Dialect
from server.realtime.session import RealtimeSession
from server.state import ServerState

BETA_SUBPROTOCOL = "openai-beta.realtime-v1"
log = logging.getLogger("icot.realtime")


def choose_dialect(websocket: WebSocket) -> Dialect:
    asked = websocket.query_params.get("dialect")
    if asked in (Dialect.BETA.value, Dialect.GA.value):
        return Dialect(asked)
    beta_header = "realtime=v1" in websocket.headers.get("openai-beta", "")
    if beta_header or BETA_SUBPROTOCOL in websocket.scope.get("subprotocols", []):
        return Dialect.BETA
    return Dialect.GA


async def realtime_endpoint(websocket: WebSocket) -> None:
    state: ServerState = websocket.app.state.icot
    offered = list(websocket.scope.get("subprotocols", []))
    if not state.auth.allows_realtime(websocket.headers, offered):
        await websocket.send_denial_response(error_response(
            state.metrics, 401, ErrorCode.UNAUTHORIZED,
            "a valid API key is required (Bearer header or openai-insecure-api-key. "
            "subprotocol)"))
        return
    subprotocol = choose_subprotocol(offered)
    try:
        lease = state.admit()
    except Refused as refused:
        state.metrics.errors.labels(code=refused.code.value).inc()
        log.info("session refused", extra={"why": refused.reason})
        await websocket.accept(subprotocol=subprotocol)
        await websocket.close(CLOSE_TRY_AGAIN_LATER, f"{refused.reason}; try again later")
        return
    with lease:
        await websocket.accept(subprotocol=subprotocol)
        session = RealtimeSession(websocket, state, choose_dialect(websocket))
        lease.hold(session)
        await session.run()
