"""bench/latency.py end to end on tiny random bundles: servers start, questions are spoken over
the WebSocket API, and the table reports TTFA for both chains."""

from __future__ import annotations

import argparse

from bench import latency


def test_latency_bench_measures_both_chains_over_the_wire(capsys):
    parser = argparse.ArgumentParser()
    latency.configure(parser)
    assert latency.run(parser.parse_args(["--tiny", "-n", "3", "--warmup", "0"])) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("| tiny random")]
    assert [row.split("|")[2].strip() for row in rows] == ["A-T-A", "A-T-T-A"]
    for row in rows:
        p50 = row.split("|")[3].strip()
        assert p50 != "–" and 0 < float(p50) < 5000
    assert "A-T-A p50 TTFA against A-T-T-A" in table


def test_percentiles_and_the_reduction_lines():
    results = [latency.BundleResult("a", "A-T-A", [80.0, 100.0, 120.0, 90.0]),
               latency.BundleResult("b", "A-T-T-A", [100.0, 125.0, 200.0, None])]
    table = latency._table(results)
    assert "| a | A-T-A | 95 | 117 | 98 | 4/4 |" in table
    assert "| b | A-T-T-A | 125 | 192 | 142 | 3/4 |" in table
    assert "A-T-A p50 TTFA against A-T-T-A: -24.0 %" in table
    # per question 0.8, 0.8, 0.6 (the fourth had no A-T-T-A audio): median 0.8
    assert "median over the 3 questions both answered with audio: -20.0 %" in table
