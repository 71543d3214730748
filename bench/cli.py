"""`icot bench <name>`: the benchmarks, each a module in bench/ with `configure` and `run`.

Add a benchmark by adding a line to BENCHMARKS; heavy imports stay inside each module's `run`.
"""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS: dict[str, tuple[str, str]] = {
    "engine": ("bench.engine", "engine prefill, decode ms/step by batch, weights floor, TTFA"),
    "latency": ("bench.latency", "TTFA over the WebSocket API, A-T-A vs A-T-T-A bundles"),
    "codec": ("bench.codec", "unit codec round-trip WER (Whisper tiny.en), speed, streaming"),
    "unit-context": ("bench.unit_context",
                     "unit codec encoder context: cross-voice identification, decoded WER"),
    "load": ("bench.load", "concurrent realtime sessions: TTFA, audio RTF, errors, server RSS"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    subparsers = parser.add_subparsers(dest="benchmark", required=True)
    for name, (module_name, help_text) in BENCHMARKS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=help_text, description=module.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        module.configure(sub)
        sub.set_defaults(_benchmark=module.run)


def run(args: argparse.Namespace) -> int:
    return int(args._benchmark(args) or 0)
