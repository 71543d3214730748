"""`icot codec fit|roundtrip` through icot.main and once through the installed script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from icot import main
from model.audio import read_audio, resample, write_wav
from model.codecs.units import UnitCodec
from training.data.synth import ASSISTANT_VOICE, TRAINING_VOICES, synthesize

ICOT_SCRIPT = Path(sys.executable).parent / "icot"
UNITS = 32


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A nested folder of WAV/FLAC speech at 22.05 and 16 kHz, plus a file to ignore."""
    folder = tmp_path_factory.mktemp("audio")
    (folder / "nested").mkdir()
    texts = ["what is two plus three", "good morning", "the opposite of up is down", "hello"]
    for i, text in enumerate(texts):
        samples = synthesize(text, TRAINING_VOICES[i * 5])
        write_wav(folder / f"clip{i}.wav", samples, 16_000)
        sf.write(folder / "nested" / f"clip{i}.FLAC", resample(samples, 16_000, 22_050), 22_050)
    (folder / "notes.txt").write_text("not audio")
    return folder


@pytest.fixture(scope="module")
def codec_dir(audio_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("codec")
    assert main(["codec", "fit", "--audio", str(audio_dir), "--units", str(UNITS),
                 "--out", str(out), "--seed", "1", "--iterations", "5"]) == 0
    return out


def test_fit_writes_a_loadable_codec(codec_dir: Path, capsys: pytest.CaptureFixture) -> None:
    codec = UnitCodec.load(codec_dir)
    assert codec.vocab_size == UNITS
    assert sorted(p.name for p in codec_dir.iterdir()) == ["centroids.npy", "config.json"]


def test_fit_reads_every_audio_file(audio_dir: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    assert main(["codec", "fit", "--audio", str(audio_dir), "--units", "8",
                 "--out", str(tmp_path / "c"), "--iterations", "2"]) == 0
    assert "on 8 files" in capsys.readouterr().out


def test_fit_with_decoder_audio_adds_a_context_decoder(audio_dir: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    voice = tmp_path / "voice"
    voice.mkdir()
    write_wav(voice / "reply.wav", synthesize("nice to meet you anna", ASSISTANT_VOICE), 16_000)
    assert main(["codec", "fit", "--audio", str(audio_dir), "--units", "8", "--iterations", "2",
                 "--decoder-audio", str(voice), "--decoder-context", "2",
                 "--out", str(tmp_path / "c")]) == 0
    assert "and a context decoder on 1 files" in capsys.readouterr().out
    assert UnitCodec.load(tmp_path / "c").decoder.shape == (5, 9, 80)


def test_fit_with_encoder_context_stacks_neighbouring_frames(audio_dir: Path,
                                                             tmp_path: Path) -> None:
    assert main(["codec", "fit", "--audio", str(audio_dir), "--units", "8", "--iterations", "2",
                 "--encoder-context", "2", "--out", str(tmp_path / "c")]) == 0
    codec = UnitCodec.load(tmp_path / "c")
    assert codec.config.encoder_context == 2
    assert codec.centroids.shape == (8, 5 * 80)


def test_fit_with_encoder_cepstra_keeps_log_mel_centroids(audio_dir: Path,
                                                          tmp_path: Path) -> None:
    assert main(["codec", "fit", "--audio", str(audio_dir), "--units", "8", "--iterations", "2",
                 "--encoder-context", "1", "--encoder-cepstra", "13",
                 "--out", str(tmp_path / "c")]) == 0
    codec = UnitCodec.load(tmp_path / "c")
    assert codec.config.encoder_cepstra == 13
    assert codec.centroids.shape == (8, 3 * 80)


def test_roundtrip_writes_audio_at_the_codec_rate(codec_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    samples = resample(synthesize("what color is the sky", ASSISTANT_VOICE), 16_000, 24_000)
    write_wav(source, samples, 24_000)
    out = tmp_path / "out.wav"
    assert main(["codec", "roundtrip", "--codec", str(codec_dir), str(source), str(out)]) == 0
    decoded, rate = read_audio(out)
    frames = -(-read_audio(source, target_rate=16_000)[0].size // 320)
    assert rate == 16_000 and decoded.size == frames * 320
    assert np.sqrt(np.mean(decoded**2)) > 0.01  # speech came back, not silence


def test_user_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["codec", "fit", "--audio", str(empty), "--out", str(tmp_path / "c")]) == 2
    assert "no .wav, .flac or .ogg files" in capsys.readouterr().err
    assert main(["codec", "fit", "--audio", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "no audio folder" in capsys.readouterr().err
    source = tmp_path / "in.wav"
    write_wav(source, synthesize("hello"), 16_000)
    assert main(["codec", "roundtrip", "--codec", str(empty), str(source),
                 str(tmp_path / "o.wav")]) == 2
    assert "config.json" in capsys.readouterr().err


def test_installed_icot_script_round_trips(codec_dir: Path, tmp_path: Path) -> None:
    assert ICOT_SCRIPT.is_file(), f"icot is not installed at {ICOT_SCRIPT}; pip install -e ."
    source = tmp_path / "in.wav"
    write_wav(source, synthesize("thank you"), 16_000)
    out = tmp_path / "out.wav"
    done = subprocess.run(
        [str(ICOT_SCRIPT), "codec", "roundtrip", "--codec", str(codec_dir), str(source), str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "units" in done.stdout
    assert read_audio(out)[0].size == -(-read_audio(source)[0].size // 320) * 320
