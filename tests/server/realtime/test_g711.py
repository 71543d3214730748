"""G.711 μ-law and A-law companding against the standard library's reference (audioop)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from server.realtime.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the reference G.711 of CPython (deprecated, still in 3.11 and 3.12)

EVERY_PCM16 = np.arange(-32768, 32768, dtype=np.int16)
EVERY_BYTE = bytes(range(256))


@pytest.mark.parametrize(("encode", "reference"), [(ulaw_encode, audioop.lin2ulaw),
                                                   (alaw_encode, audioop.lin2alaw)])
def test_every_pcm16_value_encodes_as_the_reference_does(encode, reference):
    assert encode(EVERY_PCM16) == reference(EVERY_PCM16.tobytes(), 2)


@pytest.mark.parametrize(("decode", "reference"), [(ulaw_decode, audioop.ulaw2lin),
                                                   (alaw_decode, audioop.alaw2lin)])
def test_every_byte_decodes_as_the_reference_does(decode, reference):
    expected = np.frombuffer(reference(EVERY_BYTE, 2), dtype=np.int16)
    np.testing.assert_array_equal(decode(EVERY_BYTE), expected)


@pytest.mark.parametrize(("encode", "decode"), [(ulaw_encode, ulaw_decode),
                                                (alaw_encode, alaw_decode)])
def test_a_tone_survives_companding_within_its_quantization(encode, decode):
    t = np.arange(8000) / 8000
    tone = (12_000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    back = decode(encode(tone)).astype(np.float64)
    snr_db = 10 * np.log10(np.mean(tone.astype(np.float64) ** 2) / np.mean((back - tone) ** 2))
    assert snr_db > 30  # G.711 keeps ≈ 38 dB SNR on a loud tone


def test_silence_is_the_standard_idle_byte():
    zero = np.zeros(4, dtype=np.int16)
    assert ulaw_encode(zero) == b"\xff" * 4 and alaw_encode(zero) == b"\xd5" * 4
