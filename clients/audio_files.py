"""Audio files for `icot talk`: any soundfile-readable file → 24 kHz PCM16 mono, and WAV out.

The clients speak only the public protocol, so they read and resample audio themselves
(soundfile + soxr) instead of using the server's or the model's audio code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr

WIRE_RATE_HZ = 24_000  # the protocol's default PCM16 rate, in and out
BYTES_PER_SAMPLE = 2


def read_pcm16(path: Path) -> bytes:
    """The file's audio as 24 kHz mono PCM16 little-endian bytes (channels averaged)."""
    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (T, C)
    mono = samples.mean(axis=1)  # (T,)
    if rate != WIRE_RATE_HZ:
        mono = soxr.resample(mono, rate, WIRE_RATE_HZ)
    return (np.clip(mono, -1.0, 1.0) * 32767).round().astype("<i2").tobytes()


def write_wav(path: Path, pcm16: bytes) -> None:
    """24 kHz mono PCM16 bytes → a WAV file."""
    samples = np.frombuffer(pcm16, dtype="<i2")
    soundfile.write(str(path), samples, WIRE_RATE_HZ, subtype="PCM_16")


def duration_s(pcm16: bytes) -> float:
    return len(pcm16) / BYTES_PER_SAMPLE / WIRE_RATE_HZ
