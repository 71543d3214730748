"""Streaming resampling: pieces of any size give the same audio as one piece, of the right length,
with the tone where it was; equal rates pass audio through untouched."""

from __future__ import annotations

import numpy as np
import pytest

from model.audio import StreamResampler, resample


def _tone(seconds: float, rate: int, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _stream(resampler: StreamResampler, samples: np.ndarray, sizes: list[int]) -> np.ndarray:
    out, start = [], 0
    for size in sizes:
        out.append(resampler.process(samples[start:start + size]))
        start += size
    out.append(resampler.process(samples[start:]))
    out.append(resampler.flush())
    return np.concatenate(out)


@pytest.mark.parametrize(("from_rate", "to_rate"), [(24_000, 16_000), (16_000, 24_000)])
def test_pieces_of_any_size_give_the_one_piece_result(from_rate: int, to_rate: int) -> None:
    tone = _tone(1.0, from_rate, 300.0)
    sizes = [int(n) for n in np.random.default_rng(0).integers(1, 2_000, size=40)]
    whole = _stream(StreamResampler(from_rate, to_rate), tone, [])
    pieces = _stream(StreamResampler(from_rate, to_rate), tone, sizes)
    assert abs(whole.size - to_rate) <= 2  # one second in, one second out
    np.testing.assert_allclose(pieces, whole, atol=1e-5)
    spectrum = np.abs(np.fft.rfft(pieces[:to_rate]))
    assert abs(np.argmax(spectrum) - 300) <= 1  # 1 Hz bins over one second


def test_streamed_audio_matches_the_one_shot_resample() -> None:
    tone = _tone(0.5, 24_000, 440.0)
    streamed = _stream(StreamResampler(24_000, 16_000), tone, [480] * 20)
    one_shot = resample(tone, 24_000, 16_000)
    middle = slice(200, one_shot.size - 200)  # the edges differ by filter warm-up only
    np.testing.assert_allclose(streamed[middle], one_shot[middle], atol=1e-3)


def test_equal_rates_pass_audio_through_untouched() -> None:
    resampler = StreamResampler(16_000, 16_000)
    piece = _tone(0.1, 16_000, 200.0)
    assert np.array_equal(resampler.process(piece), piece)
    assert resampler.flush().size == 0
