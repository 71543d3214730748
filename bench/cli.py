"""`icot bench <name>`: the benchmarks, each a module in bench/ with `configure` and `run`.

Add a benchmark by importing its module and adding a line to BENCHMARKS. This module is imported
only when `icot bench` runs; each benchmark keeps its heavy work inside its own `run`.
"""

from __future__ import annotations

import argparse
from types import ModuleType

from bench import codec, engine, latency, load, unit_context, unit_stress

BENCHMARKS: dict[str, tuple[ModuleType, str]] = {
    "engine": (engine, "engine prefill, decode ms/step by batch, weights floor, TTFA"),
    "latency": (latency, "TTFA over the WebSocket API, A-T-A vs A-T-T-A bundles"),
    "codec": (codec, "unit codec round-trip WER (Whisper tiny.en), speed, streaming"),
    "unit-context": (unit_context,
                     "unit codec encoder context: cross-voice identification, decoded WER"),
    "unit-stress": (unit_stress,
                    "unit candidates (cepstral, Whisper encoder) identified on the stress set"),
    "load": (load, "concurrent realtime sessions: TTFA, audio RTF, errors, server RSS"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    subparsers = parser.add_subparsers(dest="benchmark", required=True)
    for name, (module, help_text) in BENCHMARKS.items():
        sub = subparsers.add_parser(name, help=help_text, description=module.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        module.configure(sub)
        sub.set_defaults(_benchmark=module.run)


def run(args: argparse.Namespace) -> int:
    return int(args._benchmark(args) or 0)
