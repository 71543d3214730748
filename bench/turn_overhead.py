"""What serving a turn costs per token over the engine: a bundle's conversation against its engine.

`measure_overhead` loads a bundle as `icot serve` does (`Runtime`, its engine thread started),
speaks a question with espeak-ng and, alternating run by run, (a) answers it through a fresh
`Conversation` (engine thread, token hand-off to asyncio, chain parser, streaming codec decode)
and (b) drives a second engine over the same model synchronously on this thread with the same
prompt, sampling, speech segment and token count (the engine step alone). Per token = (end − first
token) / (tokens − 1), so encoding and prefill are left out of both; medians over the runs.
Knows nothing of the command line.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from model.audio import read_audio, resample
from model.engine import Engine, Request
from model.runtime import Runtime, RuntimeConfig
from model.sampling import SegmentRule

QUESTION = "what time does the pharmacy open on sunday"


@dataclass(frozen=True)
class Overhead:
    conversation_ms: float  # per token, median
    engine_ms: float  # per token, median
    tokens: int  # generated tokens per reply (the conversation's last run)
    runs: int


def speak(text: str, voice: str = "en-us") -> tuple:
    """espeak-ng speech of `text`: (float32 samples (T,), rate)."""
    with tempfile.TemporaryDirectory(prefix="icot-overhead-") as scratch:
        path = Path(scratch) / "question.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "-w", str(path), text],
                       check=True, capture_output=True)
        return read_audio(path)


def measure_overhead(bundle: str, runs: int) -> Overhead:
    """Conversation and engine-alone ms per token on `bundle` (CPU), `runs` of each, alternated."""
    return asyncio.run(_measure(bundle, runs))


async def _measure(bundle: str, runs: int) -> Overhead:
    samples, rate = speak(QUESTION)
    runtime = Runtime.load(bundle, RuntimeConfig(max_slots=1))
    await runtime.warmup()
    alone = Engine(runtime.bundle.model, runtime.engine.config)
    try:
        conversation_ms, engine_ms = [], []
        tokens = 0
        for _ in range(runs + 1):  # the first pair warms up
            ms, tokens = await _conversation_turn(runtime, samples, rate)
            conversation_ms.append(ms)
            engine_ms.append(_engine_alone(alone, runtime, samples, rate, tokens))
    finally:
        await runtime.close()
    return Overhead(statistics.median(conversation_ms[1:]), statistics.median(engine_ms[1:]),
                    tokens, runs)


async def _conversation_turn(runtime: Runtime, samples, rate: int) -> tuple[float, int]:
    """One reply through a fresh conversation: (ms per token after the first, tokens)."""
    done = None
    async for event in runtime.new_conversation().respond(samples, rate):
        done = event
    timings = done.timings
    per_token = (timings.total_ms - timings.prefill_ms) / max(1, done.output_tokens - 1)
    return per_token, done.output_tokens


def _engine_alone(engine: Engine, runtime: Runtime, samples, rate: int, tokens: int) -> float:
    """The same turn's prompt through `engine`, stepped on this thread: ms per token after the
    first, for `tokens` tokens under the bundle's text sampling and speech segment."""
    bundle = runtime.bundle
    codec, generation, markers = bundle.codec, bundle.config.generation, bundle.vocab.markers
    units = codec.encode(resample(samples, rate, codec.sample_rate)).tolist()
    prompt = bundle.template.prompt(runtime.chain, units, [], runtime.prompt_budget)
    speech = SegmentRule(start_id=markers.speech_start, end_id=markers.speech_end,
                         allowed_ids=frozenset(bundle.vocab.unit_ids),
                         sampling=generation.speech)
    handle = engine.submit(Request(tuple(prompt.ids), max(2, tokens), generation.text,
                                   segments=(speech,), seed=generation.seed))
    first = None
    with torch.inference_mode():
        while not handle.done:
            engine.step()
            if first is None and handle.tokens:
                first = time.perf_counter()
    return 1000 * (time.perf_counter() - first) / max(1, len(handle.tokens) - 1)
