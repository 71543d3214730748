"""The `icot` command: one entry point whose subcommands live beside the code they drive.

Each subcommand is a module exposing `configure(parser)` and `run(args) -> int`; modules keep
heavy imports (torch, the model) inside `run`, so `icot --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("server.serve", "serve a bundle: /v1/realtime, /v1/speech-to-speech, /metrics"),
    "codec": ("model.codecs.cli", "fit a unit codec, round-trip audio through a codec"),
    "bench": ("bench.cli", "benchmarks (engine, …); each prints a markdown table"),
    "train": ("training.cli", "run a training recipe end to end: corpus, stages, bundles, eval"),
    "eval": ("training.evaluation.cli", "evaluate bundles on a split; print the results table"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="icot", description="ICoT Voice: speech-to-speech LLM server"
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.configure(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
