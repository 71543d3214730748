"""What all requests of one app share: settings, runtime, VAD model, slots, metrics, readiness.

Both endpoints are admitted here (`admit`: one lease per session or request). Also the graceful
drain used on SIGTERM: refuse new sessions and responses, let responses in flight finish within a
timeout, then close every admitted session with 1012 (service restart). Holds no per-session
state beyond the set of leases.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from server.admission import Lease, Refused
from server.auth import Authenticator
from server.errors import ErrorCode
from server.limits import CLOSE_SERVICE_RESTART, SlotPool
from server.metrics import Metrics
from server.realtime.transcription import SpeechRecognizer, TranscriptionConfig
from server.settings import ServerSettings
from server.vad import SileroVad

if TYPE_CHECKING:
    from model.runtime import Runtime

log = logging.getLogger("icot.server")
DRAIN_POLL_S = 0.05
ENGINE_WATCH_S = 0.1


class ServerState:
    def __init__(self, settings: ServerSettings, runtime: Runtime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.model_name = settings.bundle.name or "icot"
        self.metrics = Metrics(lambda: runtime.active_slots)
        self.auth = Authenticator(settings.api_key)
        self.slots = SlotPool(runtime.max_slots)
        self.vad = SileroVad()
        self.recognizer = SpeechRecognizer(TranscriptionConfig(  # loads on first use
            model=settings.transcription_model, device=settings.transcription_device))
        self.ready = False
        self.failure: str | None = None  # why warm-up or the engine failed, if one did
        self.on_engine_failure: Callable[[], None] | None = None  # the server's way to stop
        self.draining = False
        self.leases: set[Lease] = set()

    def refusal(self) -> str | None:
        """Why a new session or request is refused right now, or None to admit it."""
        if self.draining:
            return "the server is shutting down"
        if self.failure is not None:
            return self.failure
        if not self.ready:
            return "the model is still loading"
        return None

    def admit(self) -> Lease:
        """A lease on one engine slot for a new session or request; `Refused` when there is none
        or the server is not ready. The one admission path of both endpoints."""
        if (why := self.refusal()) is not None:
            raise Refused(ErrorCode.SHUTTING_DOWN if self.draining else ErrorCode.ENGINE_BUSY,
                          why)
        if not self.slots.try_acquire():
            raise Refused(ErrorCode.ENGINE_BUSY, "every engine slot is busy")
        return Lease(self.slots, self.leases)

    async def warmup(self) -> None:
        """Warm the runtime up (CUDA graphs etc.), then report ready."""
        log.info("warming up", extra={"slots": self.runtime.max_slots})
        try:
            await self.runtime.warmup()
        except Exception as exc:
            self.failure = f"the model failed to warm up: {type(exc).__name__}: {exc}"
            log.exception("warm-up failed; /readyz stays 503")
            return
        self.ready = True
        log.info("ready")

    async def watch_engine(self) -> None:
        """Wait for a failed engine step; then turn unready and ask the server to stop.

        A step that raised may have left the device in any state (CUDA errors are sticky), so
        the server does not carry on: the requests in that step already ended with
        `server_error`, /readyz turns 503, new sessions and requests are refused, and the server
        drains and exits with status 1 for its supervisor to restart it.
        """
        while self.runtime.failure is None:
            await asyncio.sleep(ENGINE_WATCH_S)
        error = self.runtime.failure
        self.failure = f"the engine failed: {type(error).__name__}: {error}"
        log.error("engine failed; stopping so that a supervisor restarts the server",
                  extra={"error": f"{type(error).__name__}: {error}"})
        if self.on_engine_failure is not None:
            self.on_engine_failure()

    def busy(self) -> bool:
        """Whether any response (realtime or REST) is still generating."""
        return any(lease.busy for lease in self.leases)

    async def drain(self, timeout_s: float) -> None:
        """Stop admitting, wait up to `timeout_s` for responses in flight, close sessions."""
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        log.info("draining", extra={"admitted": len(self.leases), "timeout_s": timeout_s})
        while self.busy() and loop.time() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)
        if self.busy():
            log.warning("drain timeout: cancelling responses still in flight")
        holders = [lease.holder for lease in list(self.leases) if lease.holder is not None]
        await asyncio.gather(*(holder.close(CLOSE_SERVICE_RESTART, "server restarting")
                               for holder in holders))
        log.info("drained")
