"""Audio on the wire ↔ PCM16: pass PCM16 through, expand or compress G.711 (μ-law, A-law).

The session's input path and the response runner work in PCM16 at the wire rate; this module is
the one place that knows a wire format may be G.711 at 8 kHz (server/realtime/g711.py does the
companding). Pure functions over bytes; no state.
"""

from __future__ import annotations

import numpy as np

from server.errors import ErrorCode, ProtocolError
from server.realtime.client_events import AudioFormat
from server.realtime.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

_DECODE = {"audio/pcmu": ulaw_decode, "audio/pcma": alaw_decode}
_ENCODE = {"audio/pcmu": ulaw_encode, "audio/pcma": alaw_encode}


def to_pcm16(data: bytes, fmt: AudioFormat) -> bytes:
    """Wire audio in `fmt` → PCM16 little-endian at `fmt.rate`; PCM16 must be whole samples."""
    decode = _DECODE.get(fmt.type)
    if decode is not None:
        return decode(data).astype("<i2").tobytes()
    if len(data) % 2:
        raise ProtocolError(ErrorCode.INVALID_AUDIO,
                            f"PCM16 audio needs an even number of bytes, got {len(data)}",
                            param="audio")
    return data


def from_pcm16(pcm: bytes, fmt: AudioFormat) -> bytes:
    """PCM16 little-endian at `fmt.rate` → wire audio in `fmt`."""
    encode = _ENCODE.get(fmt.type)
    if encode is None:
        return pcm
    return encode(np.frombuffer(pcm, dtype="<i2"))
