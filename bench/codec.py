"""Benchmark the unit codec: intelligibility after a round trip, speed, and streaming latency.

Run: `python -m bench.codec [--units 1024] [--judged 100] [--repeats 3] [--seed 0]`
Fits a codec on espeak-ng speech of the demo domain the way the demo bundle's codec is fitted
(user utterances in sampled training voices, replies in the assistant voice; then the context
decoder on those replies), then judges sentences it never saw: `--judged` user utterances spoken
by the held-out voices and as many replies spoken by the assistant voice. Prints Markdown for
docs/performance.md: Whisper tiny.en WER of the originals and of the round trips (one-shot and
streamed; centroid decoding and the context decoder), encode/decode ms per second of audio
(medians and bests over clips × repeats, with the context decoder), and how the streaming spec
was chosen.
Writes nothing to disk and downloads nothing.
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model.codecs.base import StreamingSpec
from model.codecs.streaming import StreamingDecoder
from model.codecs.units import UnitCodec
from training.data.domain import Turn, single_turns
from training.data.synth import (
    ASSISTANT_VOICE,
    HELD_OUT_VOICES,
    SAMPLE_RATE_HZ,
    Voice,
    sample_training_voice,
    synthesize_many,
)
from training.evaluation.intelligibility import WhisperJudge

# (context, lookahead, crossfade) frames tried against the shipped spec's chunk sizes
STREAMING_CANDIDATES = ((0, 4, 2), (2, 4, 2), (4, 0, 0), (4, 1, 1), (4, 2, 2), (4, 3, 2),
                        (4, 4, 0), (4, 4, 2), (4, 4, 4), (4, 6, 2), (8, 4, 2))


@dataclass(frozen=True)
class JudgedSet:
    """Sentences never used for fitting, with their original audio, under one label."""

    label: str
    texts: list[str]
    audio: list[np.ndarray]

    @property
    def seconds(self) -> float:
        return sum(clip.size for clip in self.audio) / SAMPLE_RATE_HZ


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--units", type=int, default=1024, help="codec units K (default 1024)")
    parser.add_argument("--judged", type=int, default=100,
                        help="held-out sentences per voice group (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="timing rounds (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="split, voices and k-means seed")
    parser.add_argument("--decoder-context", type=int, default=1,
                        help="units either side the context decoder sees (default 1)")
    parser.add_argument("--skip-wer", action="store_true",
                        help="speed and streaming figures only (no Whisper: about 1 minute)")


def split_turns(seed: int, judged: int) -> tuple[list[Turn], list[Turn]]:
    """All distinct domain turns, shuffled: (fit turns, judged turns); no sentence is in both."""
    turns = single_turns()
    if not 1 <= judged < len(turns) // 2:
        raise ValueError(f"--judged must lie in 1..{len(turns) // 2 - 1}")
    random.Random(seed).shuffle(turns)
    return turns[judged:], turns[:judged]


def fit_items(turns: Sequence[Turn], seed: int) -> list[tuple[str, Voice]]:
    """User utterances in sampled training voices and replies in the assistant voice."""
    rng = random.Random(seed)
    return ([(t.user, sample_training_voice(rng)) for t in turns]
            + [(t.reply, ASSISTANT_VOICE) for t in turns])


def judged_sets(turns: Sequence[Turn]) -> list[JudgedSet]:
    """Held-out voices (cycled) saying the users' turns; the assistant voice saying the replies."""
    users = [(t.user, HELD_OUT_VOICES[i % len(HELD_OUT_VOICES)]) for i, t in enumerate(turns)]
    replies = [(t.reply, ASSISTANT_VOICE) for t in turns]
    return [
        JudgedSet("held-out voices (gbcwmd, nyc × m4, f4)", [t for t, _ in users],
                  synthesize_many(users)),
        JudgedSet("assistant voice (en-us, 160 wpm)", [t for t, _ in replies],
                  synthesize_many(replies)),
    ]


def stream(codec: UnitCodec, units: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Decode `units` pushed one at a time, as generation delivers them: (audio, ms per chunk)."""
    decoder = StreamingDecoder(codec)
    chunks: list[np.ndarray] = []
    chunk_ms: list[float] = []
    for unit in units:
        started = time.perf_counter()
        ready = decoder.push([int(unit)])
        if ready:
            chunk_ms.append(1000 * (time.perf_counter() - started))
        chunks += ready
    chunks.append(decoder.flush())
    return np.concatenate(chunks), chunk_ms


def log_mel_error(codec: UnitCodec, audio: np.ndarray, units: np.ndarray) -> float:
    """RMS distance between the log-mel of decoded audio and the frames it should render."""
    return float(np.sqrt(np.mean((codec.log_mel(audio) - codec.frame_log_mel(units)) ** 2)))


def median_best(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.1f} / {min(values):.1f}"


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    fit_turns, judged_turns = split_turns(args.seed, args.judged)
    fit_audio = synthesize_many(fit_items(fit_turns, args.seed))
    fit_seconds = sum(clip.size for clip in fit_audio) / SAMPLE_RATE_HZ
    sets = judged_sets(judged_turns)
    fit_started = time.perf_counter()
    centroids = UnitCodec.fit(fit_audio, units=args.units, seed=args.seed, progress=False)
    fit_s = time.perf_counter() - fit_started
    replies = fit_audio[len(fit_turns):]
    codec = centroids.fit_decoder(replies, context=args.decoder_context)
    decoder_s = time.perf_counter() - fit_started - fit_s
    decoders = (("centroids", centroids), (f"context decoder ±{args.decoder_context}", codec))

    rows = []
    judge: WhisperJudge | None = None
    for judged in [] if args.skip_wer else sets:
        judge = judge or WhisperJudge()
        units = [codec.encode(clip) for clip in judged.audio]
        original = judge.word_error_rate(judged.texts, judged.audio, SAMPLE_RATE_HZ)
        for name, decoding in decoders:
            one_shot = judge.word_error_rate(
                judged.texts, [decoding.decode(u) for u in units], SAMPLE_RATE_HZ)
            streamed = judge.word_error_rate(
                judged.texts, [stream(decoding, u)[0] for u in units], SAMPLE_RATE_HZ)
            rows.append((judged.label, name, len(judged.texts), judged.seconds, original,
                         one_shot, streamed))

    clips = [clip for judged in sets for clip in judged.audio]
    all_units = [codec.encode(clip) for clip in clips]
    encode_ms, decode_ms, first_chunk_ms, later_chunk_ms = [], [], [], []
    for _ in range(args.repeats):  # each round times every measurement once, in turn
        for clip, units in zip(clips, all_units, strict=True):
            seconds = clip.size / SAMPLE_RATE_HZ
            t0 = time.perf_counter()
            codec.encode(clip)
            t1 = time.perf_counter()
            codec.decode(units)
            t2 = time.perf_counter()
            encode_ms.append(1000 * (t1 - t0) / seconds)
            decode_ms.append(1000 * (t2 - t1) / seconds)
            chunk_ms = stream(codec, units)[1]
            first_chunk_ms.append(chunk_ms[0])
            later_chunk_ms += chunk_ms[1:]

    assistant = sets[1]
    assistant_units = [codec.encode(clip) for clip in assistant.audio]
    one_shot_error = statistics.mean(
        log_mel_error(codec, codec.decode(u), u) for u in assistant_units)
    candidates = []
    for context, lookahead, crossfade in STREAMING_CANDIDATES:
        trial = copy.copy(codec)
        trial.streaming = StreamingSpec(context, lookahead, crossfade,
                                        codec.streaming.first_chunk_frames,
                                        codec.streaming.chunk_frames)
        error = statistics.mean(
            log_mel_error(trial, stream(trial, u)[0], u) for u in assistant_units)
        candidates.append((context, lookahead, crossfade, error / one_shot_error))

    spec = codec.streaming
    load = os.getloadavg()[0]
    print(f"Unit codec, {args.units} units, fitted in {fit_s:.1f} s on {len(fit_audio)} clips "
          f"({fit_seconds / 60:.1f} min: users in sampled training voices, replies in the "
          f"assistant voice), its context decoder in {decoder_s:.1f} s on the {len(replies)} "
          f"replies; judged sentences never used for fitting. Machine: "
          f"{os.cpu_count()} cores, load average {load:.1f}; whole run "
          f"{time.perf_counter() - started:.0f} s.\n")
    if rows:
        print("| judged set | decoding | sentences | audio | WER original | WER round trip "
              "| ratio | WER streamed round trip |")
        print("|---|---|---|---|---|---|---|---|")
    for label, name, count, seconds, original, one_shot, streamed in rows:
        print(f"| {label} | {name} | {count} | {seconds:.0f} s | {original:.3f} | "
              f"{one_shot:.3f} | {one_shot / original:.2f} | {streamed:.3f} |")
    blas_threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"\nSpeed (OPENBLAS_NUM_THREADS={blas_threads}), ms per second of audio, median / "
          f"best over {len(clips)} clips × {args.repeats} rounds: encode "
          f"{median_best(encode_ms)}, decode one-shot {median_best(decode_ms)}.")
    print(f"Streaming spec: context {spec.context_frames}, lookahead {spec.lookahead_frames}, "
          f"crossfade {spec.crossfade_frames}, first chunk {spec.first_chunk_frames}, later "
          f"chunks {spec.chunk_frames} frames. Added latency {spec.lookahead_frames} frames = "
          f"{codec.added_latency_ms():.0f} ms; first audio once "
          f"{spec.first_chunk_frames + spec.lookahead_frames} units exist. Compute per chunk, "
          f"median / best: first {median_best(first_chunk_ms)} ms, later "
          f"{median_best(later_chunk_ms)} ms ({spec.chunk_frames * 20} ms of audio each).\n")
    print("| context / lookahead / crossfade (frames) | log-mel error, streamed ÷ one-shot |")
    print("|---|---|")
    for context, lookahead, crossfade, ratio in candidates:
        chosen = " (shipped)" if (context, lookahead, crossfade) == (
            spec.context_frames, spec.lookahead_frames, spec.crossfade_frames) else ""
        print(f"| {context} / {lookahead} / {crossfade}{chosen} | {ratio:.4f} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.codec", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
