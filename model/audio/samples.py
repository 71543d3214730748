"""Audio in and out: decode files and wire PCM into float32 mono, resample, encode WAV.

Everything that enters the system as audio passes through here, so every way audio can be bad
(empty, truncated, not audio, NaN/Inf, absurd sample rate, too long) becomes one `AudioError`
with a message a user can act on. No torch here: numpy, soundfile and soxr only.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

MIN_SAMPLE_RATE_HZ = 4_000
MAX_SAMPLE_RATE_HZ = 384_000
WIRE_SAMPLE_RATE_HZ = 24_000
PCM16_SCALE = 32768.0


class AudioError(ValueError):
    """Audio that cannot be used; the message says what is wrong and what to send instead."""


def read_audio(
    source: bytes | bytearray | str | Path,
    *,
    target_rate: int | None = None,
    max_seconds: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode WAV/FLAC/OGG from bytes or a path into float32 mono in [-1, 1].

    Stereo and multichannel audio is averaged to mono. With `target_rate` the result is resampled
    to that rate. Returns `(samples, sample_rate)`; samples has shape (T,).
    """
    if isinstance(source, bytes | bytearray):
        if len(source) == 0:
            raise AudioError("the audio is empty (0 bytes); send a WAV, FLAC or OGG file")
        handle: io.BytesIO | str = io.BytesIO(bytes(source))
    else:
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"no audio file at {path}")
        if path.stat().st_size == 0:
            raise AudioError(f"the audio file {path} is empty; send a WAV, FLAC or OGG file")
        handle = str(path)
    try:
        with sf.SoundFile(handle) as f:
            rate = int(f.samplerate)
            _check_rate(rate)
            if max_seconds is not None and f.frames > max_seconds * rate:
                raise AudioError(_too_long_message(f.frames / rate, max_seconds))
            data = f.read(dtype="float32", always_2d=True)  # (T, C)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(
            f"could not decode the audio ({exc}); send WAV, FLAC or OGG (any rate, mono or stereo)"
        ) from exc
    samples = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    samples = check_samples(samples, rate, max_seconds=max_seconds)
    if target_rate is not None:
        samples = resample(samples, rate, target_rate)
        rate = target_rate
    return samples, rate


def check_samples(
    samples: np.ndarray, sample_rate: int, *, max_seconds: float | None = None
) -> np.ndarray:
    """Validate decoded samples and return them as contiguous float32 of shape (T,)."""
    _check_rate(sample_rate)
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise AudioError(f"expected mono samples of shape (T,), got shape {samples.shape}")
    if samples.size == 0:
        raise AudioError("the audio holds no samples; send at least a few milliseconds of sound")
    if not np.all(np.isfinite(samples)):
        raise AudioError("the audio contains NaN or infinite samples; send finite PCM")
    if max_seconds is not None and samples.size > max_seconds * sample_rate:
        raise AudioError(_too_long_message(samples.size / sample_rate, max_seconds))
    return np.ascontiguousarray(samples, dtype=np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample float32 mono (T,) with soxr (high quality); a no-op when the rates match."""
    _check_rate(from_rate)
    _check_rate(to_rate)
    if from_rate == to_rate:
        return np.ascontiguousarray(samples, dtype=np.float32)
    return soxr.resample(samples.astype(np.float32, copy=False), from_rate, to_rate, "HQ")


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


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Encode float32 mono (T,) as a 16-bit PCM WAV file in memory."""
    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(samples, dtype=np.float32), sample_rate, format="WAV",
             subtype="PCM_16")
    return buffer.getvalue()


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write float32 mono (T,) as a 16-bit PCM WAV file."""
    Path(path).write_bytes(wav_bytes(samples, sample_rate))


def _check_rate(rate: int) -> None:
    if not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
        raise AudioError(
            f"sample rate {rate} Hz is outside {MIN_SAMPLE_RATE_HZ}–{MAX_SAMPLE_RATE_HZ} Hz; "
            "resample the audio (16 or 24 kHz are best)"
        )


def _too_long_message(seconds: float, max_seconds: float) -> str:
    return f"the audio lasts {seconds:.1f} s, over the limit of {max_seconds:g} s; send less"
