"""Signal processing of the unit codec: framing, STFT, log-mel analysis, the encoder's features
(stacked frames, low cepstra) and fast Griffin-Lim synthesis.

Frames are centred at (t + ½)·hop, so unit t of the encoder and frame t of the decoder describe the
same 20 ms of audio. numpy and scipy.fft only (scipy's float32 FFTs run several times faster than
numpy's here); knows nothing of units, centroids or files.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from model.codecs.units.config import UnitCodecConfig


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


class Spectral:
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
        signal = self._overlap_add(self._windowed_inverse(spectrum))
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
        own_hops = slice(self.left_pad, self.left_pad + frames * self.hop)
        # the istft → stft round trip of each iteration in place: the signal's samples go
        # straight into one zero-padded buffer whose frames are a fixed strided view of it
        padded = np.zeros(self.left_pad + frames * self.hop + self.window, dtype=np.float32)
        framed = self._frames(padded, frames)  # (N, W) view
        magnitude = magnitude.astype(np.result_type(magnitude, phase))  # cast once, not per product
        spectrum = magnitude * phase  # (N, F)
        previous: np.ndarray | None = None
        for _ in range(iterations):
            signal = self._overlap_add(self._windowed_inverse(spectrum))
            np.divide(signal[own_hops], weight, out=padded[own_hops])
            consistent = scipy.fft.rfft(framed * self.hann, axis=1)  # (N, F)
            if previous is None:
                accelerated = consistent
            else:
                step = np.subtract(consistent, previous, out=previous)
                accelerated = consistent + np.multiply(momentum, step, out=step)
            previous = consistent
            spectrum = magnitude * accelerated
            spectrum /= np.maximum(np.abs(accelerated), 1e-8)
        return self.istft(spectrum, weight)

    def _windowed_inverse(self, spectrum: np.ndarray) -> np.ndarray:
        """complex (N, F) → float32 (N, W): each frame's inverse FFT times the window."""
        pieces = scipy.fft.irfft(spectrum, n=self.window, axis=1).astype(np.float32, copy=False)
        return np.multiply(pieces, self.hann, out=pieces)

    def _frames(self, padded: np.ndarray, frames: int) -> np.ndarray:
        """(L,) → (frames, W) read-only view: frame t is padded[t * hop : t * hop + W]."""
        step = padded.strides[0]
        return np.lib.stride_tricks.as_strided(
            padded, (frames, self.window), (self.hop * step, step), writeable=False)

    def _overlap_add(self, pieces: np.ndarray) -> np.ndarray:
        """(N, W) frames → ((N + W/hop − 1) * hop,), frame t starting at sample t * hop."""
        frames, overlap = pieces.shape[0], self.window // self.hop
        blocks = pieces.reshape(frames, overlap, self.hop)  # (N, R, hop)
        out = np.zeros((frames + overlap - 1) * self.hop, dtype=np.float32)
        for r in range(overlap):
            out[r * self.hop:(r + frames) * self.hop] += blocks[:, r].reshape(-1)
        return out


class LogMel:
    """Log-mel analysis at one frame per hop: (T,) → (ceil(T / hop), mels)."""

    def __init__(self, config: UnitCodecConfig) -> None:
        self.config = config
        self.spectral = Spectral(config.window_samples, config.hop_samples)
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


class Assignment:
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


def upsample(frames: np.ndarray, factor: int) -> np.ndarray:
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
