"""Audio files and containers: decode WAV/FLAC/OGG into float32 mono, encode 16-bit WAV.

Everything that enters the system as an audio file passes through `read_audio`, so a file that
is empty, truncated, not audio or too long becomes one `AudioError` a user can act on. numpy,
soundfile and soxr (through model/audio/resampling.py) only; no torch.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from model.audio.resampling import resample
from model.audio.samples import AudioError, check_rate, check_samples, too_long_message

_OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")  # a Python object's repr

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
            check_rate(rate)
            if max_seconds is not None and f.frames > max_seconds * rate:
                raise AudioError(too_long_message(f.frames / rate, max_seconds))
            data = f.read(dtype="float32", always_2d=True)  # (T, C)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        # libsndfile's own words, without the "Error opening <_io.BytesIO object at 0x…>" prefix
        why = getattr(exc, "error_string", None) or _OBJECT_REPR.sub("the audio", str(exc))
        raise AudioError(
            f"could not decode the audio ({why}); send WAV, FLAC or OGG (any rate, mono or stereo)"
        ) from exc
    samples = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    samples = check_samples(samples, rate, max_seconds=max_seconds)
    if target_rate is not None:
        samples = resample(samples, rate, target_rate)
        rate = target_rate
    return samples, rate


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Encode float32 mono (T,) as a 16-bit PCM WAV file in memory."""
    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(samples, dtype=np.float32), sample_rate, format="WAV",
             subtype="PCM_16")
    return buffer.getvalue()


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write float32 mono (T,) as a 16-bit PCM WAV file."""
    Path(path).write_bytes(wav_bytes(samples, sample_rate))
