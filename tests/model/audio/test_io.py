"""Audio helpers: every way audio can be bad is one AudioError; good audio becomes float32 mono."""

from __future__ import annotations

import io
import subprocess

import numpy as np
import pytest
import soundfile as sf

from model.audio import (
    AudioError,
    check_samples,
    float_to_pcm16,
    pcm16_to_float,
    read_audio,
    resample,
    wav_bytes,
    write_wav,
)


def _tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _encode(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG"])
def test_reads_each_container_as_float32_mono(fmt: str) -> None:
    tone = _tone(0.5, 22_050)
    samples, rate = read_audio(_encode(tone, 22_050, fmt))
    assert rate == 22_050
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size - tone.size) <= 1024  # OGG/Vorbis may pad the last block
    assert np.max(np.abs(samples)) == pytest.approx(0.5, abs=0.05)


def test_stereo_is_averaged_to_mono() -> None:
    left = _tone(0.2, 16_000)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)  # (T, 2)
    samples, _ = read_audio(_encode(stereo, 16_000, "WAV", "FLOAT"))
    np.testing.assert_allclose(samples, left / 2, atol=1e-6)


def test_reads_a_path_and_resamples_to_target_rate(tmp_path) -> None:
    path = tmp_path / "tone.wav"
    write_wav(path, _tone(1.0, 44_100), 44_100)
    samples, rate = read_audio(path, target_rate=16_000)
    assert rate == 16_000
    assert abs(samples.size - 16_000) <= 1


def test_reads_espeak_speech(tmp_path) -> None:
    path = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "what is two plus three"], check=True)
    samples, rate = read_audio(path.read_bytes(), target_rate=16_000)
    assert rate == 16_000 and samples.size > 8_000
    assert np.sqrt(np.mean(samples**2)) > 0.01  # it is speech, not silence


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"this is plainly not audio at all, just some text bytes", "could not decode"),
        (_encode(_tone(0.5, 16_000), 16_000, "WAV")[:30], "could not decode"),  # truncated header
    ],
)
def test_bad_bytes_raise_audio_error(payload: bytes, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        read_audio(payload)


def test_missing_and_empty_files_raise(tmp_path) -> None:
    with pytest.raises(AudioError, match="no audio file"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        read_audio(tmp_path / "empty.wav")


def test_header_with_no_samples_raises() -> None:
    with pytest.raises(AudioError, match="no samples"):
        read_audio(_encode(np.zeros(0, dtype=np.float32), 16_000, "WAV"))


def test_nan_and_inf_samples_raise() -> None:
    tone = _tone(0.1, 16_000)
    tone[10] = np.nan
    with pytest.raises(AudioError, match="NaN or infinite"):
        read_audio(_encode(tone, 16_000, "WAV", "FLOAT"))
    with pytest.raises(AudioError, match="NaN or infinite"):
        check_samples(np.array([0.0, np.inf], dtype=np.float32), 16_000)


@pytest.mark.parametrize("rate", [100, 1_000_000])
def test_absurd_sample_rates_raise(rate: int) -> None:
    with pytest.raises(AudioError, match="sample rate"):
        read_audio(_encode(np.zeros(64, dtype=np.float32), rate, "WAV"))


def test_audio_over_the_length_limit_raises() -> None:
    payload = _encode(_tone(2.0, 16_000), 16_000, "WAV")
    with pytest.raises(AudioError, match="over the limit of 1 s"):
        read_audio(payload, max_seconds=1.0)
    samples, _ = read_audio(payload, max_seconds=2.5)
    assert samples.size == 32_000


def test_pcm16_roundtrip_and_odd_length() -> None:
    tone = _tone(0.05, 24_000)
    back = pcm16_to_float(float_to_pcm16(tone))
    assert np.max(np.abs(back - tone)) <= 1 / 32768 + 1e-7
    assert float_to_pcm16(np.array([2.0, -2.0], dtype=np.float32)) == (
        np.array([32767, -32768], dtype="<i2").tobytes()
    )
    with pytest.raises(AudioError, match="even number of bytes"):
        pcm16_to_float(b"\x00\x01\x02")


def test_resample_24k_to_16k_keeps_a_tone() -> None:
    tone = _tone(1.0, 24_000, freq=300.0)
    down = resample(tone, 24_000, 16_000)
    assert down.size == 16_000
    spectrum = np.abs(np.fft.rfft(down))
    assert abs(np.argmax(spectrum) - 300) <= 1  # 1 Hz bins over one second


def test_wav_bytes_reads_back() -> None:
    tone = _tone(0.25, 24_000)
    samples, rate = read_audio(wav_bytes(tone, 24_000))
    assert rate == 24_000
    np.testing.assert_allclose(samples, tone, atol=1 / 32768 + 1e-6)
