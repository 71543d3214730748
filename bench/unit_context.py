"""Benchmark the unit codec's encoder context: how much units depend on the speaker, and what
decoding loses.

Run: `python -m bench.unit_context [--contexts 0 1 2 3] [--cepstra 0 13] [--units 1024]
[--utterances 100] [--snr 30 20]`
For each encoder context c (log-mel frames either side stacked into each encoded frame) and each
cepstral assignment n (0: units assigned by all log-mel values; n: by each frame's first n
cepstral coefficients), fits a
codec on the audio the demo recipe fits its codec on (the user turns of its first 300 training
dialogues and their replies), then measures:
- cross-voice identification: `--utterances` demo questions, each spoken by three sampled
  training voices, are the references; the same questions spoken by one more training voice and
  by two held-out voices are the queries. A query is identified when the reference nearest by
  normalized edit distance between the run-collapsed unit sequences has its text. The demo's
  questions differ in one word at a time (`what is two plus six` / `… plus seven`), so this asks
  whether units keep those words apart across voices, which is the demo model's weak point;
  with `--snr`, the held-out-voice queries are identified again with white noise at each SNR
  (the references stay clean), as users bring noise the units must not confuse with words;
- decoding: context decoders (±1 and ±2 units) fitted on every assistant reply but 60 held out,
  and the Whisper tiny.en WER of those 60 decoded from their units.
Prints Markdown for docs/codecs.md. Writes nothing to disk and downloads nothing.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import time
from collections.abc import Callable

import numpy as np

REFERENCE_VOICES = 3  # training voices per question among the references
HELD_OUT_QUERIES = 2  # held-out voices per question among the queries
JUDGED_REPLIES = 60  # replies kept out of the context decoder's fit and judged by Whisper
DECODER_CONTEXTS = (1, 2)  # context decoders compared on each codec


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contexts", type=int, nargs="+", default=[0, 1, 2, 3],
                        help="encoder contexts to compare (default 0 1 2 3)")
    parser.add_argument("--cepstra", type=int, nargs="+", default=[0],
                        help="cepstral coefficients units are assigned by, compared at each "
                             "context (default 0: all log-mel values)")
    parser.add_argument("--units", type=int, default=1024, help="codec units K (default 1024)")
    parser.add_argument("--utterances", type=int, default=100,
                        help="distinct questions identified (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="voice and question sampling seed")
    parser.add_argument("--snr", type=float, nargs="+", default=[], metavar="DB",
                        help="also identify the held-out-voice queries with white noise at "
                             "these SNRs (default: clean only)")


def collapsed(units: np.ndarray) -> list[int]:
    """Units with each run of repeats kept once: (N,) → the sequence of distinct runs."""
    keep = np.ones(units.size, dtype=bool)
    keep[1:] = units[1:] != units[:-1]
    return units[keep].tolist()


def identified_share(encode: Callable[[np.ndarray], np.ndarray],
                     references: list[tuple[str, np.ndarray]],
                     queries: list[tuple[str, np.ndarray]]) -> float:
    """Share of queries whose nearest reference (edit distance of collapsed units, `encode`: a
    clip → its units) has their text."""
    from rapidfuzz.distance import Levenshtein

    encoded = [(text, collapsed(encode(clip))) for text, clip in references]
    hits = 0
    for text, clip in queries:
        units = collapsed(encode(clip))
        distances = [Levenshtein.normalized_distance(units, ref) for _, ref in encoded]
        hits += encoded[int(np.argmin(distances))][0] == text
    return hits / len(queries)


def spoken(texts: list[str], voices: list) -> list[tuple[str, np.ndarray]]:
    """(text, trimmed audio) for each text and its espeak-ng voice in turn."""
    from training.data.synth import synthesize_many
    from training.data.voicing import trim_silence

    items = [(text, voice) for text, voice in zip(texts, voices, strict=True)]
    return [(text, trim_silence(clip))
            for (text, _), clip in zip(items, synthesize_many(items), strict=True)]


def run(args: argparse.Namespace) -> int:
    from model.codecs.units import UnitCodec, UnitCodecConfig
    from training.data.demo_source import DemoSource
    from training.data.domain import every_reply, single_turns
    from training.data.synth import (
        HELD_OUT_VOICES,
        SAMPLE_RATE_HZ,
        Voice,
        add_noise,
        sample_training_voice,
    )
    from training.data.voicing import reply_audio
    from training.evaluation.intelligibility import WhisperJudge
    from training.recipe_files import load_recipe

    started = time.perf_counter()
    rng = random.Random(args.seed)
    questions = [turn.user for turn in rng.sample(single_turns(), args.utterances)]
    references = spoken([q for q in questions for _ in range(REFERENCE_VOICES)],
                        [sample_training_voice(rng) for _ in questions * REFERENCE_VOICES])
    training_queries = spoken(questions, [sample_training_voice(rng) for _ in questions])

    def held_out_voice() -> Voice:
        voice = rng.choice(HELD_OUT_VOICES)
        return Voice(voice.language, voice.variant, sample_training_voice(rng).speed_wpm,
                     sample_training_voice(rng).pitch)

    held_out_queries = spoken([q for q in questions for _ in range(HELD_OUT_QUERIES)],
                              [held_out_voice() for _ in questions * HELD_OUT_QUERIES])
    noise_rng = np.random.default_rng(args.seed)
    noisy_queries = [[(text, add_noise(clip, snr, noise_rng)) for text, clip in held_out_queries]
                     for snr in args.snr]
    fit_audio = DemoSource(load_recipe("demo")).codec_fit_audio()
    replies = every_reply()
    rng.shuffle(replies)
    judged, fitted = replies[:JUDGED_REPLIES], replies[JUDGED_REPLIES:]
    judge = WhisperJudge()

    rows = []
    for context, cepstra in itertools.product(args.contexts, args.cepstra):
        fit_started = time.perf_counter()
        config = UnitCodecConfig(encoder_context=context, encoder_cepstra=cepstra)
        codec = UnitCodec.fit(fit_audio, units=args.units, seed=args.seed, progress=False,
                              config=config)
        fit_s = time.perf_counter() - fit_started
        wers = []
        for decoder_context in DECODER_CONTEXTS:
            decoding = codec.fit_decoder([reply_audio(reply) for reply in fitted],
                                         context=decoder_context)
            decoded = [decoding.decode(decoding.encode(reply_audio(reply))) for reply in judged]
            wers.append(judge.word_error_rate(judged, decoded, SAMPLE_RATE_HZ))
        rows.append((context, cepstra, fit_s,
                     identified_share(codec.encode, references, training_queries),
                     [identified_share(codec.encode, references, queries)
                      for queries in [held_out_queries, *noisy_queries]], wers))

    seconds = sum(clip.size for clip in fit_audio) / SAMPLE_RATE_HZ
    print(f"Unit codecs of {args.units} units fitted on {len(fit_audio)} clips "
          f"({seconds / 60:.1f} min) as the demo recipe fits its codec; {args.utterances} "
          f"questions × {REFERENCE_VOICES} training voices as references, {args.utterances} "
          f"training-voice and {args.utterances * HELD_OUT_QUERIES} held-out-voice queries; "
          f"{JUDGED_REPLIES} held-out replies decoded. Machine: {os.cpu_count()} cores; whole "
          f"run {time.perf_counter() - started:.0f} s.\n")
    held_out_columns = ["identified, held-out voices",
                        *(f"… at {snr:g} dB SNR" for snr in args.snr)]
    wer_columns = [f"WER of decoded replies, decoder ±{c}" for c in DECODER_CONTEXTS]
    print("| encoder context | cepstra | k-means fit | identified, training voice | "
          + " | ".join(held_out_columns + wer_columns) + " |")
    print("|---|---|---|---|" + "---|" * (len(held_out_columns) + len(wer_columns)))
    for context, cepstra, fit_s, training, held_out, wers in rows:
        print(f"| ±{context} | {cepstra or 'all mels'} | {fit_s:.0f} s | {training:.1%} | "
              + " | ".join(f"{share:.1%}" for share in [*held_out, *wers]) + " |")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
