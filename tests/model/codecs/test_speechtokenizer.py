"""SpeechTokenizerCodec on small random models saved in the released format: files, shapes, errors,
the acoustic-model seam, and streaming decoding against the one-shot decode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.audio import AudioError
from model.codecs import StreamingDecoder, load_codec
from model.codecs.speechtokenizer import (
    CHECKPOINT_NAMES,
    SpeechTokenizerCodec,
    SpeechTokenizerConfig,
)

RATE_HZ = 16_000
HOP = 320


def _snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    error = np.sum((reference - estimate) ** 2)
    return float(10 * np.log10(np.sum(reference**2) / max(error, 1e-30)))


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    """Noise with a random level per 20 ms frame (T,): enough variety for many distinct units."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE_HZ)
    gain = np.repeat(np.exp(rng.standard_normal(-(-n // HOP))), HOP)[:n]
    return (0.1 * gain * rng.standard_normal(n)).astype(np.float32)


def _stream(codec: SpeechTokenizerCodec, units: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    decoder = StreamingDecoder(codec)
    chunks, start = [], 0
    for size in sizes:
        chunks += decoder.push(units[start:start + size])
        start += size
    assert start == units.size
    return [*chunks, decoder.flush()]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def codec() -> SpeechTokenizerCodec:
    return SpeechTokenizerCodec.random(seed=0)


@pytest.fixture(scope="module")
def units(codec: SpeechTokenizerCodec) -> np.ndarray:
    return codec.encode(_speechlike(3.0, seed=1))  # (150,)


# ---- released format ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checkpoint_name", "activation"),
    [("SpeechTokenizer.pt", "ELU"), ("ckpt.dev", "Snake")],  # fnlp/SpeechTokenizer, AnyGPT
)
def test_released_layout_round_trips(tmp_path: Path, checkpoint_name: str, activation: str) -> None:
    original = SpeechTokenizerCodec.random(seed=3, activation=activation)
    original.save(tmp_path, checkpoint_name=checkpoint_name)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["config.json", checkpoint_name])
    assert json.loads((tmp_path / "config.json").read_text())["activation"] == activation

    for loaded in (SpeechTokenizerCodec.load(tmp_path), load_codec("speechtokenizer", tmp_path)):
        assert isinstance(loaded, SpeechTokenizerCodec)
        assert loaded.config == original.config
        assert loaded.checkpoint_name == checkpoint_name
        audio = _speechlike(1.0, seed=4)
        np.testing.assert_array_equal(loaded.encode(audio), original.encode(audio))
        units = original.encode(audio)
        np.testing.assert_array_equal(loaded.decode(units), original.decode(units))


@pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")
def test_saved_files_load_with_the_package_itself(tmp_path: Path, codec: SpeechTokenizerCodec,
                                                   units: np.ndarray) -> None:
    from speechtokenizer import SpeechTokenizer

    codec.save(tmp_path)
    model = SpeechTokenizer.load_from_checkpoint(str(tmp_path / "config.json"),
                                                 str(tmp_path / "SpeechTokenizer.pt")).eval()
    with torch.inference_mode():
        wav = model.decode(torch.from_numpy(units).view(1, 1, -1))  # (1, 1, N * 320)
    np.testing.assert_array_equal(wav[0, 0].numpy(), codec.decode(units))


def test_extra_config_keys_survive_a_round_trip(tmp_path: Path,
                                                codec: SpeechTokenizerCodec) -> None:
    codec.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(segment_size=48000, sampling_rate=16000)  # training keys of a released config
    (tmp_path / "config.json").write_text(json.dumps(config))
    SpeechTokenizerCodec.load(tmp_path).save(tmp_path / "again")
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert again["segment_size"] == 48000 and again["sampling_rate"] == 16000


def test_released_config_has_the_documented_architecture() -> None:
    config = SpeechTokenizerConfig.released().to_dict()
    assert config | {"n_filters": 64, "strides": [8, 5, 4, 2], "dimension": 1024,
                     "semantic_dimension": 768, "bidirectional": True, "lstm_layers": 2,
                     "codebook_size": 1024, "n_q": 8, "activation": "ELU"} == config


@pytest.mark.slow
def test_released_size_has_104m_parameters() -> None:
    codec = SpeechTokenizerCodec.random(SpeechTokenizerConfig.released())
    n_params = sum(p.numel() for p in codec.model.parameters())
    assert 103e6 < n_params < 105e6  # measured 103,675,586


# ---- errors ------------------------------------------------------------------------------------


def test_missing_checkpoint_names_the_expected_files(tmp_path: Path,
                                                     codec: SpeechTokenizerCodec) -> None:
    codec.save(tmp_path)
    (tmp_path / "SpeechTokenizer.pt").rename(tmp_path / "model.bin")
    with pytest.raises(FileNotFoundError) as info:
        SpeechTokenizerCodec.load(tmp_path)
    for name in (*CHECKPOINT_NAMES, "model.bin", str(tmp_path)):
        assert name in str(info.value)


def test_missing_config_names_the_file(tmp_path: Path, codec: SpeechTokenizerCodec) -> None:
    codec.save(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json"):
        SpeechTokenizerCodec.load(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"n_filters": 4}', "missing key"),
    ],
)
def test_unreadable_config_is_a_clear_error(tmp_path: Path, codec: SpeechTokenizerCodec,
                                            content: str, message: str) -> None:
    codec.save(tmp_path)
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        SpeechTokenizerCodec.load(tmp_path)
    assert str(tmp_path / "config.json") in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("strides", [8, 5, 4], "strides must multiply to 320"),
        ("strides", [8, 5, 4, 2.0], "strides must be integers"),
        ("activation", "NoSuchActivation", "activation must be"),
        ("codebook_size", 0, "codebook_size must be an integer"),
        ("sample_rate", 24000, "sample_rate must be 16000"),
    ],
)
def test_invalid_config_value_names_key_and_file(tmp_path: Path, codec: SpeechTokenizerCodec,
                                                 key: str, value: object, message: str) -> None:
    codec.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config | {key: value}))
    with pytest.raises(ValueError, match=message) as info:
        SpeechTokenizerCodec.load(tmp_path)
    assert "config.json" in str(info.value)


@pytest.mark.parametrize("damage", ["garbage", "other_size"])
def test_unloadable_checkpoint_names_the_file(tmp_path: Path, codec: SpeechTokenizerCodec,
                                              damage: str) -> None:
    codec.save(tmp_path)
    if damage == "garbage":
        (tmp_path / "SpeechTokenizer.pt").write_bytes(b"not a checkpoint")
    else:  # weights of another architecture beside this config
        SpeechTokenizerCodec.random(n_filters=8).save(tmp_path / "other")
        (tmp_path / "other" / "SpeechTokenizer.pt").replace(tmp_path / "SpeechTokenizer.pt")
    with pytest.raises(ValueError, match="could not load the SpeechTokenizer checkpoint") as info:
        SpeechTokenizerCodec.load(tmp_path)
    assert str(tmp_path / "SpeechTokenizer.pt") in str(info.value)


def test_bad_input_is_rejected(codec: SpeechTokenizerCodec) -> None:
    with pytest.raises(AudioError):
        codec.encode(np.zeros(0, dtype=np.float32))
    with pytest.raises(AudioError):
        codec.encode(np.full(400, np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match=r"units must lie in \[0, 1024\)"):
        codec.decode(np.array([0, 1024]))
    with pytest.raises(ValueError, match="checkpoint_name"):
        codec.save(Path("unused"), checkpoint_name="model.bin")


# ---- the codec contract ------------------------------------------------------------------------


def test_rates_and_vocabulary(codec: SpeechTokenizerCodec) -> None:
    assert (codec.sample_rate, codec.frame_rate, codec.samples_per_frame) == (16000, 50, 320)
    assert codec.vocab_size == 1024
    assert SpeechTokenizerCodec.random(codebook_size=64).vocab_size == 64


@pytest.mark.parametrize("n_samples", [1, 319, 320, 321, 16_000, 16_001, 48_000 - 7])
def test_encode_gives_one_unit_per_started_frame(codec: SpeechTokenizerCodec,
                                                 n_samples: int) -> None:
    units = codec.encode(_speechlike(n_samples / RATE_HZ, seed=n_samples))
    assert units.shape == (-(-n_samples // HOP),)
    assert units.dtype == np.int64


def test_units_lie_in_the_codebook_and_follow_the_audio(codec: SpeechTokenizerCodec,
                                                         units: np.ndarray) -> None:
    assert units.min() >= 0 and units.max() < codec.vocab_size
    assert np.unique(units).size > 20  # measured 96 distinct units in 150 frames
    small = SpeechTokenizerCodec.random(codebook_size=64).encode(_speechlike(3.0, seed=1))
    assert small.max() < 64
    other = codec.encode(_speechlike(3.0, seed=2))
    assert np.mean(other != units) > 0.5


@pytest.mark.parametrize("n_frames", [0, 1, 2, 7, 150])
def test_decode_gives_320_samples_per_unit(codec: SpeechTokenizerCodec, units: np.ndarray,
                                           n_frames: int) -> None:
    audio = codec.decode(units[:n_frames])
    assert audio.shape == (n_frames * HOP,) and audio.dtype == np.float32
    assert np.all(np.isfinite(audio))


def test_decoded_audio_depends_on_the_units(codec: SpeechTokenizerCodec,
                                            units: np.ndarray) -> None:
    audio = codec.decode(units)
    assert 0.02 < np.sqrt(np.mean(audio**2)) < 0.5  # random models are calibrated to ≈ 0.1 RMS
    other = codec.decode(np.random.default_rng(0).integers(0, codec.vocab_size, units.size))
    assert _snr_db(audio, other) < 1.0  # measured -3.5 dB: unrelated audio, not a fixed waveform


def test_random_is_reproducible_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = SpeechTokenizerCodec.random(seed=5).model.state_dict()
    assert torch.equal(torch.rand(3), expected_next)
    b = SpeechTokenizerCodec.random(seed=5).model.state_dict()
    c = SpeechTokenizerCodec.random(seed=6).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


# ---- the acoustic-model seam -------------------------------------------------------------------


def test_acoustic_model_supplies_the_further_rvq_layers(codec: SpeechTokenizerCodec) -> None:
    audio = _speechlike(1.0, seed=7)
    with torch.inference_mode():
        all_codes = codec.model.encode(torch.from_numpy(audio).view(1, 1, -1))  # (8, 1, 50)
        expected = codec.model.decode(all_codes)[0, 0].numpy()
    semantic = all_codes[0, 0].numpy()
    seen = []

    def oracle(semantic_units: torch.Tensor) -> torch.Tensor:  # (1, B, N) → (n_q, B, N)
        seen.append(tuple(semantic_units.shape))
        return all_codes

    full = SpeechTokenizerCodec(codec.model, codec.config, acoustic_model=oracle)
    np.testing.assert_allclose(full.decode(semantic), expected, atol=1e-6)
    assert seen == [(1, 1, 50)]
    # Layer 1 alone renders differently (measured 26.7 dB SNR against all 8 layers).
    assert _snr_db(expected, codec.decode(semantic)) < 40


@pytest.mark.parametrize(
    ("bad_codes", "message"),
    [
        (lambda s: s[0], "must return codes of shape"),
        (lambda s: s.repeat(9, 1, 1), "must return codes of shape"),
        (lambda s: torch.cat([(s + 1) % 1024, s]), "keep the semantic units"),
    ],
)
def test_acoustic_model_output_is_checked(codec: SpeechTokenizerCodec, units: np.ndarray,
                                          bad_codes, message: str) -> None:
    broken = SpeechTokenizerCodec(codec.model, codec.config, acoustic_model=bad_codes)
    with pytest.raises(ValueError, match=message):
        broken.decode(units[:10])


# ---- streaming ---------------------------------------------------------------------------------


def test_streaming_matches_the_one_shot_decode(codec: SpeechTokenizerCodec,
                                               units: np.ndarray) -> None:
    one_shot = codec.decode(units)
    streamed = np.concatenate(_stream(codec, units, [1] * units.size))
    assert streamed.shape == one_shot.shape
    # Measured: SNR 90.2 dB, max error 4.8e-5 of the peak (16 frames of context, 4 of lookahead).
    assert _snr_db(one_shot, streamed) > 80.0
    assert np.max(np.abs(streamed - one_shot)) < 1e-3 * np.max(np.abs(one_shot))


def test_push_pattern_does_not_change_the_output(codec: SpeechTokenizerCodec,
                                                 units: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    random_sizes: list[int] = []
    while sum(random_sizes) < units.size:
        random_sizes.append(int(min(rng.integers(1, 25), units.size - sum(random_sizes))))
    one_at_a_time = np.concatenate(_stream(codec, units, [1] * units.size))
    for sizes in (random_sizes, [units.size]):
        output = np.concatenate(_stream(codec, units, sizes))
        assert output.shape == (units.size * HOP,)
        np.testing.assert_allclose(output, one_at_a_time, atol=1e-6)


def test_first_audio_waits_for_first_chunk_plus_lookahead(codec: SpeechTokenizerCodec,
                                                          units: np.ndarray) -> None:
    spec = codec.streaming
    decoder = StreamingDecoder(codec)
    needed = spec.first_chunk_frames + spec.lookahead_frames
    assert decoder.push(units[: needed - 1]) == []
    (first,) = decoder.push(units[needed - 1: needed])
    assert first.shape == (spec.first_chunk_frames * HOP,)
    assert codec.added_latency_ms() == 80.0


def test_crossfade_keeps_the_level_of_identical_renderings() -> None:
    """Regression for the streaming decoder's fade: equal-power gains boosted by up to √2."""
    from model.codecs.streaming import _crossfade

    signal = np.linspace(-1, 1, 640, dtype=np.float32)
    np.testing.assert_allclose(_crossfade(signal, signal), signal, atol=1e-6)
