"""Sample-rate conversion of float32 mono (T,): one-shot, and streaming for audio in pieces.

`resample` converts a whole clip; `StreamResampler` converts audio that arrives in pieces
(wire ↔ model input ↔ codec): soxr's stream resampler keeps filter state across pieces, so chunk
boundaries leave no clicks, and the output stays aligned with the input (it only holds back a few
milliseconds until more input or `flush`). Equal rates pass audio through untouched. soxr and
numpy only.
"""

from __future__ import annotations

import numpy as np
import soxr

from model.audio.samples import check_rate


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample float32 mono (T,) with soxr (high quality); a no-op when the rates match."""
    check_rate(from_rate)
    check_rate(to_rate)
    if from_rate == to_rate:
        return np.ascontiguousarray(samples, dtype=np.float32)
    return soxr.resample(samples.astype(np.float32, copy=False), from_rate, to_rate, "HQ")


class StreamResampler:
    """Feed pieces with `process`, end with `flush`; each returns the output that became ready."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream = (soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32", quality="HQ")
                        if from_rate != to_rate else None)

    def process(self, samples: np.ndarray) -> np.ndarray:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples)

    def flush(self) -> np.ndarray:
        """The held-back tail; call once at the end of the stream."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        return self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
