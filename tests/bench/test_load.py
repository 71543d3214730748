"""bench/load.py: the response arithmetic on made-up arrivals, and a real run: `icot serve` on the
demo bundle in its own process, two users speaking at real-time pace at once."""

from __future__ import annotations

import argparse

import pytest

from bench import load


def test_ttfa_rtf_and_running_dry_from_chunk_arrivals():
    # 0.2 s chunks arriving 0.1 s apart after a 0.3 s TTFA: twice as fast as playback.
    fast = load.ResponseTiming([(0.3, 0.2), (0.4, 0.2), (0.5, 0.2), (0.6, 0.2)])
    assert fast.ttfa_s == 0.3
    assert fast.audio_s == pytest.approx(0.8)
    assert fast.rtf == pytest.approx(0.3 / 0.6)
    assert fast.dry_s == 0.0
    # The third chunk comes 0.5 s after the first, when only 0.4 s had been playing: dry 0.1 s.
    late = load.ResponseTiming([(0.3, 0.2), (0.4, 0.2), (0.8, 0.2)])
    assert late.dry_s == pytest.approx(0.1)
    assert late.rtf == pytest.approx(0.5 / 0.4)
    assert load.ResponseTiming([(0.3, 0.2)]).rtf is None  # nothing after the first chunk


def test_the_table_counts_responses_errors_and_dry_players():
    result = load.LevelResult(2, responses=[
        load.ResponseTiming([(0.1, 0.2), (0.2, 0.2)]),
        load.ResponseTiming([(0.3, 0.2), (0.9, 0.2)])], errors=["connection closed (1013)"],
        rss_idle_mib=500.0, rss_peak_mib=620.4, wall_s=4.0, cpu_s=3.0)
    table = load.table([result], turns=2)
    assert "| 2 | 2/4 | 200 | 290 | 1.75 | 2.88 | 1 | 1 | 0.75 | 500 → 620 |" in table
    assert "Errors: connection closed (1013)" in table


def test_two_sessions_against_a_served_demo_bundle(capsys):
    parser = argparse.ArgumentParser()
    load.configure(parser)
    args = parser.parse_args(["--sessions", "2", "--turns", "2", "--threads", "1"])
    assert load.run(args) == 0
    table = capsys.readouterr().out
    (row,) = [line for line in table.splitlines() if line.startswith("| 2 |")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    sessions, responses, ttfa50, ttfa95, rtf50, rtf95, dry, errors, cores, rss = cells
    assert responses == "4/4" and errors == "0"
    assert 0 < float(cores) < 2.5  # the server worked, on at most this machine's cores
    assert 0 < float(ttfa50) <= float(ttfa95) < 5000
    assert 0 < float(rtf50) <= float(rtf95)
    idle, peak = (float(x) for x in rss.split(" → "))
    assert 100 < idle <= peak < 8000  # MiB: torch and the demo model, not a stub
