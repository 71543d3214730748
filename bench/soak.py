"""What the load bench reads back from the served process: its resident memory and open file
descriptors (Linux /proc) and its session and engine-slot gauges (/metrics); for a soak
(`icot bench load --duration S`), before and after, and whether they stayed within bounds.

Reaches the server only through /proc and HTTP; imports nothing of server/.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

RSS_GROWTH_LIMIT = 0.05  # the soak promise: resident memory grows by at most 5 %


@dataclass(frozen=True)
class Snapshot:
    """The served process at one moment."""

    rss_mib: float
    fds: int
    sessions: float
    slots_in_use: float


def rss_mib(pid: int | None) -> float | None:
    """Resident memory of process `pid` in MiB (Linux), None without a pid or /proc."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def idle_snapshot(pid: int, http_url: str, timeout_s: float = 10.0) -> Snapshot:
    """The served process once its last session has closed (or after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        shot = snapshot(pid, http_url)
        if (shot.sessions, shot.slots_in_use) == (0, 0) or time.monotonic() > deadline:
            return shot
        time.sleep(0.1)


def snapshot(pid: int, http_url: str) -> Snapshot:
    import httpx

    gauges = {}
    for line in httpx.get(f"{http_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(("icot_active_sessions ", "icot_engine_slots_in_use ")):
            name, value = line.split()
            gauges[name] = float(value)
    rss = rss_mib(pid)
    if rss is None:
        raise RuntimeError(f"no /proc/{pid}: the soak needs the served process on this machine")
    return Snapshot(rss_mib=rss, fds=len(list(Path(f"/proc/{pid}/fd").iterdir())),
                    sessions=gauges["icot_active_sessions"],
                    slots_in_use=gauges["icot_engine_slots_in_use"])


@dataclass(frozen=True)
class SoakReport:
    """Before (after a warm-up round) and after the soak, with the server idle both times."""

    before: Snapshot
    after: Snapshot
    duration_s: float
    responses: int
    errors: list[str]

    @property
    def rss_growth(self) -> float:
        return self.after.rss_mib / self.before.rss_mib - 1

    @property
    def held(self) -> bool:
        """RSS growth ≤ 5 %, no more fds, no session or slot left, zero errors."""
        return (self.rss_growth <= RSS_GROWTH_LIMIT and self.after.fds <= self.before.fds
                and self.after.sessions == 0 and self.after.slots_in_use == 0
                and not self.errors)

    def summary(self) -> str:
        verdict = "held" if self.held else "FAILED"
        return (f"Soak {self.duration_s:.0f} s, {self.responses} responses, "
                f"{len(self.errors)} errors: RSS {self.before.rss_mib:.0f} → "
                f"{self.after.rss_mib:.0f} MiB ({100 * self.rss_growth:+.1f} %), fds "
                f"{self.before.fds} → {self.after.fds}, sessions/slots left "
                f"{self.after.sessions:.0f}/{self.after.slots_in_use:.0f}: {verdict}")
