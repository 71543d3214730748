"""Benchmark the SpeechTokenizer codec at the released size (≈ 104 M parameters, random weights).

Run: `python -m bench.speechtokenizer [--repeats 5] [--device cpu|cuda]`. Prints medians of encode
and decode times, real-time factors, and what the streaming decoder adds (latency in frames and
ms, compute per chunk, error against the one-shot decode) as Markdown for docs/performance.md.
Downloads nothing and touches nothing but the codec.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from model.codecs.speechtokenizer import SpeechTokenizerCodec, SpeechTokenizerConfig

ENCODE_SECONDS = (3.0, 5.0)
DECODE_FRAMES = (25, 50, 100, 150)
STREAM_FRAMES = 150


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of `fn` over `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def stream_one_unit_at_a_time(
    codec: SpeechTokenizerCodec, units: np.ndarray
) -> tuple[list[float], np.ndarray]:
    """Push units one by one as an LLM would emit them; returns the wall time of every call that
    produced audio (the decode of one chunk) and the concatenated audio (N * 320,)."""
    decoder = codec.streaming_decoder()
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
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure (median)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice, one per core)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    codec = SpeechTokenizerCodec.random(SpeechTokenizerConfig.released(), seed=args.seed)
    codec.to(args.device)
    n_params = sum(p.numel() for p in codec.model.parameters())
    rng = np.random.default_rng(args.seed)
    audio = (0.1 * rng.standard_normal(int(max(ENCODE_SECONDS) * codec.sample_rate)))
    audio = audio.astype(np.float32)  # (T,)
    units = rng.integers(0, codec.vocab_size, max(DECODE_FRAMES))  # (N,)

    print(f"# SpeechTokenizer codec benchmark: {n_params / 1e6:.1f} M parameters, random weights")
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.machine()}, load average {os.getloadavg()[0]:.1f} at start, "
          f"median of {args.repeats}\n")
    print("| what | audio | median | real-time factor |")
    print("|---|---|---|---|")
    for seconds in ENCODE_SECONDS:
        clip = audio[: int(seconds * codec.sample_rate)]
        elapsed = median_seconds(lambda clip=clip: codec.encode(clip), args.repeats)
        print(f"| encode | {seconds:g} s | {1000 * elapsed:.0f} ms | {elapsed / seconds:.3f} |")
    for frames in DECODE_FRAMES:
        seconds = frames / codec.frame_rate
        elapsed = median_seconds(lambda n=frames: codec.decode(units[:n]), args.repeats)
        print(f"| decode {frames} frames | {seconds:g} s | {1000 * elapsed:.0f} ms "
              f"| {elapsed / seconds:.3f} |")

    spec = codec.streaming
    stream_units = units[:STREAM_FRAMES]
    runs = [stream_one_unit_at_a_time(codec, stream_units) for _ in range(args.repeats)]
    first_ms = statistics.median(1000 * times[0] for times, _ in runs)
    later_ms = statistics.median(1000 * t for times, _ in runs for t in times[1:-1])
    total_s = statistics.median(sum(times) for times, _ in runs)
    stream_seconds = STREAM_FRAMES / codec.frame_rate
    one_shot = codec.decode(stream_units)
    streamed = runs[0][1]
    print(f"| streaming decode, {STREAM_FRAMES} frames pushed one by one | {stream_seconds:g} s "
          f"| {1000 * total_s:.0f} ms | {total_s / stream_seconds:.3f} |")
    print(f"\nStreaming ({spec}):")
    first_units = spec.first_chunk_frames + spec.lookahead_frames
    print(f"- added latency: {spec.lookahead_frames} frames = {codec.added_latency_ms():.0f} ms "
          f"(lookahead); first audio once {first_units} units exist "
          f"({1000 * first_units / codec.frame_rate:.0f} ms of generated speech)")
    print(f"- compute: first chunk ({spec.first_chunk_frames} frames) {first_ms:.0f} ms, later "
          f"chunks ({spec.chunk_frames} frames) {later_ms:.0f} ms each (median)")
    print(f"- against the one-shot decode: same length ({streamed.size == one_shot.size}), "
          f"SNR {snr_db(one_shot, streamed):.1f} dB, max error "
          f"{np.max(np.abs(streamed - one_shot)) / np.max(np.abs(one_shot)):.1e} of the peak")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
