"""Browser origins: CORS headers and preflight for REST, an `Origin` check on WebSocket handshakes.

A page from the server's own origin or from one in `allowed_origins` may call the REST endpoints
from script and open `/v1/realtime`; a WebSocket handshake from any other origin is refused with
HTTP 403 before a session starts (browsers do not apply CORS to WebSockets, so without this any
web site a user visits could talk to a server on their machine). A client that sends no `Origin`
(an SDK, `icot talk`) is not a browser and passes; the API key still guards it. Knows nothing of
sessions or the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from server.errors import ErrorCode, error_response

ANY_ORIGIN = "*"
CORS_METHODS = ("GET", "POST")
CORS_HEADERS = ("Authorization", "Content-Type", "Accept", "OpenAI-Beta")
CORS_EXPOSED_HEADERS = ("Retry-After",)
CORS_MAX_AGE_S = 600


def check_origin(origin: str) -> str:
    """`origin` as browsers send it (`scheme://host[:port]`, lower case), or ValueError."""
    if origin == ANY_ORIGIN:
        return origin
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") \
            or parts.query or parts.fragment:
        raise ValueError(f"an origin is scheme://host[:port] (http or https), got {origin!r}")
    return f"{parts.scheme}://{parts.netloc}".lower()


class OriginPolicy:
    """Which browser origins may use the server: its own, the configured ones, or any (`*`)."""

    def __init__(self, allowed: Sequence[str]) -> None:
        self.allowed = frozenset(check_origin(origin) for origin in allowed)

    @property
    def any(self) -> bool:
        return ANY_ORIGIN in self.allowed

    def allows(self, origin: str | None, host: str | None) -> bool:
        """Whether a request with this `Origin` header (None: not a browser) and `Host` passes."""
        if origin is None or self.any or origin.lower() in self.allowed:
            return True
        return self.same_origin(origin, host)

    @staticmethod
    def same_origin(origin: str, host: str | None) -> bool:
        """The page came from this server: the origin's host and port are the request's Host.

        The scheme is not compared, so a page served over https by a TLS proxy in front of this
        plain-http server still counts as its own.
        """
        return host is not None and urlsplit(origin).netloc.lower() == host.lower()


class WebSocketOriginGuard:
    """ASGI middleware: refuses WebSocket handshakes whose `Origin` the policy does not allow."""

    def __init__(self, app: ASGIApp, policy: OriginPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if not self.policy.allows(origin, headers.get("host")):
                metrics = scope["app"].state.icot.metrics
                await WebSocket(scope, receive, send).send_denial_response(error_response(
                    metrics, 403, ErrorCode.ORIGIN_NOT_ALLOWED,
                    f"origin {origin} may not open WebSockets here (see allowed_origins)"))
                return
        await self.app(scope, receive, send)


def install(app: ASGIApp, allowed_origins: Sequence[str]) -> None:
    """Add the REST CORS middleware and the WebSocket origin guard to a FastAPI app."""
    policy = OriginPolicy(allowed_origins)
    origins = [ANY_ORIGIN] if policy.any else sorted(policy.allowed)
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=CORS_METHODS,
                       allow_headers=CORS_HEADERS, expose_headers=CORS_EXPOSED_HEADERS,
                       max_age=CORS_MAX_AGE_S)
    app.add_middleware(WebSocketOriginGuard, policy=policy)
