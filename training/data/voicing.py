"""Voicing demo turns: a user turn's distortion, silence trimming, the assistant's cached replies.

`Augmentation` is one user turn's distortion (speed, echo, band, noise, level) and
`sample_augmentation` draws one as the demo corpus's training split does; `trim_silence` cuts edge
silence to a short margin; `reply_audio` voices a reply in the fixed assistant voice, cached.
Float32 audio at 16 kHz throughout. Knows nothing of corpora, codecs or models.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from training.data.synth import (
    ASSISTANT_VOICE,
    NOISE_KINDS,
    SAMPLE_RATE_HZ,
    add_noise,
    band_limit,
    room_echo,
    set_gain,
    speed_perturb,
    synthesize_many,
)

SPEED_FACTOR_RANGE = (0.85, 1.15)  # speed perturbation: tempo, pitch and formants ×0.85 … ×1.15
NOISE_SNR_RANGE_DB = (20.0, 40.0)  # background noise down to 20 dB SNR (the demo-domain page)
NOISE_COLORS = ("white", "pink")
WIDE_GAIN_RANGE_DB = (-20.0, 12.0)  # wide augmentation: a quiet or loud microphone
WIDE_ECHO_RANGE_S = (0.1, 0.4)  # wide augmentation: reverberation time of a mild room
TELEPHONE_RATE_HZ = 8000
TRIM_FRAME_S = 0.01
TRIM_FLOOR_DB = 40.0  # frames more than this below the loudest frame count as silence
TRIM_MARGIN_S = 0.1  # silence kept before the first and after the last voiced frame


@dataclass(frozen=True)
class Augmentation:
    """What is done to one user turn's audio, in this order: speed factor; room echo of
    reverberation time `echo_rt60_s`; a channel of `band_rate_hz` (8000: telephone); noise at
    `snr_db` of kind `noise`; level changed by `gain_db`. None (or 1.0) skips a step."""

    speed_factor: float = 1.0
    snr_db: float | None = None
    noise: str = "white"
    gain_db: float | None = None
    band_rate_hz: int | None = None
    echo_rt60_s: float | None = None

    def __post_init__(self) -> None:
        if self.noise not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {', '.join(NOISE_KINDS)}, got {self.noise!r}")
        for name in ("snr_db", "gain_db", "echo_rt60_s"):
            value = getattr(self, name)
            if value is not None and not np.isfinite(value):
                raise ValueError(f"{name} must be a finite number or None, got {value}")
        if self.band_rate_hz is not None and not 4000 <= self.band_rate_hz < SAMPLE_RATE_HZ:
            raise ValueError(f"band_rate_hz must lie in 4000..{SAMPLE_RATE_HZ - 1}")

    def apply(self, samples: np.ndarray, seed: str) -> np.ndarray:
        """float32 (T,) at 16 kHz → the augmented clip; noise and echo are seeded by `seed`."""
        digest = hashlib.sha256(seed.encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        if self.speed_factor != 1.0:
            samples = speed_perturb(samples, self.speed_factor)
        if self.echo_rt60_s is not None:
            samples = room_echo(samples, self.echo_rt60_s, rng)
        if self.band_rate_hz is not None:
            samples = band_limit(samples, self.band_rate_hz)
        if self.snr_db is not None:
            samples = add_noise(samples, self.snr_db, rng, color=self.noise)
        if self.gain_db is not None:
            samples = set_gain(samples, self.gain_db)
        return samples


NO_AUGMENTATION = Augmentation()


def sample_augmentation(rng: random.Random, prob: float, wide: bool) -> Augmentation:
    """With probability `prob`: speed, noise or both; `wide` adds noise kinds and, each with
    probability 1/3, a level change, a telephone band and a mild room echo."""
    if rng.random() >= prob:
        return NO_AUGMENTATION
    kind = rng.choice(("speed", "noise", "both"))
    speed = round(rng.uniform(*SPEED_FACTOR_RANGE), 3) if kind != "noise" else 1.0
    snr = round(rng.uniform(*NOISE_SNR_RANGE_DB), 1) if kind != "speed" else None
    if not wide:
        return Augmentation(speed, snr, rng.choice(NOISE_COLORS))
    noise = rng.choice(NOISE_KINDS)
    gain = round(rng.uniform(*WIDE_GAIN_RANGE_DB), 1) if rng.random() < 1 / 3 else None
    band = TELEPHONE_RATE_HZ if rng.random() < 1 / 3 else None
    echo = round(rng.uniform(*WIDE_ECHO_RANGE_S), 2) if rng.random() < 1 / 3 else None
    return Augmentation(speed, snr, noise, gain, band, echo)


def trim_silence(samples: np.ndarray, sample_rate: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Cut leading and trailing silence down to TRIM_MARGIN_S; (T,) → (T',)."""
    hop = max(1, round(TRIM_FRAME_S * sample_rate))
    frames = samples[: samples.size // hop * hop].reshape(-1, hop)  # (F, hop)
    if frames.size == 0:
        return samples
    energy_db = 10.0 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)  # (F,)
    voiced = np.flatnonzero(energy_db > energy_db.max() - TRIM_FLOOR_DB)
    margin = round(TRIM_MARGIN_S * sample_rate)
    start = max(0, voiced[0] * hop - margin)
    stop = min(samples.size, (voiced[-1] + 1) * hop + margin)
    return samples[start:stop]


_REPLY_AUDIO: dict[str, np.ndarray] = {}  # reply text → its clip in the assistant voice


def prefetch_replies(replies: Sequence[str], workers: int = 2) -> None:
    """Voice the replies not yet cached, `workers` espeak-ng processes at a time. The domain
    has a few hundred distinct replies, and each always sounds the same."""
    missing = sorted(set(replies) - set(_REPLY_AUDIO))
    clips = synthesize_many([(reply, ASSISTANT_VOICE) for reply in missing], workers=workers)
    for reply, clip in zip(missing, clips, strict=True):
        trimmed = trim_silence(clip)
        trimmed.setflags(write=False)
        _REPLY_AUDIO[reply] = trimmed


def reply_audio(reply: str) -> np.ndarray:
    """`reply` in the assistant voice, trimmed: float32 (T,) at 16 kHz (read-only, cached)."""
    if reply not in _REPLY_AUDIO:
        prefetch_replies([reply], workers=1)
    return _REPLY_AUDIO[reply]
