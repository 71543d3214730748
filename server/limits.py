"""Engine slot counting and per-session audio budgets, plus the WebSocket close codes we use.

`SlotPool` counts the sessions and REST requests admitted against the engine's slots (leases in
admission.py take and give back slots; beyond capacity the caller answers HTTP 503 or closes the
WebSocket with 1013). `AudioBudget` counts a session's input audio against its limit. Nothing
here touches the network or the model.
"""

from __future__ import annotations

from server.errors import ErrorCode, ProtocolError

CLOSE_NORMAL = 1000
CLOSE_POLICY_VIOLATION = 1008
CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013


class SlotPool:
    """A counter of admitted sessions; `try_acquire` never waits (callers refuse instead)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be ≥ 1, got {capacity}")
        self.capacity = capacity
        self._in_use = 0

    @property
    def in_use(self) -> int:
        return self._in_use

    def try_acquire(self) -> bool:
        if self._in_use >= self.capacity:
            return False
        self._in_use += 1
        return True

    def release(self) -> None:
        if self._in_use == 0:
            raise RuntimeError("release without acquire")
        self._in_use -= 1


class AudioBudget:
    """Seconds of input audio a session may still send."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.used_s = 0.0

    def spend(self, seconds: float) -> None:
        """Count `seconds` more; raise (spending nothing) when that would pass the limit."""
        if self.used_s + seconds > self.limit_s:
            raise ProtocolError(
                ErrorCode.SESSION_AUDIO_LIMIT,
                f"this session has sent {self.used_s:.1f} s of audio; the limit is "
                f"{self.limit_s:g} s per session. Open a new session to go on.")
        self.used_s += seconds
