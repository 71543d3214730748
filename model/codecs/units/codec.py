"""The unit codec: 16 kHz audio ↔ k-means units at 50 Hz, with encode, decode, save and load.

Encoding maps each frame's assignment features (model/codecs/units/signal.py) to the nearest of K
centroids; decoding renders each unit's log-mel frame (plus the context decoder's corrections,
when fitted) as a magnitude spectrum and recovers a waveform with fast Griffin-Lim. `fit` and
`fit_decoder` hand the features to model/codecs/units/fitting.py. This module must not touch LLMs,
bundles or the server.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from model.codecs.base import SpeechCodec, StreamingSpec
from model.codecs.units.config import UnitCodecConfig
from model.codecs.units.fitting import (
    cluster_means,
    fit_context_decoder,
    fit_kmeans,
    neighbour_rows,
)
from model.codecs.units.signal import Assignment, LogMel, Spectral, stacked_frames, upsample
from model.config_loader import from_data

CODEC_FORMAT = "icot-unit-codec/1"
CONFIG_FILE = "config.json"
CENTROIDS_FILE = "centroids.npy"
DECODER_FILE = "decoder.npy"
MAGNITUDE_EPS = 1e-5  # keeps log-magnitudes finite where a spectrum is exactly zero


# Measured by `python -m bench.codec` (docs/performance.md): with 4 frames of left context and 4 of
# lookahead, chunked decoding stays within 1 % of the one-shot decode's log-mel error; 3 frames of
# lookahead cost 2.4 %, 2 frames 5.5 %. A 2-frame crossfade hides the seams (4 frames is worse:
# the previous chunk rendered them at its open right edge). A 3-frame first chunk gives audio
# after 7 units; 10-frame chunks after that keep the recomputed overlap cheap.
UNIT_STREAMING = StreamingSpec(
    context_frames=4, lookahead_frames=4, crossfade_frames=2, first_chunk_frames=3, chunk_frames=10
)


class UnitCodec(SpeechCodec):
    """16 kHz mono ↔ units in [0, K) at 50 per second, with K learned log-mel centroids.

    centroids: float32 (K, (2c + 1) · mels), c = config.encoder_context: the encoder's features'
        means (`stacked_frames`); the first mels values of each are the frame its unit decodes to.

    decoder: optional context decoder, float32 (2c + 1, K + 1, mels): row [d, u] is the log-mel
        correction a frame receives when the unit d - c frames away is u (row K: past either
        end). Decoding frame t adds the c-neighbourhood's corrections to centroid[unit t].
    """

    decode_only_files = frozenset({DECODER_FILE})

    def __init__(
        self,
        centroids: np.ndarray,
        config: UnitCodecConfig | None = None,
        decoder: np.ndarray | None = None,
    ) -> None:
        config = config or UnitCodecConfig(units=int(np.asarray(centroids).shape[0]))
        centroids = np.asarray(centroids, dtype=np.float32)
        width = (2 * config.encoder_context + 1) * config.mels
        if centroids.shape != (config.units, width):
            raise ValueError(
                f"centroids must have shape (units={config.units}, (2 · encoder_context + 1) · "
                f"mels={width}), got {centroids.shape}"
            )
        if not np.all(np.isfinite(centroids)):
            raise ValueError("centroids contain NaN or infinite values")
        self.config = config
        self.centroids = centroids  # (K, D)
        self.frame_centroids = centroids[:, :config.mels]  # (K, M): what each unit decodes to
        self._assignment = Assignment(config)
        self._assigned_centroids = self._assignment.centroids(centroids)  # (K, d)
        self.decoder = None if decoder is None else _checked_decoder(decoder, config)
        self.sample_rate = config.sample_rate_hz
        self.frame_rate = config.sample_rate_hz // config.hop_samples
        self.vocab_size = config.units
        self.streaming = UNIT_STREAMING
        self._log_mel = LogMel(config)
        self._synthesis = Spectral(config.window_samples, config.synthesis_hop_samples)
        self._centroid_norms = (self._assigned_centroids**2).sum(axis=1)  # (K,)
        self._mel_inverse = np.linalg.pinv(self._log_mel.filterbank).T.astype(np.float32)  # (M, F)
        self._unit_log_magnitude = self._log_magnitude(self.frame_centroids)  # (K, F)
        phase = np.random.default_rng(config.phase_seed).uniform(
            -np.pi, np.pi, self._unit_log_magnitude.shape)
        self._unit_phasor = np.exp(1j * phase).astype(np.complex64)  # (K, F)

    def _log_magnitude(self, log_mel: np.ndarray) -> np.ndarray:
        """Log-mel frames (n, M) → log linear magnitudes (n, F): mel power minus the floor,
        through the filterbank's pseudo-inverse, clipped at ≥ 0."""
        mel_power = np.maximum(np.exp(log_mel) - self.config.power_floor, 0.0)  # (n, M)
        power = np.maximum(mel_power @ self._mel_inverse, 0.0)  # (n, F)
        return (0.5 * np.log(power + MAGNITUDE_EPS**2)).astype(np.float32)

    @classmethod
    def fit(
        cls,
        audio: Sequence[np.ndarray],
        *,
        units: int = 1024,
        seed: int = 0,
        iterations: int = 30,
        progress: bool = True,
        config: UnitCodecConfig | None = None,
    ) -> UnitCodec:
        """Fit K = `units` centroids on the encoder features of `audio` (float32 (T,) clips at
        16 kHz): log-mel frames, stacked with their neighbours when config.encoder_context > 0.
        With config.encoder_cepstra, k-means runs on the low cepstra and each centroid is then
        its cluster's mean stacked log-mel frame."""
        config = replace(config or UnitCodecConfig(), units=units)
        if not audio:
            raise ValueError("fit needs at least one audio clip")
        log_mel, assignment = LogMel(config), Assignment(config)
        mels = [log_mel(_checked(clip)) for clip in audio]
        points = np.concatenate([assignment.features(frames) for frames in mels])  # (n, d)
        centroids = fit_kmeans(points, units, seed=seed, iterations=iterations, progress=progress)
        if assignment.basis is not None:
            stacked = np.concatenate([stacked_frames(frames, config.encoder_context)
                                      for frames in mels])  # (n, D)
            centroids = cluster_means(stacked, points, centroids)
        return cls(centroids, config)

    def fit_decoder(
        self, audio: Sequence[np.ndarray], *, context: int = 1, ridge: float = 3.0
    ) -> UnitCodec:
        """This codec plus a context decoder fitted on `audio` (float32 (T,) clips at 16 kHz).

        Ridge regression of each frame's true log-mel minus its unit's centroid on one-hot
        codes of the units `context` frames either side: a few hundred clips of the voice the
        codec will speak in teach it how that voice moves between units. The ridge pulls rows
        of units the clips never use to zero, leaving them their plain centroids. Encoding is
        unchanged. Measured on held-out assistant-voice sentences (docs/codecs.md).
        """
        if context < 0 or ridge <= 0:
            raise ValueError(f"context must be ≥ 0 and ridge > 0, got {context} and {ridge}")
        if not audio:
            raise ValueError("fit_decoder needs at least one audio clip")
        clips = ((frames, self._nearest_units(frames))  # log-mel analysed once per clip
                 for frames in map(self.log_mel, audio))
        decoder = fit_context_decoder(clips, self.frame_centroids, context=context, ridge=ridge)
        return UnitCodec(self.centroids, self.config, decoder)

    def frame_log_mel(self, units: np.ndarray) -> np.ndarray:
        """The log-mel frames decoding renders for int units (N,): (N, M)."""
        return self._rendered_log_mel(self.check_units(units))

    def _rendered_log_mel(self, units: np.ndarray) -> np.ndarray:
        """`frame_log_mel` for units already checked: (N,) int64 → (N, M)."""
        if self.decoder is None:
            return self.frame_centroids[units]
        context = self.decoder.shape[0] // 2
        active = neighbour_rows(units, context, self.vocab_size)  # (N, W)
        flat = self.decoder.reshape(-1, self.config.mels)  # (W·R, M)
        return self.frame_centroids[units] + flat[active].sum(axis=1)

    def log_mel(self, samples: np.ndarray) -> np.ndarray:
        """The features the units quantize: float32 (T,) → log-mel (ceil(T / 320), mels)."""
        return self._log_mel(_checked(samples))

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """float32 (T,) at 16 kHz → int64 units (ceil(T / 320),): the nearest centroid per frame."""
        samples = _checked(samples)
        if samples.size == 0:
            return np.zeros(0, dtype=np.int64)
        return self._nearest_units(self._log_mel(samples))

    def _nearest_units(self, log_mel: np.ndarray) -> np.ndarray:
        """Log-mel frames (N, M) → int64 units (N,): each frame's assignment features' nearest
        centroid."""
        if log_mel.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        features = self._assignment.features(log_mel)  # (N, d)
        scores = self._centroid_norms[None, :] - 2.0 * (features @ self._assigned_centroids.T)
        return scores.argmin(axis=1).astype(np.int64)

    def decode(self, units: np.ndarray) -> np.ndarray:
        """int units (N,) → float32 (N * 320,) at 16 kHz."""
        units = self.check_units(units)
        if units.size == 0:
            return np.zeros(0, dtype=np.float32)
        factor = self.config.hop_samples // self.config.synthesis_hop_samples
        frames = (self._unit_log_magnitude[units] if self.decoder is None
                  else self._log_magnitude(self._rendered_log_mel(units)))  # (N, F)
        log_magnitude = upsample(frames, factor)  # (N * R, F)
        phasor = np.repeat(self._unit_phasor[units], factor, axis=0)  # (N * R, F)
        wav = self._synthesis.griffin_lim(
            np.exp(log_magnitude), phasor, self.config.griffin_lim_iterations,
            self.config.griffin_lim_momentum,
        )
        return np.clip(wav, -1.0, 1.0)

    def save(self, directory: Path) -> None:
        """Write config.json, centroids.npy and (if fitted) decoder.npy into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        document = {"format": CODEC_FORMAT, **asdict(self.config)}
        (directory / CONFIG_FILE).write_text(json.dumps(document, indent=2) + "\n")
        np.save(directory / CENTROIDS_FILE, self.centroids, allow_pickle=False)
        decoder_path = directory / DECODER_FILE
        if self.decoder is not None:
            np.save(decoder_path, self.decoder, allow_pickle=False)
        elif decoder_path.exists():
            decoder_path.unlink()  # a stale decoder would not match these centroids

    @classmethod
    def load(cls, directory: Path) -> UnitCodec:
        """Read a codec written by `save`; a missing or malformed file is an error naming it."""
        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        centroids_path = directory / CENTROIDS_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"unit codec config missing: {config_path}")
        try:
            document = json.loads(config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{config_path} is not valid JSON: {exc}") from exc
        if not isinstance(document, dict) or document.pop("format", None) != CODEC_FORMAT:
            raise ValueError(f"{config_path}: field 'format' must be {CODEC_FORMAT!r}")
        config = from_data(UnitCodecConfig, document, source=str(config_path))  # a ValueError
        if not centroids_path.is_file():
            raise FileNotFoundError(f"unit codec centroids missing: {centroids_path}")
        centroids = _load_array(centroids_path)
        decoder_path = directory / DECODER_FILE
        decoder = _load_array(decoder_path) if decoder_path.is_file() else None
        if decoder is not None:
            try:
                decoder = _checked_decoder(decoder, config)
            except ValueError as exc:
                raise ValueError(f"{decoder_path}: {exc}") from exc
        try:
            return cls(centroids, config, decoder)
        except ValueError as exc:
            raise ValueError(f"{centroids_path}: {exc}") from exc


def _load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path} is not a .npy array: {exc}") from exc


def _checked_decoder(decoder: np.ndarray, config: UnitCodecConfig) -> np.ndarray:
    decoder = np.asarray(decoder, dtype=np.float32)
    if (decoder.ndim != 3 or decoder.shape[0] % 2 != 1
            or decoder.shape[1:] != (config.units + 1, config.mels)):
        raise ValueError(f"decoder must have shape (2c + 1, units + 1 = {config.units + 1}, "
                         f"mels = {config.mels}), got {decoder.shape}")
    if not np.all(np.isfinite(decoder)):
        raise ValueError("decoder contains NaN or infinite values")
    return decoder


def _checked(samples: np.ndarray) -> np.ndarray:
    """Mono float32 (T,) with finite values; empty input stays empty."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples of shape (T,), got shape {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise ValueError("samples contain NaN or infinite values")
    return samples
