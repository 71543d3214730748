"""Time to first audio over the wire: A-T-A against A-T-T-A bundles, same spoken questions.

    icot bench latency                                  # checkpoints/demo vs checkpoints/demo-cot
    icot bench latency --bundle A --bundle B -n 40      # any bundles, 40 questions
    icot bench latency --tiny                           # tiny random bundles (serving overhead)
    icot bench latency --threads 1                      # one torch thread, as on a 2-core box

Each bundle is served exactly as `icot serve` serves it (server/serve.py, uvicorn on loopback in
a background thread) and driven by a raw WebSocket client: for every question a fresh session
appends espeak-ng speech (24 kHz PCM16, the wire default) with manual turn detection, then sends
`input_audio_buffer.commit` + `response.create`; TTFA is the time from sending the commit to
receiving the first `response.output_audio.delta`. The same questions (distinct demo-domain
utterances, seeded; the warm-up turns use others) go to every bundle: a question asked twice
would arrive as bit-identical audio and find its whole prompt in the engine's prefix cache, which
no real caller's audio does (each fresh session still reuses the shared instruction header).
All bundles are served side by side and asked in turn, question by question (every bundle answers
question i before any hears question i + 1), so a shared machine's changing speed falls on all
of them alike: asked one bundle after the other, three runs of 40 questions on the dev CPU put
A-T-A at −40 %, −3 % and −12 % against A-T-T-A. Prints a markdown table: p50, p95 and mean TTFA
per bundle, then, when both chains were measured, the A-T-A reduction against A-T-T-A: of the
p50s, and the median of the per-question ratios (each question heard by both, moments apart).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEMO_BUNDLES = ("checkpoints/demo", "checkpoints/demo-cot")
TINY_SEED = 21  # a tiny random bundle that speaks for most questions (see tests/server)
WIRE_RATE_HZ = 24_000
APPEND_MS = 100
RESPONSE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class BundleResult:
    label: str
    chain: str
    per_question: list[float | None]  # TTFA of each question in order; None: no audio

    @property
    def ttfa_ms(self) -> list[float]:
        """The TTFA of every question that produced audio."""
        return [t for t in self.per_question if t is not None]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", action="append", dest="bundles",
                        help="bundle directory (repeat; default: the two demo bundles)")
    parser.add_argument("--tiny", action="store_true",
                        help="build tiny random A-T-A and A-T-T-A bundles instead")
    parser.add_argument("-n", "--questions", type=int, default=20, help="spoken questions")
    parser.add_argument("--seed", type=int, default=0, help="seed of the question draw")
    parser.add_argument("--voice", default="en-us", help="espeak-ng voice of the questions")
    parser.add_argument("--warmup", type=int, default=2, help="untimed turns per bundle")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (as `icot serve --threads`)")


def run(args: argparse.Namespace) -> int:
    from training.data.domain import sample_turns

    drawn = sample_turns(args.seed, 4 * (args.questions + args.warmup))
    distinct = list(dict.fromkeys(turn.user for turn in drawn))
    warmup, questions = distinct[:args.warmup], distinct[args.warmup:][:args.questions]
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="icot-latency-") as scratch:
        bundles = (_tiny_bundles(Path(scratch)) if args.tiny
                   else [(b, b) for b in args.bundles or DEMO_BUNDLES])
        warmup_speech, speech = ([_speak(text, args.voice, Path(scratch) / f"{kind}{i}.wav")
                                  for i, text in enumerate(texts)]
                                 for kind, texts in (("w", warmup), ("q", questions)))
        with contextlib.ExitStack() as servers:
            served = [_serve(label, bundle, args, servers) for label, bundle in bundles]
            results = _measure(served, warmup_speech, speech)
    print(_table(results))
    return 0


def _tiny_bundles(directory: Path) -> list[tuple[str, str]]:
    """(label, directory) of tiny random bundles: their TTFA is the serving overhead (encode,
    prefill, decoding to the first audio chunk); their chains answer alike, being untrained."""
    from tests.tiny_bundle import build_tiny_bundle

    return [(f"tiny random {chain} (seed {TINY_SEED})",
             str(build_tiny_bundle(directory / chain, chain, seed=TINY_SEED)))
            for chain in ("A-T-A", "A-T-T-A")]


def _speak(text: str, voice: str, out: Path) -> np.ndarray:
    from model.audio import read_audio

    subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "-w", str(out), text], check=True,
                   capture_output=True)
    return read_audio(out, target_rate=WIRE_RATE_HZ)[0]


@dataclass(frozen=True)
class _Served:
    """A bundle being served: its row label, chain and WebSocket URL."""

    label: str
    chain: str
    ws_url: str


def _serve(label: str, bundle: str, args: argparse.Namespace,
           servers: contextlib.ExitStack) -> _Served:
    """Serve `bundle` as `icot serve` would (one slot) until `servers` closes."""
    from model.runtime import Runtime, RuntimeConfig
    from server.app import create_app
    from server.serve import ThreadedServer
    from server.settings import ServerSettings

    runtime = Runtime.load(bundle, RuntimeConfig(device=args.device, max_slots=1))
    settings = ServerSettings(bundle=Path(bundle), port=0, slots=1, log_level="warning")
    server = ThreadedServer(create_app(settings, runtime), settings).start()
    servers.callback(server.stop)
    return _Served(label, str(runtime.chain), server.ws_url)


def _measure(served: list[_Served], warmup: list[np.ndarray],
             speech: list[np.ndarray]) -> list[BundleResult]:
    """Warm every bundle up, then ask each question of every bundle in turn."""
    for target in served:
        for samples in warmup:
            asyncio.run(_one_turn(target.ws_url, samples))
    timings: list[list[float | None]] = [[] for _ in served]
    for samples in speech:
        for target, times in zip(served, timings, strict=True):
            times.append(asyncio.run(_one_turn(target.ws_url, samples)))
    return [BundleResult(target.label, target.chain, times)
            for target, times in zip(served, timings, strict=True)]


async def _one_turn(url: str, samples: np.ndarray) -> float | None:
    """TTFA of one question in a fresh session, in ms; None when the reply had no audio."""
    from websockets.asyncio.client import connect

    from model.audio import float_to_pcm16

    pcm = float_to_pcm16(samples)
    step = 2 * WIRE_RATE_HZ * APPEND_MS // 1000
    async with connect(url, max_size=None) as ws:
        await ws.recv()  # session.created
        await ws.send(json.dumps({"type": "session.update", "session": {"turn_detection": None}}))
        await ws.recv()  # session.updated
        for start in range(0, len(pcm), step):
            chunk = base64.b64encode(pcm[start:start + step]).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        committed_at = time.perf_counter()
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        await ws.send(json.dumps({"type": "response.create"}))
        first_audio: float | None = None
        while True:
            event = json.loads(await asyncio.wait_for(ws.recv(), RESPONSE_TIMEOUT_S))
            if event["type"] == "error":
                raise RuntimeError(f"server error: {event['error']}")
            if event["type"] == "response.output_audio.delta" and first_audio is None:
                first_audio = time.perf_counter()
            if event["type"] == "response.done":
                break
    return None if first_audio is None else 1000.0 * (first_audio - committed_at)


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _table(results: list[BundleResult]) -> str:
    questions = len(results[0].per_question)  # every bundle heard the same questions
    lines = [f"TTFA, commit → first audio delta over loopback WebSocket, {questions} questions "
             "per bundle (ms)", "",
             "| bundle | chain | p50 | p95 | mean | answered with audio |",
             "|---|---|---|---|---|---|"]
    for r in results:
        if r.ttfa_ms:
            stats = (f"{_percentile(r.ttfa_ms, 50):.0f} | {_percentile(r.ttfa_ms, 95):.0f} | "
                     f"{statistics.fmean(r.ttfa_ms):.0f}")
        else:
            stats = "– | – | –"
        lines.append(f"| {r.label} | {r.chain} | {stats} | {len(r.ttfa_ms)}/{questions} |")
    by_chain = {r.chain: r for r in results if r.ttfa_ms}
    if "A-T-A" in by_chain and "A-T-T-A" in by_chain:
        ata = _percentile(by_chain["A-T-A"].ttfa_ms, 50)
        atta = _percentile(by_chain["A-T-T-A"].ttfa_ms, 50)
        lines += ["", f"A-T-A p50 TTFA against A-T-T-A: {100 * (ata / atta - 1):+.1f} %"]
        ratios = [a / b for a, b in zip(by_chain["A-T-A"].per_question,
                                        by_chain["A-T-T-A"].per_question, strict=True)
                  if a is not None and b is not None]
        if ratios:  # the same question, asked of both one after the other: less noisy
            lines.append(f"A-T-A against A-T-T-A, median over the {len(ratios)} questions both "
                         f"answered with audio: {100 * (statistics.median(ratios) - 1):+.1f} %")
    return "\n".join(lines)
