"""`icot codec`: fit the unit codec on a folder of audio, and round-trip a file through a codec.

    icot codec fit --audio DIR --units 1024 --out CODEC_DIR [--seed 0 --iterations 30]
                   [--decoder-audio DIR --decoder-context 1]
    icot codec roundtrip --codec CODEC_DIR IN.wav OUT.wav [--kind units]

Only drives model/codecs; it must not touch bundles, LLMs or the server.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the `fit` and `roundtrip` actions to the `codec` subcommand's parser."""
    from model.codecs import CODEC_CLASSES

    actions = parser.add_subparsers(dest="codec_action", required=True)
    fit = actions.add_parser(
        "fit", help="fit a unit codec (log-mel k-means) on every .wav/.flac/.ogg under a folder")
    fit.add_argument("--audio", type=Path, required=True, help="folder searched recursively")
    fit.add_argument("--units", type=int, default=1024, help="number of units K (default 1024)")
    fit.add_argument("--out", type=Path, required=True, help="folder to write the codec into")
    fit.add_argument("--seed", type=int, default=0, help="k-means seed (default 0)")
    fit.add_argument("--iterations", type=int, default=30,
                     help="most k-means iterations (default 30; stops early when stable)")
    fit.add_argument("--encoder-context", type=int, default=0,
                     help="log-mel frames either side each unit is fitted and encoded with "
                          "(default 0; the demo uses 3, which is less speaker-dependent)")
    fit.add_argument("--encoder-cepstra", type=int, default=0,
                     help="assign units by each frame's first N cepstral coefficients, its "
                          "envelope without pitch harmonics (default 0: all mels; the demo "
                          "uses 13)")
    fit.add_argument("--decoder-audio", type=Path,
                     help="folder of speech in the voice the codec will speak in: fit a context "
                          "decoder on it (clearer decoded speech in that voice)")
    fit.add_argument("--decoder-context", type=int, default=1,
                     help="units either side the context decoder looks at (default 1)")
    roundtrip = actions.add_parser(
        "roundtrip", help="encode a file to units and decode it back (OUT at the codec's rate)")
    roundtrip.add_argument("--codec", type=Path, required=True, help="codec folder")
    roundtrip.add_argument("--kind", choices=sorted(CODEC_CLASSES), default="units",
                           help="codec kind (default units)")
    roundtrip.add_argument("input", type=Path, help="WAV/FLAC/OGG, any rate, mono or stereo")
    roundtrip.add_argument("output", type=Path, help="WAV file to write")


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; a user error prints one line to stderr and returns 2."""
    from model.audio import AudioError

    try:
        if args.codec_action == "fit":
            return _fit(args)
        return _roundtrip(args)
    except (AudioError, ValueError, FileNotFoundError) as exc:
        print(f"icot codec {args.codec_action}: {exc}", file=sys.stderr)
        return 2


def audio_files(folder: Path) -> list[Path]:
    """Every .wav/.flac/.ogg file under `folder` (recursively, any case), sorted."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no audio folder at {folder}")
    return sorted(
        path for path in folder.rglob("*")
        if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES
    )


def _fit(args: argparse.Namespace) -> int:
    from model.codecs.units import UnitCodec, UnitCodecConfig

    rate = UnitCodecConfig().sample_rate_hz
    clips = _clips(args.audio, rate)
    voice = _clips(args.decoder_audio, rate) if args.decoder_audio is not None else None
    seconds = sum(clip.size for clip in clips) / rate
    started = time.perf_counter()
    config = UnitCodecConfig(encoder_context=args.encoder_context,
                             encoder_cepstra=args.encoder_cepstra)
    codec = UnitCodec.fit(clips, units=args.units, seed=args.seed, iterations=args.iterations,
                          config=config)
    if voice is not None:
        codec = codec.fit_decoder(voice, context=args.decoder_context)
    codec.save(args.out)
    decoder = f" and a context decoder on {len(voice)} files" if voice is not None else ""
    print(f"fitted {args.units} units on {len(clips)} files ({seconds:.1f} s of audio){decoder} "
          f"in {time.perf_counter() - started:.1f} s → {args.out}")
    return 0


def _clips(folder: Path, rate: int) -> list:
    """Every audio file under `folder`, read as float32 mono at `rate`."""
    from model.audio import read_audio

    paths = audio_files(folder)
    if not paths:
        raise FileNotFoundError(f"no .wav, .flac or .ogg files under {folder}")
    return [read_audio(path, target_rate=rate)[0] for path in paths]


def _roundtrip(args: argparse.Namespace) -> int:
    from model.audio import read_audio, write_wav
    from model.codecs import load_codec

    codec = load_codec(args.kind, args.codec)
    samples, _ = read_audio(args.input, target_rate=codec.sample_rate)
    started = time.perf_counter()
    units = codec.encode(samples)
    encoded = time.perf_counter()
    decoded = codec.decode(units)
    finished = time.perf_counter()
    write_wav(args.output, decoded, codec.sample_rate)
    print(f"{units.size} units ({units.size / codec.frame_rate:.2f} s): encode "
          f"{1000 * (encoded - started):.0f} ms, decode {1000 * (finished - encoded):.0f} ms "
          f"→ {args.output} ({codec.sample_rate} Hz)")
    return 0
