"""G.711 companding for telephony audio: μ-law (PCMU) and A-law (PCMA) bytes ↔ PCM16 samples.

Each G.711 byte is one 8 kHz sample of 13-bit (A-law) or 14-bit (μ-law) linear audio compressed
into a sign, a 3-bit segment and a 4-bit step (ITU-T G.711). Only the companding lives here; the
8 kHz rate and the conversion to the model's input rate are the caller's (wire_audio.py).
Pure numpy, no state, no I/O.
"""

from __future__ import annotations

import numpy as np

G711_RATE_HZ = 8_000
_ULAW_BIAS = 0x21  # added to the 14-bit magnitude so segment 0 starts at 33
_ULAW_LINEAR_BIAS = _ULAW_BIAS << 2  # the same bias on the 16-bit scale
_ULAW_CLIP = 8_159  # largest 14-bit magnitude μ-law represents
_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def ulaw_encode(pcm16: np.ndarray) -> bytes:
    """PCM16 samples (N,) int16 → N μ-law bytes."""
    x = pcm16.astype(np.int32) >> 2  # (N,) 14-bit
    mask = np.where(x < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(x), _ULAW_CLIP) + _ULAW_BIAS  # (N,) in [33, 8192]
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude)  # (N,) 0..8; 8 means clipped
    value = (np.minimum(segment, 7) << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    value = np.where(segment >= 8, 0x7F, value)
    return ((value ^ mask) & 0xFF).astype(np.uint8).tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    """μ-law bytes → PCM16 samples (N,) int16."""
    b = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    segment = (b >> 4) & 0x07
    magnitude = ((((b & 0x0F) << 3) + _ULAW_LINEAR_BIAS) << segment) - _ULAW_LINEAR_BIAS
    return np.where(b & 0x80, -magnitude, magnitude).astype(np.int16)


def alaw_encode(pcm16: np.ndarray) -> bytes:
    """PCM16 samples (N,) int16 → N A-law bytes."""
    x = pcm16.astype(np.int32) >> 3  # (N,) 13-bit
    mask = np.where(x >= 0, 0xD5, 0x55)
    x = np.where(x >= 0, x, -x - 1)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, x)  # (N,) 0..8; 8 means clipped
    shift = np.where(segment < 2, 1, segment)
    value = (np.minimum(segment, 7) << 4) | ((x >> shift) & 0x0F)
    value = np.where(segment >= 8, 0x7F, value)
    return ((value ^ mask) & 0xFF).astype(np.uint8).tobytes()


def alaw_decode(data: bytes) -> np.ndarray:
    """A-law bytes → PCM16 samples (N,) int16."""
    a = np.frombuffer(data, dtype=np.uint8).astype(np.int32) ^ 0x55
    segment = (a & 0x70) >> 4
    value = (a & 0x0F) << 4
    value = np.where(segment == 0, value + 8, value + 0x108)
    value = np.where(segment > 1, value << np.maximum(segment - 1, 0), value)
    return np.where(a & 0x80, value, -value).astype(np.int16)
