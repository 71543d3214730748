"""Admission leases: the one way a WebSocket session or a REST request holds an engine slot.

`ServerState.admit()` hands out a `Lease` or raises `Refused`; the lease gives its slot back
exactly once, when its `with` block ends or, once handed off, when its new owner releases it
(a streamed REST answer). A lease may hold a `Closable` (a realtime session), which the drain
waits for and then closes. Knows no HTTP, WebSocket or model: callers turn `Refused` into an
answer.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from server.errors import ErrorCode
from server.limits import SlotPool


class Closable(Protocol):
    """What a drain needs of an admitted session: is it generating, and how to close it."""

    @property
    def responding(self) -> bool: ...

    async def close(self, code: int, reason: str) -> None: ...


class Refused(Exception):
    """No admission now: `code` is `engine_busy` or `server_shutting_down`, `reason` says why."""

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Lease:
    """One admitted session or request holding one engine slot until `release`."""

    def __init__(self, slots: SlotPool, leases: set[Lease]) -> None:
        self._slots = slots
        self._leases = leases
        self.holder: Closable | None = None
        self._handed_off = False
        self._released = False
        leases.add(self)

    @property
    def busy(self) -> bool:
        """Whether a drain should wait: a session while it responds, a request until released."""
        return self.holder.responding if self.holder is not None else True

    def hold(self, holder: Closable) -> None:
        """Attach the admitted session, so a drain can see it respond and close it."""
        self.holder = holder

    def hand_off(self) -> Callable[[], None]:
        """Keep the slot past the `with` block; the returned callable releases it later."""
        self._handed_off = True
        return self.release

    def release(self) -> None:
        """Give the slot back; further calls do nothing."""
        if not self._released:
            self._released = True
            self._leases.discard(self)
            self._slots.release()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if not self._handed_off:
            self.release()
