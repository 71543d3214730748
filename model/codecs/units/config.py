"""The unit codec's configuration: everything that fixes its analysis and synthesis.

Saved as the codec's config.json beside the centroids (model/codecs/units/codec.py reads and
writes it). Pure data: it validates itself and computes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


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
