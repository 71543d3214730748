"""`icot bench engine` runs end to end on CPU with a small shape and prints its tables."""

from __future__ import annotations

import argparse

import torch

from bench import cli as bench_cli
from icot import command_module


def test_bench_engine_prints_every_figure(capsys):
    assert command_module("bench") is bench_cli
    parser = argparse.ArgumentParser()
    bench_cli.configure(parser)
    args = parser.parse_args(
        "engine --shape demo --batches 1,4 --repeats 2 --context 24 --max-seq-len 64 "
        "--prefill-chunk 16 --question-units 20 --template-tokens 4 --threads 1".split()
    )
    threads = torch.get_num_threads()
    try:
        assert bench_cli.run(args) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    for figure in ("copy bandwidth", "weights floor", "prefill, 24 tokens", "| 1 |", "| 4 |",
                   "| A-T-T-A | 36 |", "| A-T-A | 21 |", "A-T-A / A-T-T-A time to first audio"):
        assert figure in out
