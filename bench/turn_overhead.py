"""What serving a turn costs per token over the engine: a bundle's conversation against its engine.

`measure_overhead` loads a bundle as `icot serve` does (`Runtime`, its engine thread started),
speaks a question with espeak-ng and, alternating run by run, (a) answers it through a fresh
`Conversation` (engine thread, token hand-off to asyncio, chain parser, streaming codec decode)
and (b) drives a second engine over the same model synchronously on this thread with the same
prompt, sampling, speech segment and token count (the engine step alone). Per token = (end − first
token) / (tokens − 1), so encoding and prefill are left out of both; medians over the runs, and
the median of each pair's ratio (a pair runs back to back, so load from other processes on a
shared machine hits both alike). During the conversation it also splits the process's CPU time
per token between the engine thread and everything else (the event loop, the parser, the
hand-offs, the codec's decode), which load from other processes does not inflate, and measures
the codec's streaming decode of a reply's worth of units alone (its CPU time per token).
Knows nothing of the command line.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.audio import read_audio, resample
from model.codecs import StreamingDecoder
from model.engine import Engine, Request
from model.runtime import Runtime, RuntimeConfig
from model.sampling import SegmentRule

QUESTION = "what time does the pharmacy open on sunday"
ENGINE_THREAD = "icot-engine"  # the name model/engine.py gives its thread


@dataclass(frozen=True)
class Overhead:
    conversation_ms: float  # wall per token, median
    engine_ms: float  # wall per token of the engine alone, median
    ratio: float  # median over the pairs of conversation ms / engine ms
    engine_thread_cpu_ms: float  # during the conversation: the engine thread's CPU per token
    other_cpu_ms: float  # the rest of the process (loop, parser, hand-off, codec decode)
    codec_cpu_ms: float  # of the rest, the codec's streaming decode of a reply, per token
    tokens: int  # generated tokens per reply (the conversation's last run)
    runs: int


@dataclass(frozen=True)
class _Turn:
    wall_ms: float  # per token after the first event
    engine_cpu_ms: float
    other_cpu_ms: float
    tokens: int


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
    (engine_thread,) = [t for t in threading.enumerate() if t.name == ENGINE_THREAD]
    engine_clock = time.pthread_getcpuclockid(engine_thread.ident)
    alone = Engine(runtime.bundle.model, runtime.engine.config)
    try:
        turns, engine_ms = [], []
        for _ in range(runs + 1):  # the first pair warms up
            turns.append(await _conversation_turn(runtime, samples, rate, engine_clock))
            engine_ms.append(_engine_alone(alone, runtime, samples, rate, turns[-1].tokens))
    finally:
        await runtime.close()
    turns, engine_ms = turns[1:], engine_ms[1:]
    return Overhead(
        conversation_ms=statistics.median(t.wall_ms for t in turns),
        engine_ms=statistics.median(engine_ms),
        ratio=statistics.median(t.wall_ms / e for t, e in zip(turns, engine_ms, strict=True)),
        engine_thread_cpu_ms=statistics.median(t.engine_cpu_ms for t in turns),
        other_cpu_ms=statistics.median(t.other_cpu_ms for t in turns),
        codec_cpu_ms=statistics.median(_codec_cpu_ms(runtime, turns[-1].tokens)
                                       for _ in range(runs)),
        tokens=turns[-1].tokens, runs=runs)


async def _conversation_turn(runtime: Runtime, samples, rate: int, engine_clock: int) -> _Turn:
    """One reply through a fresh conversation, per token from its first event to its end: wall
    time, the engine thread's CPU time and the rest of the process's CPU time."""
    start = None
    done = None
    async for event in runtime.new_conversation().respond(samples, rate):
        if start is None:
            start = (time.perf_counter(), time.clock_gettime(engine_clock), time.process_time())
        done = event
    end = (time.perf_counter(), time.clock_gettime(engine_clock), time.process_time())
    wall, engine_cpu, process_cpu = (1000 * (b - a) / max(1, done.output_tokens - 1)
                                     for a, b in zip(start, end, strict=True))
    return _Turn(wall, engine_cpu, process_cpu - engine_cpu, done.output_tokens)


def _codec_cpu_ms(runtime: Runtime, tokens: int) -> float:
    """CPU time per token of streaming a reply's worth of units (`tokens`) through the codec's
    decoder one unit at a time, as a turn does (this thread's CPU time)."""
    codec = runtime.codec
    units = np.random.default_rng(0).integers(0, codec.vocab_size, tokens)
    decoder = StreamingDecoder(codec)
    start = time.thread_time()
    for unit in units:
        decoder.push([unit])
    decoder.flush()
    return 1000 * (time.thread_time() - start) / tokens


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
