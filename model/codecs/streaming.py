"""Streaming decoding for any `SpeechCodec`: units in as they are generated, PCM chunks out.

Both codecs have non-causal decoders, so a frame's audio depends on its neighbours. A chunk of
frames [a, b) is decoded together with `context_frames` already-emitted frames on its left and
`lookahead_frames` frames on its right; only [a, b) is emitted. The first `crossfade_frames` of
each chunk are blended with the previous chunk's decode of the same frames (which it computed as
lookahead), hiding the seam. Every sample is emitted exactly once, so the concatenated output has
exactly the length of the one-shot decode. The added latency is `lookahead_frames` frames.
`StreamingDecoder(codec)` makes a fresh decoder for one reply. Knows the codec contract only.
"""

from __future__ import annotations

import numpy as np

from model.codecs.base import SpeechCodec


class StreamingDecoder:
    """Feed units with `push`, end with `flush`; both return the PCM that became final."""

    def __init__(self, codec: SpeechCodec) -> None:
        self.codec = codec
        self.spec = codec.streaming
        self._units: list[int] = []
        self._emitted_frames = 0
        self._tail: np.ndarray | None = None  # previous decode of the next chunk's first frames
        self._closed = False

    @property
    def emitted_frames(self) -> int:
        return self._emitted_frames

    def push(self, units: np.ndarray | list[int]) -> list[np.ndarray]:
        """Add generated units; return the chunks (float32 (S,)) that can be emitted now."""
        if self._closed:
            raise RuntimeError("push after flush: start a new streaming decoder")
        self._units.extend(int(u) for u in self.codec.check_units(np.asarray(units).reshape(-1)))
        chunks = []
        while len(self._units) >= self._next_chunk_end() + self.spec.lookahead_frames:
            chunks.append(self._emit(self._next_chunk_end(), final=False))
        return chunks

    def emits_after(self, n_units: int) -> bool:
        """Whether pushing `n_units` more units emits a chunk (runs the codec's decode): a
        caller can push the others on its own thread, where a hand-off would cost more than
        the push."""
        return len(self._units) + n_units >= self._next_chunk_end() + self.spec.lookahead_frames

    def _next_chunk_end(self) -> int:
        """The frame the next chunk ends at (the first chunk is `first_chunk_frames` long)."""
        first = self._emitted_frames == 0
        return self._emitted_frames + (
            self.spec.first_chunk_frames if first else self.spec.chunk_frames
        )

    def flush(self) -> np.ndarray:
        """Emit everything not yet emitted (no lookahead is left to wait for) and close."""
        self._closed = True
        if self._emitted_frames >= len(self._units):
            return np.zeros(0, dtype=np.float32)
        return self._emit(len(self._units), final=True)

    def _emit(self, end: int, *, final: bool) -> np.ndarray:
        hop = self.codec.samples_per_frame
        start = self._emitted_frames
        window_start = max(0, start - self.spec.context_frames)
        window_end = len(self._units) if final else end + self.spec.lookahead_frames
        window = np.asarray(self._units[window_start:window_end], dtype=np.int64)
        wav = self.codec.decode(window)  # (frames_in_window * hop,)
        chunk = wav[(start - window_start) * hop:(end - window_start) * hop].copy()
        if self._tail is not None:
            chunk[: self._tail.size] = _crossfade(self._tail, chunk[: self._tail.size])
        crossfade_samples = 0 if final else self.spec.crossfade_frames * hop
        tail_start = (end - window_start) * hop
        tail = wav[tail_start:tail_start + crossfade_samples]
        self._tail = tail.copy() if crossfade_samples else None
        self._emitted_frames = end
        return chunk


def _crossfade(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Blend two renderings of the same samples with a raised-cosine fade (S,) → (S,).

    The gains sum to 1 at every sample: the renderings are nearly identical (correlated), so an
    equal-power fade (sin/cos gains) would boost the overlap by up to √2 (+3 dB).
    """
    n = min(previous.size, current.size)
    t = (np.arange(n, dtype=np.float32) + 0.5) / max(n, 1)
    fade_in = (np.sin(0.5 * np.pi * t) ** 2).astype(np.float32)
    return previous[:n] * (1.0 - fade_in) + current[:n] * fade_in
