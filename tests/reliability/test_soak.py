"""Soak: `icot bench load --duration` against `icot serve` of the demo bundle (its own process,
`--threads 1`): users keep talking at real-time pace and the served process must hold its
resident memory (≤ 5 % growth after a warm-up round), file descriptors, sessions and engine
slots, with zero errors. 60 s at 4 users in the default run; 30 minutes behind the `slow`
marker: `pytest -m slow tests/reliability/test_soak.py` (docs/reliability.md).
"""

from __future__ import annotations

import argparse

import pytest

from bench import load
from bench.soak import Snapshot, SoakReport


def _soak(capsys: pytest.CaptureFixture[str], sessions: int, duration_s: int) -> str:
    parser = argparse.ArgumentParser()
    load.configure(parser)
    args = parser.parse_args(["--sessions", str(sessions), "--turns", "3", "--threads", "1",
                              "--duration", str(duration_s)])
    status = load.run(args)
    summary = capsys.readouterr().out.strip()
    with capsys.disabled():
        print(f"\n{summary}")
    assert status == 0, summary
    return summary


def test_the_soak_verdict_counts_every_bound():
    idle = Snapshot(rss_mib=1000.0, fds=40, sessions=0, slots_in_use=0)
    held = SoakReport(before=idle, after=Snapshot(1049.0, 40, 0, 0), duration_s=60,
                      responses=10, errors=[])
    assert held.held and "+4.9 %" in held.summary() and held.summary().endswith("held")
    for after, errors in [(Snapshot(1051.0, 40, 0, 0), []), (Snapshot(1000.0, 41, 0, 0), []),
                          (Snapshot(1000.0, 40, 1, 0), []), (Snapshot(1000.0, 40, 0, 1), []),
                          (idle, ["connection closed by the server (1011)"])]:
        report = SoakReport(before=idle, after=after, duration_s=60, responses=10,
                            errors=errors)
        assert not report.held and report.summary().endswith("FAILED")


def test_four_users_for_a_minute_leak_nothing(capsys):
    summary = _soak(capsys, sessions=4, duration_s=60)
    assert "0 errors" in summary and summary.endswith("held")


@pytest.mark.slow
def test_four_users_for_thirty_minutes_leak_nothing(capsys):
    summary = _soak(capsys, sessions=4, duration_s=1800)
    assert "0 errors" in summary and summary.endswith("held")
