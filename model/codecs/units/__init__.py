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
only (scipy's float32 FFTs run several times faster than numpy's here). Must not touch LLMs,
bundles or the server. See docs/codecs.md for the design and measured quality.

config.py: UnitCodecConfig. signal.py: STFT, log-mel, features, Griffin-Lim. fitting.py: k-means
and the context decoder. codec.py: UnitCodec (encode, decode, save, load).
"""

from model.codecs.units.codec import UnitCodec
from model.codecs.units.config import UnitCodecConfig
from model.codecs.units.fitting import fit_kmeans
from model.codecs.units.signal import cepstral_basis, stacked_frames

__all__ = ["UnitCodec", "UnitCodecConfig", "cepstral_basis", "fit_kmeans", "stacked_frames"]
