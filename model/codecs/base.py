"""The codec contract: mono audio ↔ a 1-D sequence of discrete units at a fixed frame rate.

Every codec the runtime can load implements `SpeechCodec`. The LLM sees units as the speech
tokens `<🗣️i>`; the streaming decoder (model/codecs/streaming.py, built on this contract and
unknown to it) turns units into PCM as they are generated. Codecs know nothing of LLMs, bundles
or the server.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class StreamingSpec:
    """How a codec's decoder is run chunk by chunk (all counts in frames).

    context_frames: frames of already-emitted units decoded again on the left of each chunk, so
        the non-causal decoder sees the same neighbourhood as in a one-shot decode.
    lookahead_frames: frames that must follow a chunk before it is final; this is the latency the
        streaming decoder adds on top of generation.
    crossfade_frames: the start of each chunk is blended with the previous chunk's decode of the
        same frames (≤ lookahead_frames).
    first_chunk_frames / chunk_frames: how many new frames make the first and later chunks; a
        small first chunk gives audio sooner, larger later chunks cost less compute.
    """

    context_frames: int
    lookahead_frames: int
    crossfade_frames: int
    first_chunk_frames: int
    chunk_frames: int

    def __post_init__(self) -> None:
        if min(self.context_frames, self.lookahead_frames, self.crossfade_frames) < 0:
            raise ValueError("streaming frame counts must be ≥ 0")
        if self.crossfade_frames > self.lookahead_frames:
            raise ValueError("crossfade_frames must not exceed lookahead_frames")
        if self.first_chunk_frames < 1 or self.chunk_frames < 1:
            raise ValueError("chunk sizes must be ≥ 1 frame")
        if self.crossfade_frames > self.chunk_frames:
            raise ValueError("crossfade_frames must not exceed chunk_frames")


class SpeechCodec(ABC):
    """Mono audio at `sample_rate` ↔ units in [0, vocab_size) at `frame_rate` per second."""

    sample_rate: int
    frame_rate: int
    vocab_size: int
    streaming: StreamingSpec
    # Saved files that shape decoding only: units encoded before they changed are still valid.
    decode_only_files: frozenset[str] = frozenset()

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.frame_rate

    @abstractmethod
    def encode(self, samples: np.ndarray) -> np.ndarray:
        """float32 (T,) at `sample_rate` → int64 units (N,), N = ceil(T / samples_per_frame)."""

    def encode_output(self, samples: np.ndarray) -> np.ndarray:
        """Units of speech the model is to say (reply speech in training data): `encode` unless
        a codec hears users with other units than it speaks (model/codecs/heard_units.py)."""
        return self.encode(samples)

    @abstractmethod
    def decode(self, units: np.ndarray) -> np.ndarray:
        """int units (N,) → float32 (N * samples_per_frame,) at `sample_rate`."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the codec's files into `directory` so that `load` reads them back."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path) -> SpeechCodec:
        """Read a codec written by `save` (or shipped in the codec's released format)."""

    def added_latency_ms(self) -> float:
        """Latency the streaming decoder adds before a frame's audio can be emitted."""
        return 1000.0 * self.streaming.lookahead_frames / self.frame_rate

    def check_units(self, units: np.ndarray) -> np.ndarray:
        """Validate units as a 1-D int64 array of ids in [0, vocab_size)."""
        units = np.asarray(units)
        if units.ndim != 1:
            raise ValueError(f"units must be 1-D, got shape {units.shape}")
        if units.size and (units.min() < 0 or units.max() >= self.vocab_size):
            raise ValueError(
                f"units must lie in [0, {self.vocab_size}), got {units.min()}..{units.max()}"
            )
        return units.astype(np.int64, copy=False)
