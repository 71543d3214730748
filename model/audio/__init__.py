"""Audio in and out of the model: samples and rates (samples.py), files (io.py), resampling
(resampling.py) and speech level (level.py). Every public name is importable from `model.audio`.
No torch here.
"""

from model.audio.io import read_audio, wav_bytes, write_wav
from model.audio.level import fit_level, speech_level_dbfs
from model.audio.resampling import StreamResampler, resample
from model.audio.samples import (
    MAX_SAMPLE_RATE_HZ,
    MIN_SAMPLE_RATE_HZ,
    MODEL_INPUT_RATE_HZ,
    PCM16_SCALE,
    WIRE_SAMPLE_RATE_HZ,
    AudioError,
    check_rate,
    check_samples,
    float_to_pcm16,
    pcm16_to_float,
)

__all__ = [
    "MAX_SAMPLE_RATE_HZ",
    "MIN_SAMPLE_RATE_HZ",
    "MODEL_INPUT_RATE_HZ",
    "PCM16_SCALE",
    "WIRE_SAMPLE_RATE_HZ",
    "AudioError",
    "StreamResampler",
    "check_rate",
    "check_samples",
    "fit_level",
    "float_to_pcm16",
    "pcm16_to_float",
    "read_audio",
    "resample",
    "speech_level_dbfs",
    "wav_bytes",
    "write_wav",
]
