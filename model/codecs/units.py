"""The embedded demo codec: 16 kHz log-mel frames at 50 Hz ↔ k-means units, Griffin-Lim decoding.

Encoding maps each 20 ms frame's log-mel spectrum — stacked with `encoder_context` frames either
side, so that a unit describes a frame in its phonetic context — to its nearest of K centroids
(k-means fitted on our own audio with `UnitCodec.fit`); with `encoder_cepstra` the distances are
taken between the frames' low cepstral coefficients, which keep the spectral envelope and drop the
pitch harmonics that tell one voice from another. Decoding turns each frame's unit back into
a log-mel frame — the centre frame of its centroid, plus, when a context decoder is fitted
(`fit_decoder`, on the voice the codec will speak in), corrections looked up from the unit and its
neighbours — then into a linear magnitude spectrum (mel pseudo-inverse), interpolates it to a
10 ms synthesis hop and recovers a waveform with fast Griffin-Lim (momentum). Numpy and scipy.fft
only (scipy's float32 FFTs run several times faster than numpy's here). This module must not
touch LLMs, bundles or the server. See docs/codecs.md for the design and measured quality.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.linalg

from model.codecs.base import SpeechCodec, StreamingSpec

CODEC_FORMAT = "icot-unit-codec/1"
CONFIG_FILE = "config.json"
CENTROIDS_FILE = "centroids.npy"
DECODER_FILE = "decoder.npy"
DISTANCE_CHUNK_FRAMES = 8192  # frames per distance block in k-means: (8192, K) float32 at a time
MAGNITUDE_EPS = 1e-5  # keeps log-magnitudes finite where a spectrum is exactly zero

# Measured by `python -m bench.codec` (docs/performance.md): with 4 frames of left context and 4 of
# lookahead, chunked decoding stays within 1 % of the one-shot decode's log-mel error; 3 frames of
# lookahead cost 2.4 %, 2 frames 5.5 %. A 2-frame crossfade hides the seams (4 frames is worse:
# the previous chunk rendered them at its open right edge). A 3-frame first chunk gives audio
# after 7 units; 10-frame chunks after that keep the recomputed overlap cheap.
UNIT_STREAMING = StreamingSpec(
    context_frames=4, lookahead_frames=4, crossfade_frames=2, first_chunk_frames=3, chunk_frames=10
)


@dataclass(frozen=True)
class UnitCodecConfig:
    """Everything that fixes the unit codec's analysis and synthesis, saved beside the centroids.

    units: K, the number of k-means centroids (the speech vocabulary size).
    sample_rate_hz / hop_samples: 16 kHz audio, one unit per 320 samples (50 units per second).
    window_samples: Hann window and FFT size of analysis and synthesis (640 = 40 ms).
    mels: triangular mel bands between 0 Hz and Nyquist.
    power_floor: added to mel power before the log (and taken off again on decode), so that near
        silence does not spend centroids on differences nobody hears.
    synthesis_hop_samples: Griffin-Lim hop (160 = 75 % overlap); magnitudes are interpolated from
        the 50 Hz units, because Griffin-Lim needs that redundancy to find consistent phases.
    griffin_lim_iterations / griffin_lim_momentum: fast Griffin-Lim (Perraudin et al. 2013); on
        held-out speech 16 iterations were as intelligible as 32 or 64, at half the time of 32.
    phase_seed: seeds the per-unit initial phases, so decoding is a pure function of the units
        and overlapping streaming windows start from the same phases.
    encoder_context: log-mel frames either side stacked into each encoded frame's features (the
        clip's edge frames repeated past its ends); centroids then have (2c + 1) · mels values,
        the centre frame's first. With 2, units told utterances by other voices apart far better
        than single-frame units (docs/codecs.md, "Encoder context").
    encoder_cepstra: 0, or n > 0 to assign units by the first n DCT-II coefficients of each
        log-mel frame (its smoothed envelope) instead of all mels values. The centroids stay
        log-mel means, so decoding is unchanged; with 13, units told other voices' utterances
        apart better still (docs/codecs.md, "Cepstral assignment").
    """

    units: int = 1024
    sample_rate_hz: int = 16_000
    hop_samples: int = 320
    window_samples: int = 640
    mels: int = 80
    power_floor: float = 0.01
    synthesis_hop_samples: int = 160
    griffin_lim_iterations: int = 16
    griffin_lim_momentum: float = 0.99
    phase_seed: int = 0
    encoder_context: int = 0
    encoder_cepstra: int = 0

    def __post_init__(self) -> None:
        if self.units < 2:
            raise ValueError(f"units must be ≥ 2, got {self.units}")
        if self.sample_rate_hz % self.hop_samples:
            raise ValueError("hop_samples must divide sample_rate_hz (an integer frame rate)")
        if self.hop_samples % self.synthesis_hop_samples:
            raise ValueError("synthesis_hop_samples must divide hop_samples")
        window = self.window_samples
        if window % self.synthesis_hop_samples or window < self.hop_samples:
            raise ValueError(
                "window_samples must be a multiple of synthesis_hop_samples and ≥ hop_samples"
            )
        if (self.window_samples - self.hop_samples) % 2:
            raise ValueError("window_samples - hop_samples must be even (frames are centred)")
        if not 1 <= self.mels <= self.window_samples // 2:
            raise ValueError(f"mels must lie in 1..{self.window_samples // 2}, got {self.mels}")
        if self.power_floor <= 0:
            raise ValueError(f"power_floor must be > 0, got {self.power_floor}")
        if self.encoder_context < 0:
            raise ValueError(f"encoder_context must be ≥ 0, got {self.encoder_context}")
        if not 0 <= self.encoder_cepstra <= self.mels:
            raise ValueError(
                f"encoder_cepstra must lie in 0..mels={self.mels}, got {self.encoder_cepstra}")
        if self.griffin_lim_iterations < 1:
            raise ValueError("griffin_lim_iterations must be ≥ 1")
        if not 0.0 <= self.griffin_lim_momentum < 1.0:
            raise ValueError("griffin_lim_momentum must lie in [0, 1)")


def mel_filterbank(config: UnitCodecConfig) -> np.ndarray:
    """Triangular filters on the HTK mel scale, 0 Hz to Nyquist: (mels, window_samples//2 + 1)."""
    def hz_to_mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def mel_to_hz(mel: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    nyquist_hz = config.sample_rate_hz / 2
    bin_hz = np.linspace(0.0, nyquist_hz, config.window_samples // 2 + 1)  # (F,)
    edges_hz = mel_to_hz(np.linspace(0.0, hz_to_mel(np.array(nyquist_hz)), config.mels + 2))
    low, centre, high = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]  # (M, 1)
    rising = (bin_hz - low) / (centre - low)
    falling = (high - bin_hz) / (high - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)  # (M, F)


class _Spectral:
    """Framing, STFT and overlap-add for frames centred at (t + ½)·hop, t = 0 … N−1.

    Frame t covers the samples of its own hop plus (window − hop)/2 on each side, so unit t of the
    encoder and frame t of the decoder describe the same 20 ms of audio.
    """

    def __init__(self, window_samples: int, hop_samples: int) -> None:
        self.window = window_samples
        self.hop = hop_samples
        self.left_pad = (window_samples - hop_samples) // 2
        self.hann = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window_samples) / window_samples)
                     ).astype(np.float32)  # (W,) periodic Hann

    def stft(self, samples: np.ndarray, frames: int) -> np.ndarray:
        """(T,) → complex64 (frames, W//2 + 1); samples beyond the frames are ignored."""
        padded = np.zeros(self.left_pad + frames * self.hop + self.window, dtype=np.float32)
        count = min(samples.size, frames * self.hop)
        padded[self.left_pad:self.left_pad + count] = samples[:count]
        strided = np.lib.stride_tricks.sliding_window_view(padded, self.window)[::self.hop]
        return scipy.fft.rfft(strided[:frames] * self.hann, axis=1)  # (N, F)

    def istft(self, spectrum: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
        """complex (N, F) → float32 (N * hop,): windowed overlap-add over the summed window².

        `weight` is `window_weight(N)`, passed in by loops that invert many spectra of one size.
        """
        frames = spectrum.shape[0]
        pieces = scipy.fft.irfft(spectrum, n=self.window, axis=1).astype(np.float32)  # (N, W)
        signal = self._overlap_add(pieces * self.hann)
        weight = self.window_weight(frames) if weight is None else weight
        return signal[self.left_pad:self.left_pad + frames * self.hop] / weight

    def window_weight(self, frames: int) -> np.ndarray:
        """Σ window² of the frames covering each of the N * hop output samples (kept ≥ 1e-3)."""
        weight = self._overlap_add(np.broadcast_to(self.hann**2, (frames, self.window)))
        return np.maximum(weight[self.left_pad:self.left_pad + frames * self.hop], 1e-3)

    def griffin_lim(
        self, magnitude: np.ndarray, phase: np.ndarray, iterations: int, momentum: float
    ) -> np.ndarray:
        """Fast Griffin-Lim: a waveform (N * hop,) whose STFT magnitude approaches (N, F).

        `phase` holds unit phasors (N, F) to start from. Each iteration keeps the target magnitude,
        projects onto consistent spectrograms (STFT of the inverse STFT) and extrapolates by
        `momentum` times the last step, which converges far faster than plain Griffin-Lim.
        """
        frames = magnitude.shape[0]
        weight = self.window_weight(frames)
        spectrum = magnitude * phase  # (N, F)
        previous: np.ndarray | None = None
        for _ in range(iterations):
            consistent = self.stft(self.istft(spectrum, weight), frames)  # (N, F)
            accelerated = consistent if previous is None else (
                consistent + momentum * (consistent - previous))
            previous = consistent
            spectrum = magnitude * accelerated / np.maximum(np.abs(accelerated), 1e-8)
        return self.istft(spectrum, weight)

    def _overlap_add(self, pieces: np.ndarray) -> np.ndarray:
        """(N, W) frames → ((N + W/hop − 1) * hop,), frame t starting at sample t * hop."""
        frames, overlap = pieces.shape[0], self.window // self.hop
        blocks = pieces.reshape(frames, overlap, self.hop)  # (N, R, hop)
        out = np.zeros((frames + overlap - 1) * self.hop, dtype=np.float32)
        for r in range(overlap):
            out[r * self.hop:(r + frames) * self.hop] += blocks[:, r].reshape(-1)
        return out


class _LogMel:
    """Log-mel analysis at one frame per hop: (T,) → (ceil(T / hop), mels)."""

    def __init__(self, config: UnitCodecConfig) -> None:
        self.config = config
        self.spectral = _Spectral(config.window_samples, config.hop_samples)
        self.filterbank = mel_filterbank(config)  # (M, F)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        frames = -(-samples.size // self.config.hop_samples)
        power = np.abs(self.spectral.stft(samples, frames)) ** 2  # (N, F)
        return np.log(power @ self.filterbank.T + self.config.power_floor)  # (N, M)


def stacked_frames(log_mel: np.ndarray, context: int) -> np.ndarray:
    """(N, M) frames → (N, (2c + 1) · M) encoder features: frame t, then frames t − c … t + c
    but t itself, edge frames repeated past either end. The centre frame comes first, so a
    centroid's first M values are the mean frame its unit stands for."""
    if context == 0:
        return log_mel
    count = log_mel.shape[0]
    padded = np.pad(log_mel, ((context, context), (0, 0)), mode="edge")  # (N + 2c, M)
    offsets = [context] + [d for d in range(2 * context + 1) if d != context]
    return np.concatenate([padded[d:d + count] for d in offsets], axis=1)


def cepstral_basis(mels: int, count: int) -> np.ndarray:
    """(M, n) float32: a log-mel frame (1, M) times it gives the frame's first n orthonormal
    DCT-II coefficients (its cepstrum's lowest quefrencies)."""
    return scipy.fft.dct(np.eye(mels), type=2, norm="ortho", axis=1)[:, :count].astype(np.float32)


class _Assignment:
    """The space units are assigned in: stacked log-mel frames, or their low cepstra per frame
    when config.encoder_cepstra > 0 (a linear map, so a cluster's mean maps to its mean)."""

    def __init__(self, config: UnitCodecConfig) -> None:
        self.context = config.encoder_context
        self.mels = config.mels
        self.basis = (cepstral_basis(config.mels, config.encoder_cepstra)
                      if config.encoder_cepstra else None)  # (M, n) or None

    def features(self, log_mel: np.ndarray) -> np.ndarray:
        """Log-mel frames (N, M) → (N, (2c + 1) · n) assignment features (n = M without
        cepstra)."""
        frames = log_mel if self.basis is None else log_mel @ self.basis
        return stacked_frames(frames, self.context)

    def centroids(self, centroids: np.ndarray) -> np.ndarray:
        """Log-mel centroids (K, (2c + 1) · M) → the same points in assignment space."""
        if self.basis is None:
            return centroids
        blocks = centroids.reshape(centroids.shape[0], -1, self.mels)  # (K, 2c + 1, M)
        return (blocks @ self.basis).reshape(centroids.shape[0], -1)


def _cluster_means(stacked: np.ndarray, points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Log-mel centroids (K, D) of the k-means `centroids` (K, d) fitted on `points` (n, d):
    the mean stacked frame (n, D) of each cluster; a cluster no point falls in takes the frame
    nearest its centroid."""
    assignment, _ = _nearest(points, centroids)  # (n,)
    sizes = np.bincount(assignment, minlength=centroids.shape[0])  # (K,)
    sums = np.zeros((centroids.shape[0], stacked.shape[1]), dtype=np.float64)
    np.add.at(sums, assignment, stacked)
    means = (sums / np.maximum(sizes, 1)[:, None]).astype(np.float32)
    empty = np.flatnonzero(sizes == 0)
    if empty.size:
        nearest, _ = _nearest(np.ascontiguousarray(centroids[empty]), points)
        means[empty] = stacked[nearest]
    return means


def fit_kmeans(
    points: np.ndarray, clusters: int, *, seed: int, iterations: int, progress: bool
) -> np.ndarray:
    """K-means (k-means++ seeding, then Lloyd iterations) of (n, D) points → (clusters, D).

    A cluster left empty is moved onto the point worst served by its current centroid, so every
    unit stays in use. Stops early once no point changes cluster. Seeded: same input, same output.
    """
    from tqdm import tqdm

    points = np.ascontiguousarray(points, dtype=np.float32)  # (n, D)
    count = points.shape[0]
    if count < clusters:
        raise ValueError(
            f"k-means with {clusters} clusters needs at least {clusters} frames, got {count} "
            f"({count / 50:.1f} s of audio at 50 frames/s); fit on more audio or fewer units"
        )
    rng = np.random.default_rng(seed)
    centroids = _kmeans_plus_plus(points, clusters, rng)
    assignment = np.full(count, -1)
    bar = tqdm(range(iterations), desc="k-means", unit="iter", disable=not progress)
    for _ in bar:
        new_assignment, distance = _nearest(points, centroids)
        changed = int(np.count_nonzero(new_assignment != assignment))
        assignment = new_assignment
        sizes = np.bincount(assignment, minlength=clusters)  # (K,)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assignment, points)
        used = sizes > 0
        centroids[used] = sums[used] / sizes[used, None]
        empty = np.flatnonzero(~used)
        if empty.size:
            centroids[empty] = points[np.argsort(distance)[::-1][:empty.size]]
        bar.set_postfix(mse=f"{distance.mean() / points.shape[1]:.4f}", changed=changed)
        if changed == 0:
            break
    return centroids


def _kmeans_plus_plus(points: np.ndarray, clusters: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each next centroid drawn with probability ∝ squared distance."""
    centroids = np.empty((clusters, points.shape[1]), dtype=np.float32)
    centroids[0] = points[rng.integers(points.shape[0])]
    closest = ((points - centroids[0]) ** 2).sum(axis=1)  # (n,)
    for k in range(1, clusters):
        total = float(closest.sum())
        index = rng.choice(closest.size, p=closest / total) if total > 0 else rng.integers(
            closest.size)
        centroids[k] = points[index]
        np.minimum(closest, ((points - centroids[k]) ** 2).sum(axis=1), out=closest)
    return centroids


def _nearest(points: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and squared distance to the nearest centroid for each point: (n,), (n,)."""
    centroid_norms = (centroids**2).sum(axis=1)  # (K,)
    index = np.empty(points.shape[0], dtype=np.int64)
    distance = np.empty(points.shape[0], dtype=np.float32)
    for start in range(0, points.shape[0], DISTANCE_CHUNK_FRAMES):
        block = points[start:start + DISTANCE_CHUNK_FRAMES]  # (b, D)
        scores = centroid_norms[None, :] - 2.0 * (block @ centroids.T)  # (b, K)
        best = scores.argmin(axis=1)
        index[start:start + block.shape[0]] = best
        point_norms = (block**2).sum(axis=1)
        distance[start:start + block.shape[0]] = np.maximum(
            scores[np.arange(block.shape[0]), best] + point_norms, 0.0)
    return index, distance


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
        self._assignment = _Assignment(config)
        self._assigned_centroids = self._assignment.centroids(centroids)  # (K, d)
        self.decoder = None if decoder is None else _checked_decoder(decoder, config)
        self.sample_rate = config.sample_rate_hz
        self.frame_rate = config.sample_rate_hz // config.hop_samples
        self.vocab_size = config.units
        self.streaming = UNIT_STREAMING
        self._log_mel = _LogMel(config)
        self._synthesis = _Spectral(config.window_samples, config.synthesis_hop_samples)
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
        log_mel, assignment = _LogMel(config), _Assignment(config)
        mels = [log_mel(_checked(clip)) for clip in audio]
        points = np.concatenate([assignment.features(frames) for frames in mels])  # (n, d)
        centroids = fit_kmeans(points, units, seed=seed, iterations=iterations, progress=progress)
        if assignment.basis is not None:
            stacked = np.concatenate([stacked_frames(frames, config.encoder_context)
                                      for frames in mels])  # (n, D)
            centroids = _cluster_means(stacked, points, centroids)
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
        width, rows = 2 * context + 1, self.vocab_size + 1
        gram = np.zeros((width * rows, width * rows))  # (W·R, W·R): X^T X
        moments = np.zeros((width * rows, self.config.mels))  # (W·R, M): X^T Y
        for clip in audio:
            frames = self.log_mel(clip)  # (N, M), analysed once for units and residual
            units = self._nearest_units(frames)  # (N,)
            residual = frames - self.frame_centroids[units]  # (N, M)
            active = _neighbour_rows(units, context, self.vocab_size)  # (N, W): one-hot columns
            for d in range(width):
                np.add.at(moments, active[:, d], residual)
                for e in range(width):
                    np.add.at(gram, (active[:, d], active[:, e]), 1.0)
        gram[np.diag_indices_from(gram)] += ridge
        table = scipy.linalg.solve(gram, moments, assume_a="pos")  # (W·R, M)
        decoder = table.reshape(width, rows, self.config.mels).astype(np.float32)
        return UnitCodec(self.centroids, self.config, decoder)

    def frame_log_mel(self, units: np.ndarray) -> np.ndarray:
        """The log-mel frames decoding renders for int units (N,): (N, M)."""
        return self._rendered_log_mel(self.check_units(units))

    def _rendered_log_mel(self, units: np.ndarray) -> np.ndarray:
        """`frame_log_mel` for units already checked: (N,) int64 → (N, M)."""
        if self.decoder is None:
            return self.frame_centroids[units]
        context = self.decoder.shape[0] // 2
        active = _neighbour_rows(units, context, self.vocab_size)  # (N, W)
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
        log_magnitude = _upsample(frames, factor)  # (N * R, F)
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
        if not isinstance(document, dict) or document.get("format") != CODEC_FORMAT:
            raise ValueError(f"{config_path}: field 'format' must be {CODEC_FORMAT!r}")
        known = {f.name for f in fields(UnitCodecConfig)}
        unknown = sorted(set(document) - known - {"format"})
        if unknown:
            raise ValueError(f"{config_path}: unknown fields {', '.join(unknown)}")
        try:
            config = UnitCodecConfig(**{k: v for k, v in document.items() if k in known})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{config_path}: {exc}") from exc
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


def _neighbour_rows(units: np.ndarray, context: int, vocab_size: int) -> np.ndarray:
    """int units (N,) → (N, 2c + 1) rows of a flattened (2c + 1, K + 1) table: column d holds
    d·(K + 1) + the unit d - c frames away, or + K past either end."""
    padded = np.concatenate([np.full(context, vocab_size), units, np.full(context, vocab_size)])
    width, count = 2 * context + 1, units.size
    return np.stack([d * (vocab_size + 1) + padded[d : d + count] for d in range(width)], axis=1)


def _checked(samples: np.ndarray) -> np.ndarray:
    """Mono float32 (T,) with finite values; empty input stays empty."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples of shape (T,), got shape {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise ValueError("samples contain NaN or infinite values")
    return samples


def _upsample(frames: np.ndarray, factor: int) -> np.ndarray:
    """(N, F) at one frame per hop → (N * factor, F) by linear interpolation between frame centres.

    Output frame s is centred at (s + ½) / factor input frames; the ends are held constant.
    """
    if factor == 1:
        return frames
    count = frames.shape[0]
    position = (np.arange(count * factor) + 0.5) / factor - 0.5  # in input-frame units
    lower = np.clip(np.floor(position).astype(np.int64), 0, count - 1)
    upper = np.minimum(lower + 1, count - 1)
    weight = np.clip(position - np.floor(position), 0.0, 1.0)[:, None].astype(np.float32)
    weight[position < 0] = 0.0
    return (1.0 - weight) * frames[lower] + weight * frames[upper]
