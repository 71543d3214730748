"""Benchmark the SpeechTokenizer codec at the released size (≈ 104 M parameters, random weights).

Run: `python -m bench.speechtokenizer [--repeats 7] [--device cpu|cuda] [--threads N] [--codec DIR]`
(DIR: a released SpeechTokenizer directory, to measure real weights instead). Prints
encode and decode times, real-time factors, and what the streaming decoder adds (latency in frames
and ms, compute per chunk, error against the one-shot decode) as Markdown for docs/performance.md.
Each repeat runs every measurement once, in turn, so a burst of load from other processes on a
shared machine hits all figures alike; medians and bests are over the repeats.
Downloads nothing and touches nothing but the codec.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from model.codecs.speechtokenizer import SpeechTokenizerCodec, SpeechTokenizerConfig
from model.codecs.streaming import StreamingDecoder

ENCODE_SECONDS = (3.0, 5.0)
DECODE_FRAMES = (25, 50, 100, 150)
STREAM_FRAMES = 150


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stream_one_unit_at_a_time(
    codec: SpeechTokenizerCodec, units: np.ndarray
) -> tuple[list[float], np.ndarray]:
    """Push units one by one as an LLM would emit them; returns the wall time of every call that
    produced audio (the decode of one chunk; the flush last) and the audio (N * 320,)."""
    decoder = StreamingDecoder(codec)
    chunk_times, chunks = [], []
    for unit in units:
        start = time.perf_counter()
        emitted = decoder.push([unit])
        if emitted:
            chunk_times.append(time.perf_counter() - start)
            chunks += emitted
    start = time.perf_counter()
    chunks.append(decoder.flush())
    chunk_times.append(time.perf_counter() - start)
    return chunk_times, np.concatenate(chunks)


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    error = float(np.sum((reference - estimate) ** 2))
    return 10 * float(np.log10(float(np.sum(reference**2)) / max(error, 1e-30)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (median, best)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--codec", type=Path, default=None,
                        help="a released SpeechTokenizer directory (default: random weights)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice, one per core)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    if args.codec is None:
        codec = SpeechTokenizerCodec.random(SpeechTokenizerConfig.released(), seed=args.seed)
        weights = "random weights"
    else:
        codec = SpeechTokenizerCodec.load(args.codec)
        weights = f"weights from {args.codec}"
    codec.to(args.device)
    n_params = sum(p.numel() for p in codec.model.parameters())
    rng = np.random.default_rng(args.seed)
    audio = 0.1 * rng.standard_normal(int(max(ENCODE_SECONDS) * codec.sample_rate))  # (T,)
    units = rng.integers(0, codec.vocab_size, max(DECODE_FRAMES + (STREAM_FRAMES,)))  # (N,)
    stream_units = units[:STREAM_FRAMES]

    # (label, seconds of audio, call) for every one-shot figure.
    one_shot: list[tuple[str, float, Callable[[], object]]] = [
        (f"encode {s:g} s", s,
         lambda n=int(s * codec.sample_rate): codec.encode(audio[:n].astype(np.float32)))
        for s in ENCODE_SECONDS
    ] + [
        (f"decode {n} frames", n / codec.frame_rate, lambda n=n: codec.decode(units[:n]))
        for n in DECODE_FRAMES
    ]
    load_start = os.getloadavg()[0]
    for _, _, call in one_shot:  # warm-up
        call()
    stream_one_unit_at_a_time(codec, stream_units)
    times: dict[str, list[float]] = {label: [] for label, _, _ in one_shot}
    streams: list[list[float]] = []
    for _ in range(args.repeats):
        for label, _, call in one_shot:
            times[label].append(timed(call))
        chunk_times, streamed = stream_one_unit_at_a_time(codec, stream_units)
        streams.append(chunk_times)

    print(f"# SpeechTokenizer codec benchmark: {n_params / 1e6:.1f} M parameters, {weights}")
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.machine()}, {args.repeats} rounds, load average {load_start:.1f} at start "
          f"and {os.getloadavg()[0]:.1f} at the end\n")
    print("| what | audio | median | best | real-time factor (median) |")
    print("|---|---|---|---|---|")
    for label, seconds, _ in one_shot:
        median, best = statistics.median(times[label]), min(times[label])
        print(f"| {label} | {seconds:g} s | {1000 * median:.0f} ms | {1000 * best:.0f} ms "
              f"| {median / seconds:.3f} |")
    stream_seconds = STREAM_FRAMES / codec.frame_rate
    totals = [sum(chunk_times) for chunk_times in streams]
    print(f"| streaming decode, {STREAM_FRAMES} frames pushed one by one | {stream_seconds:g} s "
          f"| {1000 * statistics.median(totals):.0f} ms | {1000 * min(totals):.0f} ms "
          f"| {statistics.median(totals) / stream_seconds:.3f} |")

    spec = codec.streaming
    first_units = spec.first_chunk_frames + spec.lookahead_frames
    first_ms = [1000 * chunk_times[0] for chunk_times in streams]
    later_ms = [1000 * t for chunk_times in streams for t in chunk_times[1:-1]]
    reference = codec.decode(stream_units)
    print(f"\nStreaming ({spec}):")
    print(f"- added latency: {spec.lookahead_frames} frames = {codec.added_latency_ms():.0f} ms "
          f"(lookahead); first audio once {first_units} units exist "
          f"({1000 * first_units / codec.frame_rate:.0f} ms of generated speech)")
    print(f"- compute per chunk (median / best): first ({spec.first_chunk_frames} frames) "
          f"{statistics.median(first_ms):.0f} / {min(first_ms):.0f} ms, later "
          f"({spec.chunk_frames} frames) {statistics.median(later_ms):.0f} / "
          f"{min(later_ms):.0f} ms")
    print(f"- against the one-shot decode: same length ({streamed.size == reference.size}), "
          f"SNR {snr_db(reference, streamed):.1f} dB, max error "
          f"{np.max(np.abs(streamed - reference)) / np.max(np.abs(reference)):.1e} of the peak")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
