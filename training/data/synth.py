"""Voice text with espeak-ng into float32 mono 16 kHz audio, the demo voices, and augmentation.

The voices come from the demo-domain page: one assistant voice, training user voices, dev voices
(every tuning choice), test voices (HELD_OUT_*: the shipped figures only), and the stress voices,
English voices and variants in none of those lists (docs/training.md, "Stress set"). This
module only makes and perturbs audio; it must not touch models, codecs or the domain's
sentences.
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
HELD_OUT_LANGUAGES = ("en-gb-x-gbcwmd", "en-us-nyc")  # the test voices
HELD_OUT_VARIANTS = ("m4", "f4")
DEV_VOICE_NAMES = ("en-us+m7", "en-us+klatt2", "en-gb-x-rp+klatt3")
STRESS_VOICE_NAMES = ("en-gb-scotland", "en-gb-x-gbclan+m5", "en-us+f5", "en-029+m6",
                      "en-gb+klatt4", "en-gb-x-rp+m8")
NOISE_KINDS = ("white", "pink", "brown", "hum")


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


def voice_named(name: str, speed_wpm: int = 160, pitch: int = 50) -> Voice:
    """`en-us+m7` → Voice("en-us", "m7", …)."""
    language, _, variant = name.partition("+")
    return Voice(language, variant or None, speed_wpm, pitch)


ASSISTANT_VOICE = Voice("en-us", None, 160, 50)
DEV_VOICES = tuple(map(voice_named, DEV_VOICE_NAMES))
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
    """Add noise at `snr_db` relative to the signal: Gaussian `white`, `pink` (1/f power) or
    `brown` (1/f²), or `hum` (mains hum: 50 Hz and its first harmonics at a random phase).

    The signal power is measured over the whole clip, silences included, as a listener's noise
    floor would be. Silent input is returned unchanged (no SNR is defined).
    """
    if color not in NOISE_KINDS:
        raise ValueError(f"noise color must be one of {', '.join(NOISE_KINDS)}, got {color!r}")
    signal = np.asarray(samples, dtype=np.float32)  # (T,)
    signal_power = float(np.mean(signal.astype(np.float64) ** 2))
    if signal_power == 0.0:
        return signal.copy()
    noise = rng.standard_normal(signal.size)  # (T,)
    if color in ("pink", "brown"):
        spectrum = np.fft.rfft(noise)  # (T//2+1,)
        spectrum[1:] /= np.arange(1, spectrum.size) ** (0.5 if color == "pink" else 1.0)
        spectrum[0] = 0.0
        noise = np.fft.irfft(spectrum, n=signal.size)
    elif color == "hum":
        t = np.arange(signal.size) / SAMPLE_RATE_HZ  # (T,) seconds
        noise = sum(np.sin(2 * np.pi * 50.0 * h * t + rng.uniform(0, 2 * np.pi)) / h
                    for h in (1, 2, 3, 4, 5))
    noise *= np.sqrt(signal_power / (np.mean(noise**2) * 10.0 ** (snr_db / 10.0)))
    return (signal + noise).astype(np.float32)


def set_gain(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """(T,) scaled by `gain_db` and clipped to [−1, 1], as a loud microphone clips."""
    return np.clip(samples * np.float32(10.0 ** (gain_db / 20.0)), -1.0, 1.0).astype(np.float32)


def band_limit(samples: np.ndarray, rate_hz: int) -> np.ndarray:
    """(T,) at 16 kHz through a `rate_hz` channel (telephone: 8000) and back: (T',) at 16 kHz
    with nothing above rate_hz / 2."""
    return resample(resample(samples, SAMPLE_RATE_HZ, rate_hz), rate_hz, SAMPLE_RATE_HZ)


def room_echo(samples: np.ndarray, rt60_s: float, rng: np.random.Generator,
              wet: float = 0.3) -> np.ndarray:
    """A mild room: (T,) convolved with an exponentially decaying noise tail of reverberation
    time `rt60_s` (60 dB of decay), mixed `wet` against the dry signal, level kept; (T,)."""
    if not 0.0 < rt60_s <= 2.0:
        raise ValueError(f"rt60_s must lie in (0, 2], got {rt60_s}")
    length = int(rt60_s * SAMPLE_RATE_HZ)
    t = np.arange(length) / SAMPLE_RATE_HZ  # (L,)
    tail = rng.standard_normal(length) * 10.0 ** (-3.0 * t / rt60_s)  # (L,) −60 dB at rt60
    tail /= np.sqrt(np.sum(tail**2))
    wet_signal = np.convolve(samples, tail)[: samples.size]  # (T,)
    mixed = (1.0 - wet) * samples + wet * wet_signal
    peak_in, peak_out = np.max(np.abs(samples)), np.max(np.abs(mixed))
    return (mixed * (peak_in / peak_out if peak_out > 0 else 1.0)).astype(np.float32)
