"""`icot talk`: talk to a Realtime server from the microphone, from audio files or typed text.

    icot talk                                   microphone → server → speaker (the `mic` extra)
    icot talk --wav q1.wav q2.wav --out replies one turn per file, replies saved as WAV
    icot talk --text "what is two plus three"   a typed turn (--wav and --text mix, in order)

Speaks only the public protocol (docs/protocol.md), so any OpenAI-Realtime-compatible server
works. Exposes `configure(parser)` and `run(args)` for the `icot` entry point; sockets, audio
files and devices are imported inside `run`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_URL = "ws://127.0.0.1:8000/v1/realtime"


class _AddTurns(argparse.Action):
    """--wav FILE… and --text TEXT append to one ordered list of (kind, value) turns."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        turns = list(getattr(namespace, self.dest) or [])
        turns += [(self.const, value) for value in (values if isinstance(values, list)
                                                    else [values])]
        setattr(namespace, self.dest, turns)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("ICOT_URL", DEFAULT_URL),
                        help=f"the server's Realtime WebSocket (env ICOT_URL; default "
                             f"{DEFAULT_URL})")
    parser.add_argument("--api-key", default=os.environ.get("ICOT_API_KEY"),
                        help="API key or ek_ client secret, sent as a bearer header "
                             "(env ICOT_API_KEY)")
    parser.add_argument("--wav", nargs="+", metavar="FILE", action=_AddTurns, const="audio",
                        dest="turns", help="audio files, one user turn each, streamed at "
                                           "real-time pace (any format soundfile reads)")
    parser.add_argument("--text", metavar="TEXT", action=_AddTurns, const="text", dest="turns",
                        help="a typed user turn (repeatable; mixes with --wav in order)")
    parser.add_argument("--fast", action="store_true",
                        help="stream files as fast as possible instead of in real time")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="save each reply as DIR/reply-NN.wav (24 kHz)")
    parser.set_defaults(turns=[])


def run(args: argparse.Namespace) -> int:
    import asyncio

    try:
        return asyncio.run(_talk(args))
    except KeyboardInterrupt:
        return 0


async def _talk(args: argparse.Namespace) -> int:
    from clients.connection import Connection, TalkError
    from clients.replies import Printer

    printer = Printer()
    try:
        turns = _load_turns(args.turns)
        devices = None
        if not turns:
            from clients.microphone import open_devices

            devices = open_devices()  # before connecting: no device, no session taken
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
        conn = await Connection.open(args.url, args.api_key)
        printer.say(f"connected to {args.url}")
        try:
            if devices is not None:
                from clients.microphone import talk_live

                await talk_live(conn, devices, printer)
                return 0
            from clients.turns import run_turns

            replies = await run_turns(conn, turns, printer, fast=args.fast, out_dir=args.out)
        finally:
            await conn.close()
    except TalkError as problem:
        printer.problem(str(problem))
        return 1
    failed = sum(reply.failed for reply in replies)
    if failed:
        printer.problem(f"{failed} of {len(replies)} turns got no complete reply")
    return 1 if failed else 0


def _load_turns(given: list[tuple[str, str]]) -> list:
    """Read every file before connecting, so a bad path fails before a session is taken."""
    import soundfile

    from clients.audio_files import read_pcm16
    from clients.connection import TalkError
    from clients.turns import Turn

    turns = []
    for kind, value in given:
        if kind == "text":
            if not value.strip():
                raise TalkError("--text needs some words")
            turns.append(Turn("text", value, text=value))
            continue
        try:
            pcm = read_pcm16(Path(value))
        except (OSError, soundfile.LibsndfileError) as exc:
            raise TalkError(f"cannot read {value}: {exc}") from None
        if not pcm:
            raise TalkError(f"{value} holds no audio")
        turns.append(Turn("audio", Path(value).name, pcm=pcm))
    return turns
