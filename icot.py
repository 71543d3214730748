"""The `icot` command line: one entry point whose only job is to parse the command and hand it on.

    icot serve | talk | train | eval | codec | bench  [options]   (icot COMMAND --help)

This module sits above every package it dispatches to (server/, clients/, training/, model/,
bench/), so none of them imports another's command line. Each command is a `cli.py` beside the
code it drives, with `configure(parser)` and `run(args) -> int`. Only the chosen command's module
is imported, and its heavy imports (torch, numpy, the model) wait for `run`: `icot --help` stays
light. Knows nothing of what any command does.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

COMMANDS: dict[str, str] = {
    "serve": "serve a bundle: /v1/realtime, /v1/speech-to-speech, /metrics",
    "talk": "talk to a Realtime server from the microphone, audio files or typed text",
    "codec": "fit a unit codec, round-trip audio through a codec",
    "bench": "benchmarks (engine, …); each prints a markdown table",
    "train": "run a training recipe end to end: corpus, stages, bundles, eval",
    "eval": "evaluate bundles on a split; print the results table",
}


def command_module(name: str) -> ModuleType:
    """The `cli` module of command `name`, imported only now (the command was chosen)."""
    if name == "serve":
        from server import cli
    elif name == "talk":
        from clients import cli
    elif name == "codec":
        from model.codecs import cli
    elif name == "bench":
        from bench import cli
    elif name == "train":
        from training import cli
    elif name == "eval":
        from training.evaluation import cli
    else:
        raise KeyError(f"no icot command {name!r}")
    return cli


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; only `command`'s own options are configured."""
    parser = argparse.ArgumentParser(
        prog="icot", description="ICoT Voice: speech-to-speech LLM server"
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == command:
            command_module(name).configure(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(chosen).parse_args(argv)
    return int(command_module(args.command).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
