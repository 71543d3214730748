"""Admission leases: one slot per lease, given back exactly once, handed off to a streamed answer,
and what a drain waits for (a request until released, a session while it responds)."""

from __future__ import annotations

from server.admission import Lease
from server.limits import SlotPool


class Session:
    """A minimal Closable: responds while told to, records how it was closed."""

    def __init__(self, responding: bool) -> None:
        self.responding = responding
        self.closed: tuple[int, str] | None = None

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def test_a_lease_holds_one_slot_and_gives_it_back_exactly_once():
    slots, leases = SlotPool(1), set()
    assert slots.try_acquire()
    with Lease(slots, leases) as lease:
        assert leases == {lease} and slots.in_use == 1
    assert not leases and slots.in_use == 0
    lease.release()  # a second release does nothing (a double release would raise)
    assert slots.in_use == 0


def test_a_handed_off_lease_outlives_its_block_until_released():
    slots, leases = SlotPool(1), set()
    assert slots.try_acquire()
    with Lease(slots, leases) as lease:
        release = lease.hand_off()
    assert slots.in_use == 1 and leases == {lease}
    release()
    assert slots.in_use == 0 and not leases


def test_a_request_is_busy_until_released_and_a_session_while_it_responds():
    slots, leases = SlotPool(2), set()
    assert slots.try_acquire() and slots.try_acquire()
    request, session_lease = Lease(slots, leases), Lease(slots, leases)
    assert request.busy and session_lease.busy
    session = Session(responding=False)
    session_lease.hold(session)
    assert not session_lease.busy and session_lease.holder is session
    session.responding = True
    assert session_lease.busy
