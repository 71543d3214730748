"""Audio samples as the system passes them around: float32 mono (T,), their rates, and PCM16.

Every way samples can be bad (empty, NaN/Inf, wrong shape, absurd sample rate, too long) becomes
one `AudioError` with a message a user can act on. `MODEL_INPUT_RATE_HZ` is the rate user speech
is handed to the runtime at (the server's VAD hears it at that rate too). numpy only; no files,
no resampling.
"""

from __future__ import annotations

import numpy as np

MIN_SAMPLE_RATE_HZ = 4_000
MAX_SAMPLE_RATE_HZ = 384_000
WIRE_SAMPLE_RATE_HZ = 24_000
MODEL_INPUT_RATE_HZ = 16_000
PCM16_SCALE = 32768.0


class AudioError(ValueError):
    """Audio that cannot be used; the message says what is wrong and what to send instead."""


def check_rate(rate: int) -> None:
    """Raise `AudioError` for a sample rate outside what any part of the system accepts."""
    if not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
        raise AudioError(
            f"sample rate {rate} Hz is outside {MIN_SAMPLE_RATE_HZ}–{MAX_SAMPLE_RATE_HZ} Hz; "
            "resample the audio (16 or 24 kHz are best)"
        )


def check_samples(
    samples: np.ndarray, sample_rate: int, *, max_seconds: float | None = None
) -> np.ndarray:
    """Validate decoded samples and return them as contiguous float32 of shape (T,)."""
    check_rate(sample_rate)
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise AudioError(f"expected mono samples of shape (T,), got shape {samples.shape}")
    if samples.size == 0:
        raise AudioError("the audio holds no samples; send at least a few milliseconds of sound")
    if not np.all(np.isfinite(samples)):
        raise AudioError("the audio contains NaN or infinite samples; send finite PCM")
    if max_seconds is not None and samples.size > max_seconds * sample_rate:
        raise AudioError(too_long_message(samples.size / sample_rate, max_seconds))
    return np.ascontiguousarray(samples, dtype=np.float32)


def pcm16_to_float(pcm: bytes | bytearray) -> np.ndarray:
    """PCM16 little-endian bytes → float32 (T,) in [-1, 1)."""
    if len(pcm) % 2:
        raise AudioError(
            f"PCM16 audio must have an even number of bytes (2 per sample), got {len(pcm)}"
        )
    return np.frombuffer(bytes(pcm), dtype="<i2").astype(np.float32) / PCM16_SCALE


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """float32 (T,) → PCM16 little-endian bytes, clipping to the representable range."""
    scaled = np.clip(np.asarray(samples, dtype=np.float32) * PCM16_SCALE, -32768, 32767)
    return np.round(scaled).astype("<i2").tobytes()


def too_long_message(seconds: float, max_seconds: float) -> str:
    return f"the audio lasts {seconds:.1f} s, over the limit of {max_seconds:g} s; send less"
