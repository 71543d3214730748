"""Serving an app with uvicorn until stopped, draining on SIGTERM (what `icot serve` runs).

uvicorn runs the `websockets` library through its sans-I/O protocol (`ws="websockets-sansio"`;
uvicorn deprecates its older `websockets` adapter), which also carries the handshake-denial
extension the 401 answer needs.

SIGTERM drains: `/readyz` turns 503 and new sessions are refused (1013 / 503) while responses in
flight get `drain_timeout_s` to finish; then sessions close with 1012 and uvicorn exits. A second
SIGTERM, or SIGINT, stops at once. The command line (flags, loading the bundle) is
server/cli.py; `ThreadedServer` runs the same server in a thread for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType

import uvicorn
from fastapi import FastAPI

from server.settings import ServerSettings
from server.state import ServerState

log = logging.getLogger("icot.server")
TRANSPORT_SIZE_FACTOR = 4  # frames up to 4× the message limit reach the app (error event);
#                            larger ones are cut by the transport (close 1009)
UVICORN_GRACE_S = 5.0


def serve_app(app: FastAPI, settings: ServerSettings) -> int:
    """Run `app` with uvicorn until SIGTERM (drain), SIGINT or an engine failure; the exit
    status: 0, or 1 after an engine failure (for a supervisor to restart the server)."""
    server = build_server(app, settings)
    server.run()
    return server.exit_code


def build_server(app: FastAPI, settings: ServerSettings) -> DrainingServer:
    """The uvicorn server `icot serve` runs (websockets, our transport size limit)."""
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, ws="websockets-sansio",
        ws_max_size=TRANSPORT_SIZE_FACTOR * settings.max_message_bytes, lifespan="on",
        log_config=None, timeout_graceful_shutdown=UVICORN_GRACE_S)
    return DrainingServer(config, app.state.icot, settings.drain_timeout_s)


class DrainingServer(uvicorn.Server):
    """uvicorn, except that the first SIGTERM drains the app before the usual shutdown."""

    def __init__(self, config: uvicorn.Config, state: ServerState, drain_timeout_s: float):
        super().__init__(config)
        self.state = state
        self.drain_timeout_s = drain_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self.exit_code = 0
        state.on_engine_failure = self._engine_failed

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop serving the app, once started."""
        return self._loop

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        first_term = sig == signal.SIGTERM and self._drain_task is None and not self.should_exit
        if first_term and self._loop is not None:
            self._loop.call_soon_threadsafe(self._start_drain)
            return
        super().handle_exit(sig, frame)

    def _engine_failed(self) -> None:
        """The engine failed (ServerState.watch_engine): drain, then exit with status 1."""
        self.exit_code = 1
        self._start_drain()

    def _start_drain(self) -> None:
        if self._drain_task is None:
            self._drain_task = asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        log.info("SIGTERM: draining", extra={"timeout_s": self.drain_timeout_s})
        await self.state.drain(self.drain_timeout_s)
        self.should_exit = True


class ThreadedServer:
    """The server `icot serve` builds, run in a background thread on a loopback port: for tests
    and benchmarks that drive it over real sockets from the same process. Signals stay with the
    main thread; `stop` is an ordinary uvicorn shutdown (no drain)."""

    START_TIMEOUT_S = 30.0

    def __init__(self, app: FastAPI, settings: ServerSettings) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind((settings.host, settings.port))
        self.port: int = self._socket.getsockname()[1]
        self.server = build_server(app, settings)
        self.state: ServerState = app.state.icot
        self._thread = threading.Thread(target=self.server.run,
                                        kwargs={"sockets": [self._socket]}, daemon=True)

    def start(self, *, wait_ready: bool = True) -> ThreadedServer:
        self._thread.start()
        self.wait(lambda: self.server.started)
        if wait_ready:
            self.wait(lambda: self.state.ready or self.state.failure is not None)
            if self.state.failure is not None:
                raise RuntimeError(self.state.failure)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(self.START_TIMEOUT_S)

    def wait(self, condition: Callable[[], bool], timeout_s: float = START_TIMEOUT_S) -> None:
        """Poll `condition` until it holds; TimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise TimeoutError("the server did not get there in time")
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

