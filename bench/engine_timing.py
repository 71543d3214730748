"""Timings behind `icot bench engine`: copy bandwidth, prefill, decode steps and first audio.

Each function drives the engine as serving drives it (the same step, sampling and host reads),
synchronises the device before reading the clock, and returns medians in milliseconds. Knows
nothing of the command line or of how the figures are printed (bench/engine.py).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from model.codecs import SpeechCodec, StreamingDecoder
from model.engine import Engine, Request
from model.sampling import SamplingParams

BANDWIDTH_BUFFER_BYTES = {"cpu": 256 * 2**20, "cuda": 2 * 2**30}
WARMUP_CALLS = 2


def synchronizer(device: torch.device) -> Callable[[], None]:
    """What waits for the device's queued work (nothing on CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def median_ms(fn: Callable[[], object], sync: Callable[[], None], repeats: int) -> float:
    """Median wall time of `fn` in ms after warm-up calls, the device synchronised."""
    for _ in range(WARMUP_CALLS):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def copy_bandwidth(device: torch.device, sync, repeats: int) -> float:
    """Device memory bandwidth in bytes/s: a large copy counts its bytes read plus written."""
    n = BANDWIDTH_BUFFER_BYTES["cuda" if device.type == "cuda" else "cpu"]
    src = torch.ones(n, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), sync, repeats)
    return 2 * n / (ms / 1000)


def time_prefill(engine: Engine, n_tokens: int, sync, repeats: int) -> float:
    """One slot's prompt prefill in chunks of the engine's chunk size, in ms."""
    ids = torch.randint(0, engine.vocab_size, (n_tokens,), device=engine.device)
    chunk = engine.config.prefill_chunk_tokens

    def prefill() -> None:
        for start in range(0, n_tokens, chunk):
            engine.forward.prefill(0, ids[start : start + chunk], start)

    return median_ms(prefill, sync, max(3, repeats // 4))


def time_decode(engine: Engine, batch: int, context: int, sampling: SamplingParams, sync,
                repeats: int) -> float:
    """One engine decode step for `batch` slots at about `context` cached positions: the graphed
    (or eager) forward, the draw and the host read of the ids, in ms."""
    runner, sampler = engine.runner, engine.sampler
    rows = list(range(batch))
    runner.tokens[:batch] = torch.randint(0, engine.vocab_size, (batch,), device=engine.device)
    runner.positions[:batch] = context
    for slot in rows:
        sampler.reset(slot, [0], seed=slot)
        sampler.set_params(slot, sampling, 0)
    # The step advances every row; the bucket covers the positions the timed steps reach.
    bucket, length = runner.bucket(batch, context + repeats + WARMUP_CALLS + 1)
    stages = sampler.stages(rows)

    def step() -> list[int]:
        with torch.inference_mode():
            return runner.step(bucket, length, stages).tolist()

    ms = median_ms(step, sync, repeats)
    runner.positions[:batch] = engine.forward.cache.scratch_position
    return ms


@dataclass(frozen=True)
class FirstAudio:
    """Median milestones of one chain's first audio, ms from submit."""

    first_token_ms: float  # the prefill and its draw
    last_token_ms: float  # the last token the first audio chunk needs
    first_audio_ms: float  # the codec's first chunk in hand (= last_token_ms without a codec)


def time_first_audio(engine: Engine, prompt_tokens: int, generated: int, units: int,
                     sampling: SamplingParams, codec: SpeechCodec | None,
                     repeats: int) -> FirstAudio:
    """Submit a fresh random prompt of `prompt_tokens` ids, step the engine until `generated`
    tokens exist, the last `units` of them pushed as speech units, one by one as they arrive,
    into the codec's streaming decoder (when `codec` is given); median over the runs.

    A fresh prompt each run: no prefix is reused, as for a new question.
    """
    runs = []
    for _ in range(max(3, repeats // 4) + 1):
        ids = torch.randint(0, engine.vocab_size, (prompt_tokens,)).tolist()
        decoder = StreamingDecoder(codec) if codec is not None else None
        handle = engine.submit(Request(ids, generated, sampling, seed=0))
        start = time.perf_counter()
        first = last = audio = None
        with torch.inference_mode():
            while not handle.done:
                engine.step()
                now = time.perf_counter()
                first = first or now
                count = len(handle.tokens)
                if decoder is not None and count > generated - units:
                    chunks = decoder.push([handle.tokens[-1] % codec.vocab_size])
                    if chunks and audio is None:
                        audio = time.perf_counter()
        last = now
        audio = audio or last
        runs.append((first - start, last - start, audio - start))
    runs = runs[1:]  # the first run warms up
    return FirstAudio(*(1000 * statistics.median(r[i] for r in runs) for i in range(3)))
