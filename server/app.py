"""The FastAPI app factory: routes, shared state and the runtime's warm-up and shutdown.

`create_app(settings, runtime)` wires an already loaded runtime into `/v1/realtime`,
`/v1/speech-to-speech` and the operations endpoints. The app starts serving at once; the
runtime warms up in the background and `/readyz` turns 200 when it is done. Health probes and
`/metrics` need no API key. No model code here: the runtime is only called through its interface.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from server import client_secrets, cors, http_statuses, rest, web
from server.realtime.endpoint import realtime_endpoint
from server.settings import ServerSettings
from server.state import ServerState

if TYPE_CHECKING:
    from model.runtime import Runtime


def create_app(settings: ServerSettings, runtime: Runtime) -> FastAPI:
    state = ServerState(settings, runtime)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warmup = asyncio.create_task(state.warmup())
        watch = asyncio.create_task(state.watch_engine())
        try:
            yield
        finally:
            if not state.draining:
                await state.drain(0.0)
            for task in (warmup, watch):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await runtime.close()

    app = FastAPI(title="ICoT Voice", lifespan=lifespan)
    app.state.icot = state
    http_statuses.install(app, state.metrics)
    app.add_api_websocket_route("/v1/realtime", realtime_endpoint)
    app.include_router(rest.router)
    app.include_router(client_secrets.router)
    web.mount(app)
    cors.install(app, settings.allowed_origins)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        why = state.refusal()
        if why is None:
            return JSONResponse({"status": "ready", "chain": str(runtime.chain),
                                 "slots": runtime.max_slots})
        return JSONResponse({"status": "not ready", "reason": why}, status_code=503)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    return app
