"""`icot bench engine` runs end to end on CPU with a small shape and prints its tables."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bench import cli as bench_cli
from bench.engine_profile import KernelTime, kernel_kind, kernel_table
from icot import command_module

DEMO_BUNDLE = Path(__file__).resolve().parents[2] / "checkpoints" / "demo"


def test_bench_engine_prints_every_figure(capsys, tmp_path):
    assert command_module("bench") is bench_cli
    parser = argparse.ArgumentParser()
    bench_cli.configure(parser)
    args = parser.parse_args(
        "engine --shape demo --batches 1,4 --repeats 2 --context 24 --max-seq-len 64 "
        "--prefill-chunk 16 --question-units 20 --template-tokens 4 --threads 1 --baselines "
        f"--bundle {DEMO_BUNDLE} --overhead-runs 1 --json {tmp_path / 'figures.json'}".split()
    )
    threads = torch.get_num_threads()
    try:
        assert bench_cli.run(args) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    for figure in ("copy bandwidth", "weights floor", "prefill, 24 tokens", "| 1 | ", "| 4 | ",
                   "transformers static cache", "| A-T-T-A | 36 |", "| A-T-A | 21 |",
                   "A-T-A / A-T-T-A first audio", "| engine alone (steps on one thread) |",
                   "× the engine's", "CPU time: the engine thread", "codec's streaming decode"):
        assert figure in out
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert set(figures["decode_ms"]) == {"1", "4"}
    overhead = figures["overhead"]
    assert overhead["conversation_ms"] > 0 and overhead["engine_ms"] > 0
    assert overhead["engine_thread_cpu_ms"] > 0 and overhead["codec_cpu_ms"] > 0


def test_kernel_table_groups_kernels_by_kind():
    kernels = [KernelTime("sm90_xmma_gemm_bf16bf16_bf16f32", 128, 4000.0),
               KernelTime("fmha_cutlassF_bf16_aligned_64x128_rf_sm80", 32, 300.0),
               KernelTime("void at::native::elementwise_kernel<128, 2>", 200, 400.0)]
    assert kernel_kind(kernels[0].name) == "matrix product"
    assert kernel_kind(kernels[1].name) == "attention"
    table = kernel_table(kernels, step_ms=5.5, floor_ms=4.6, top=2)
    assert "kernels busy 4.70 ms in 360 launches (idle between kernels 0.80 ms)" in table
    assert "| matrix product | 128 | 4.000 | 85.1 % |" in table
    assert "elementwise_kernel" not in table.split("| kernel |")[1]  # only the top 2 listed
