"""Voice text with espeak-ng into float32 mono 16 kHz audio, the demo voices, and augmentation.

The voices come from the demo-domain page: one assistant voice, training user voices, and user
voices held out for evaluation. This module only makes and perturbs audio; it must not touch
models, codecs or the domain's sentences.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np

from model.audio import AudioError, read_audio, resample

SAMPLE_RATE_HZ = 16_000
ESPEAK_TIMEOUT_S = 30.0
MIN_SPEED_WPM, MAX_SPEED_WPM = 80, 450  # espeak-ng accepts 80..450 words per minute
MIN_PITCH, MAX_PITCH = 0, 99  # espeak-ng's pitch scale

TRAINING_LANGUAGES = ("en-us", "en-gb", "en-gb-x-rp", "en-029")
TRAINING_VARIANTS: tuple[str | None, ...] = (None, "m1", "m2", "m3", "f1", "f2", "f3")
TRAINING_SPEED_RANGE_WPM = (140, 180)
TRAINING_PITCH_RANGE = (35, 65)
HELD_OUT_LANGUAGES = ("en-gb-x-gbcwmd", "en-us-nyc")
HELD_OUT_VARIANTS = ("m4", "f4")


class SynthesisError(RuntimeError):
    """espeak-ng is missing or failed; the message says how to fix it."""


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: language (`en-us`), variant (`m1`..`f4` or None), speed, pitch."""

    language: str
    variant: str | None = None
    speed_wpm: int = 160
    pitch: int = 50

    def __post_init__(self) -> None:
        if not self.language or any(c.isspace() or c == "+" for c in self.language):
            raise ValueError(f"language must be an espeak-ng voice name, got {self.language!r}")
        if self.variant is not None and (not self.variant or not self.variant.isalnum()):
            raise ValueError(f"variant must be a name such as 'm1' or None, got {self.variant!r}")
        if not MIN_SPEED_WPM <= self.speed_wpm <= MAX_SPEED_WPM:
            raise ValueError(f"speed_wpm must lie in {MIN_SPEED_WPM}..{MAX_SPEED_WPM}")
        if not MIN_PITCH <= self.pitch <= MAX_PITCH:
            raise ValueError(f"pitch must lie in {MIN_PITCH}..{MAX_PITCH}")

    @property
    def espeak_name(self) -> str:
        """The `-v` argument: `en-us` or `en-us+m1`."""
        return self.language if self.variant is None else f"{self.language}+{self.variant}"


ASSISTANT_VOICE = Voice("en-us", None, 160, 50)
TRAINING_VOICES = tuple(Voice(lang, v) for lang in TRAINING_LANGUAGES for v in TRAINING_VARIANTS)
HELD_OUT_VOICES = tuple(Voice(lang, v) for lang in HELD_OUT_LANGUAGES for v in HELD_OUT_VARIANTS)


def sample_training_voice(rng: random.Random) -> Voice:
    """A training voice: language, variant, speed and pitch drawn uniformly from their ranges."""
    return Voice(
        rng.choice(TRAINING_LANGUAGES),
        rng.choice(TRAINING_VARIANTS),
        rng.randint(*TRAINING_SPEED_RANGE_WPM),
        rng.randint(*TRAINING_PITCH_RANGE),
    )


def espeak_path() -> str:
    """The espeak-ng executable, or a SynthesisError saying how to install it."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise SynthesisError(
            "espeak-ng is not installed (not on PATH); install it with "
            "`sudo apt-get install espeak-ng` or `make system-deps`"
        )
    return path


@cache
def _installed(kind: str) -> frozenset[str]:
    """Languages (`--voices`) or variant files (`--voices=variant`) espeak-ng knows, lowercase."""
    option = "--voices" if kind == "language" else "--voices=variant"
    listing = subprocess.run([espeak_path(), option], capture_output=True, text=True,
                             timeout=ESPEAK_TIMEOUT_S, check=False).stdout
    rows = [line.split() for line in listing.splitlines()[1:]]
    if kind == "language":
        return frozenset(row[1].lower() for row in rows if len(row) > 1)
    return frozenset(row[-1].rsplit("/", 1)[-1].lower() for row in rows if row)


def check_voice(voice: Voice) -> None:
    """Raise SynthesisError unless espeak-ng has the voice (it would silently fall back)."""
    if voice.language.lower() not in _installed("language"):
        raise SynthesisError(
            f"espeak-ng has no language {voice.language!r} (see espeak-ng --voices)")
    if voice.variant is not None and voice.variant.lower() not in _installed("variant"):
        raise SynthesisError(
            f"espeak-ng has no variant {voice.variant!r} (see espeak-ng --voices=variant)")


def synthesize(text: str, voice: Voice = ASSISTANT_VOICE) -> np.ndarray:
    """Speak `text` with `voice`: float32 mono (T,) at 16 kHz, espeak-ng's silences included."""
    if not text.strip():
        raise ValueError("nothing to say: the text is empty")
    check_voice(voice)
    command = [
        espeak_path(), "-v", voice.espeak_name, "-s", str(voice.speed_wpm), "-p", str(voice.pitch),
        "--stdout", text,
    ]
    try:
        done = subprocess.run(command, capture_output=True, timeout=ESPEAK_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SynthesisError(f"espeak-ng took over {ESPEAK_TIMEOUT_S:g} s for {text!r}") from exc
    if done.returncode != 0 or not done.stdout:
        raise SynthesisError(
            f"espeak-ng failed for voice {voice.espeak_name!r} (exit {done.returncode}): "
            f"{done.stderr.decode(errors='replace').strip() or 'no audio written'}"
        )
    try:
        samples, _ = read_audio(done.stdout, target_rate=SAMPLE_RATE_HZ)
    except AudioError as exc:
        raise SynthesisError(f"espeak-ng wrote unreadable audio for {text!r}: {exc}") from exc
    return samples


def synthesize_many(
    items: Iterable[tuple[str, Voice]], *, workers: int = 2
) -> list[np.ndarray]:
    """`synthesize` over (text, voice) pairs, `workers` espeak-ng processes at a time, in order."""
    pairs = list(items)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda pair: synthesize(*pair), pairs))


def speed_perturb(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play (T,) `factor` times faster by resampling, tempo and pitch together: (T/factor,)."""
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"speed factor must lie in [0.5, 2], got {factor}")
    return resample(samples, round(SAMPLE_RATE_HZ * factor), SAMPLE_RATE_HZ)


def add_noise(
    samples: np.ndarray, snr_db: float, rng: np.random.Generator, *, color: str = "white"
) -> np.ndarray:
    """Add Gaussian noise (`white`, or `pink`: 1/f power) at `snr_db` relative to the signal.

    The signal power is measured over the whole clip, silences included, as a listener's noise
    floor would be. Silent input is returned unchanged (no SNR is defined).
    """
    if color not in ("white", "pink"):
        raise ValueError(f"noise color must be 'white' or 'pink', got {color!r}")
    signal = np.asarray(samples, dtype=np.float32)  # (T,)
    signal_power = float(np.mean(signal.astype(np.float64) ** 2))
    if signal_power == 0.0:
        return signal.copy()
    noise = rng.standard_normal(signal.size)  # (T,)
    if color == "pink":
        spectrum = np.fft.rfft(noise)  # (T//2+1,)
        spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
        spectrum[0] = 0.0
        noise = np.fft.irfft(spectrum, n=signal.size)
    noise *= np.sqrt(signal_power / (np.mean(noise**2) * 10.0 ** (snr_db / 10.0)))
    return (signal + noise).astype(np.float32)
