"""SpeechTokenizer as a `SpeechCodec`: 16 kHz audio ↔ RVQ layer-1 units at 50 Hz (AnyGPT's tokens).

Loads and saves the released format (a directory with `config.json` plus `SpeechTokenizer.pt` or
AnyGPT's `ckpt.dev`) through the `speechtokenizer` package, and builds random models of any size for
tests and benchmarks. Decoding uses layer 1 alone unless an acoustic model (SoundStorm) is plugged
into the `acoustic_model` seam. Knows nothing of LLMs, bundles or the server.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from model.audio import check_samples
from model.codecs.base import SpeechCodec, StreamingSpec

SAMPLE_RATE_HZ = 16_000
FRAME_RATE_HZ = 50
SAMPLES_PER_FRAME = SAMPLE_RATE_HZ // FRAME_RATE_HZ  # 320 = product of the encoder strides
CONFIG_NAME = "config.json"
# Checkpoint names as released, in the order `load` looks for them: fnlp/SpeechTokenizer's
# speechtokenizer_hubert_avg, then fnlp/AnyGPT-speech-modules/speechtokenizer.
CHECKPOINT_NAMES = ("SpeechTokenizer.pt", "ckpt.dev")
# Seconds of seeded noise that calibrate a random model, and its decoded level (speech-like RMS).
CALIBRATION_AUDIO_S = 4.0
RANDOM_DECODE_RMS = 0.1

# (semantic_units (1, B, N) int64) -> codes (n_q, B, N) int64 whose layer 0 is the input.
AcousticModel = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SpeechTokenizerConfig:
    """The architecture keys that `speechtokenizer.SpeechTokenizer(config)` reads.

    Field names are the released `config.json` keys. Other keys of a released config (training
    settings such as `segment_size`) are kept in `extra` and written back unchanged by `to_dict`.
    """

    n_filters: int
    """Base width of the SEANet encoder/decoder (released: 64)."""
    strides: tuple[int, ...]
    """Encoder down-sampling ratios; their product must be 320 samples (50 Hz at 16 kHz)."""
    dimension: int
    """Width of the encoder output and of every RVQ codebook vector (released: 1024)."""
    semantic_dimension: int
    """Width of the HuBERT-distillation projection of layer 1 (released: 768)."""
    bidirectional: bool
    """Whether the encoder LSTM is bidirectional (released: true; the decoder's never is)."""
    dilation_base: int
    """Dilation growth of the residual blocks (released: 2)."""
    residual_kernel_size: int
    """Kernel size of the residual blocks (released: 3)."""
    n_residual_layers: int
    """Residual blocks per resolution (released: 1)."""
    lstm_layers: int
    """LSTM layers in the encoder and in the decoder (released: 2)."""
    activation: str
    """A `torch.nn` activation class name, or "Snake" (AnyGPT's copy) (released: "ELU")."""
    codebook_size: int
    """Entries per RVQ codebook: the number of distinct units (released: 1024)."""
    n_q: int
    """RVQ layers (released: 8); this codec emits layer 1 only."""
    sample_rate: int = SAMPLE_RATE_HZ
    """Audio sample rate in Hz; must be 16000."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Keys of the released config.json that the model does not read, preserved for `save`."""

    def __post_init__(self) -> None:
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1
                   for s in self.strides):
            raise ValueError(f"strides must be integers ≥ 1, got {self.strides!r}")
        object.__setattr__(self, "strides", tuple(self.strides))
        counts = {
            "n_filters": self.n_filters, "dimension": self.dimension,
            "semantic_dimension": self.semantic_dimension, "dilation_base": self.dilation_base,
            "residual_kernel_size": self.residual_kernel_size,
            "n_residual_layers": self.n_residual_layers, "codebook_size": self.codebook_size,
            "n_q": self.n_q,
        }
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer ≥ 1, got {value!r}")
        if isinstance(self.lstm_layers, bool) or not isinstance(self.lstm_layers, int) \
                or self.lstm_layers < 0:
            raise ValueError(f"lstm_layers must be an integer ≥ 0, got {self.lstm_layers!r}")
        if not isinstance(self.bidirectional, bool):
            raise ValueError(f"bidirectional must be true or false, got {self.bidirectional!r}")
        if not self.strides or math.prod(self.strides) != SAMPLES_PER_FRAME:
            raise ValueError(
                f"strides must multiply to {SAMPLES_PER_FRAME} samples per frame "
                f"({FRAME_RATE_HZ} Hz at {SAMPLE_RATE_HZ} Hz), got {list(self.strides)}"
            )
        if self.sample_rate != SAMPLE_RATE_HZ:
            raise ValueError(f"sample_rate must be {SAMPLE_RATE_HZ}, got {self.sample_rate!r}")
        if self.activation != "Snake" and not isinstance(getattr(nn, str(self.activation), None),
                                                         type):
            raise ValueError(
                f"activation must be a torch.nn activation name (e.g. 'ELU') or 'Snake', "
                f"got {self.activation!r}"
            )

    @classmethod
    def released(cls, **overrides: Any) -> SpeechTokenizerConfig:
        """speechtokenizer_hubert_avg's architecture (≈ 104 M parameters); AnyGPT's copy is the
        same with `activation="Snake"`."""
        values: dict[str, Any] = dict(
            n_filters=64, strides=(8, 5, 4, 2), dimension=1024, semantic_dimension=768,
            bidirectional=True, dilation_base=2, residual_kernel_size=3, n_residual_layers=1,
            lstm_layers=2, activation="ELU", codebook_size=1024, n_q=8,
            extra={"sampling_rate": SAMPLE_RATE_HZ},
        )
        return cls(**{**values, **overrides})

    @classmethod
    def small(cls, **overrides: Any) -> SpeechTokenizerConfig:
        """The released layout at a width that runs in milliseconds on a CPU (≈ 0.36 M
        parameters): for tests and tiny bundles."""
        values: dict[str, Any] = dict(
            n_filters=4, strides=(8, 5, 4, 2), dimension=32, semantic_dimension=24,
            bidirectional=True, dilation_base=2, residual_kernel_size=3, n_residual_layers=1,
            lstm_layers=2, activation="ELU", codebook_size=1024, n_q=8,
        )
        return cls(**{**values, **overrides})

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "config") -> SpeechTokenizerConfig:
        """Read a released config.json's content; errors name `source` and the key."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls) if f.name != "extra"]
        required = [f.name for f in dataclasses.fields(cls)
                    if f.name != "extra" and f.default is dataclasses.MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise ValueError(f"{source}: missing key(s) {', '.join(missing)}")
        values = {name: data[name] for name in names if name in data}
        if not isinstance(values["strides"], list | tuple):
            raise ValueError(f"{source}: strides must be a list, got {values['strides']!r}")
        try:
            return cls(**values, extra={k: v for k, v in data.items() if k not in names})
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{source}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """The config.json content: the extra keys plus every architecture key."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name != "extra"}
        return {**self.extra, **values, "strides": list(self.strides)}


def _speechtokenizer_class() -> type[nn.Module]:
    """Import the package lazily: its __init__ pulls in the trainer's heavy dependencies (and
    its Snake activation's `torch.jit.script` warns of a deprecation no user can act on)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*",
                                category=DeprecationWarning)
        from speechtokenizer import SpeechTokenizer

    return SpeechTokenizer


@contextmanager
def _quiet_weight_norm() -> Iterator[None]:
    """The package builds its convolutions with the deprecated `weight_norm`; its FutureWarning
    says nothing a user can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm.*", category=FutureWarning)
        yield


class SpeechTokenizerCodec(SpeechCodec):
    """SpeechTokenizer layer-1 units: what AnyGPT writes as `<🗣️i>`.

    `acoustic_model` is the seam for SoundStorm: given the semantic units (1, B, N) it returns the
    codes of RVQ layers 1..k (k ≤ n_q, shape (k, B, N)) that `decode` then renders. None (the
    default) decodes layer 1 alone, which is intelligible but flat in timbre.
    """

    sample_rate = SAMPLE_RATE_HZ
    frame_rate = FRAME_RATE_HZ
    # Chosen by measurement on random models (small and released size, 150 frames; see
    # docs/performance.md). A unit changes the decoded audio from 3.8 frames before it (the
    # decoder's first convolution), so 4 frames of lookahead give every emitted frame all its
    # right neighbours. After it the change fades through the decoder LSTM (to 1e-4 of peak after
    # 13-16 frames), so 16 frames of left context give 86 dB SNR against the one-shot decode (24
    # give 115 dB at more compute). A crossfade only hurts here: the previous chunk rendered the
    # overlap without its right context (SNR 31 dB with 1 frame, 21 dB with 2).
    # First audio once 5 + 4 units exist; later chunks of 10 frames (200 ms).
    streaming = StreamingSpec(
        context_frames=16, lookahead_frames=4, crossfade_frames=0,
        first_chunk_frames=5, chunk_frames=10,
    )

    def __init__(
        self,
        model: nn.Module,
        config: SpeechTokenizerConfig,
        *,
        acoustic_model: AcousticModel | None = None,
        checkpoint_name: str = CHECKPOINT_NAMES[0],
    ) -> None:
        if checkpoint_name not in CHECKPOINT_NAMES:
            raise ValueError(f"checkpoint_name must be one of {CHECKPOINT_NAMES}, "
                             f"got {checkpoint_name!r}")
        self.model = model.eval()
        self.config = config
        self.vocab_size = config.codebook_size
        self.acoustic_model = acoustic_model
        self.checkpoint_name = checkpoint_name

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> SpeechTokenizerCodec:
        """Move the model to `device` (e.g. "cuda"); returns self."""
        self.model.to(device)
        return self

    # ---- building and files ------------------------------------------------------------------

    @classmethod
    def random(
        cls,
        config: SpeechTokenizerConfig | None = None,
        *,
        seed: int = 0,
        **overrides: Any,
    ) -> SpeechTokenizerCodec:
        """A randomly initialised codec, reproducible from `seed`, without touching the global
        torch RNG. `config` defaults to `SpeechTokenizerConfig.small()`; keyword `overrides`
        replace its fields, e.g. `random(activation="Snake", codebook_size=64)` or
        `random(SpeechTokenizerConfig.released())`.

        The weights are calibrated on seeded noise (see `_calibrate_random`) so that different
        audio gives different units and different units give different audio; compute cost is
        that of the configured architecture.
        """
        config = dataclasses.replace(config or SpeechTokenizerConfig.small(), **overrides)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            with _quiet_weight_norm():
                model = _speechtokenizer_class()(config.to_dict()).eval()
            _calibrate_random(model, config)
        return cls(model, config)

    @classmethod
    def load(cls, directory: Path, *, device: str | torch.device = "cpu") -> SpeechTokenizerCodec:
        """Load a released SpeechTokenizer directory: config.json + SpeechTokenizer.pt or
        ckpt.dev (the first found, in that order)."""
        directory = Path(directory)
        config = read_config(directory / CONFIG_NAME)
        checkpoint = _find_checkpoint(directory)
        try:
            with _quiet_weight_norm():
                model = _speechtokenizer_class().load_from_checkpoint(
                    str(directory / CONFIG_NAME), str(checkpoint)
                )
        except Exception as exc:  # torch.load / load_state_dict raise many types
            raise ValueError(
                f"could not load the SpeechTokenizer checkpoint {checkpoint} with "
                f"{directory / CONFIG_NAME}: {exc}"
            ) from exc
        codec = cls(model, config, checkpoint_name=checkpoint.name)
        return codec.to(device)

    def save(self, directory: Path, *, checkpoint_name: str | None = None) -> None:
        """Write config.json and the state dict under `checkpoint_name` (default: the name this
        codec was loaded from, else SpeechTokenizer.pt), as the released models ship."""
        name = checkpoint_name or self.checkpoint_name
        if name not in CHECKPOINT_NAMES:
            raise ValueError(f"checkpoint_name must be one of {CHECKPOINT_NAMES}, got {name!r}")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(self.config.to_dict(), indent=4) + "\n")
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        torch.save(state, directory / name)

    # ---- the codec ---------------------------------------------------------------------------

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """float32 (T,) at 16 kHz → RVQ layer-1 units (N,) int64, N = ceil(T / 320).

        The input is zero-padded on the right to a whole number of frames.
        """
        samples = check_samples(samples, self.sample_rate)
        n_frames = -(-samples.size // SAMPLES_PER_FRAME)
        padded = np.zeros(n_frames * SAMPLES_PER_FRAME, dtype=np.float32)
        padded[: samples.size] = samples
        with torch.inference_mode():
            wav = torch.from_numpy(padded).to(self.device).view(1, 1, -1)  # (B=1, C=1, T)
            codes = self.model.encode(wav, n_q=1)  # (1, B=1, N)
        units = codes[0, 0].to("cpu", torch.int64).numpy()
        if units.size != n_frames:  # the package's padding guarantees this; guard the contract
            raise RuntimeError(f"encoder gave {units.size} frames for {n_frames} expected")
        return units

    def decode(self, units: np.ndarray) -> np.ndarray:
        """Units (N,) → float32 (N * 320,) at 16 kHz; layer 1 alone unless `acoustic_model` is
        set, in which case it supplies the further RVQ layers."""
        units = self.check_units(units)
        if units.size == 0:
            return np.zeros(0, dtype=np.float32)
        with torch.inference_mode():
            semantic = torch.from_numpy(units).to(self.device).view(1, 1, -1)  # (1, B=1, N)
            codes = self._codes_for(semantic)  # (k, B=1, N)
            wav = self.model.decode(codes)  # (B=1, C=1, N * 320)
        return wav[0, 0].float().cpu().numpy()

    def _codes_for(self, semantic: torch.Tensor) -> torch.Tensor:
        """(1, B, N) layer-1 units → (k, B, N) codes: the acoustic model's, checked, or layer 1."""
        if self.acoustic_model is None:
            return semantic
        codes = self.acoustic_model(semantic)
        if (codes.dim() != 3 or codes.shape[1:] != semantic.shape[1:]
                or not 1 <= codes.shape[0] <= self.config.n_q):
            raise ValueError(
                f"acoustic_model must return codes of shape (k ≤ {self.config.n_q}, "
                f"{semantic.shape[1]}, {semantic.shape[2]}), got {tuple(codes.shape)}"
            )
        if not torch.equal(codes[:1].to(semantic.dtype), semantic):
            raise ValueError("acoustic_model must keep the semantic units as RVQ layer 1")
        return codes.to(torch.int64)


def read_config(path: Path) -> SpeechTokenizerConfig:
    """Read and validate a SpeechTokenizer config.json; every error names the file."""
    if not path.is_file():
        raise FileNotFoundError(
            f"no SpeechTokenizer config at {path}; a SpeechTokenizer directory holds "
            f"{CONFIG_NAME} and one of {', '.join(CHECKPOINT_NAMES)}"
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    return SpeechTokenizerConfig.from_dict(data, source=str(path))


def _find_checkpoint(directory: Path) -> Path:
    for name in CHECKPOINT_NAMES:
        if (directory / name).is_file():
            return directory / name
    present = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    raise FileNotFoundError(
        f"no SpeechTokenizer checkpoint in {directory}: expected one of "
        f"{', '.join(CHECKPOINT_NAMES)} beside {CONFIG_NAME}; found {present or 'nothing'}"
    )


def _calibrate_random(model: nn.Module, config: SpeechTokenizerConfig) -> None:
    """Make a freshly initialised model behave like a codec rather than a bias generator.

    At PyTorch's default initialisation the decoder's output is almost entirely its convolution
    biases (the same waveform whatever the units), and the package leaves the codebooks at zero
    until k-means on training data. So, from seeded noise with a random gain per frame: the
    encoder's last convolution is rescaled to give zero-mean, unit-variance features; each RVQ
    codebook is sampled from the residual features; the decoder's convolution biases are zeroed
    and its last convolution scaled so that random units decode at `RANDOM_DECODE_RMS`.
    """
    n_frames = int(CALIBRATION_AUDIO_S * FRAME_RATE_HZ)
    with torch.inference_mode():
        gain = torch.exp(torch.randn(n_frames)).repeat_interleave(SAMPLES_PER_FRAME)  # (T,)
        noise = (0.1 * gain * torch.randn_like(gain)).view(1, 1, -1)  # (B=1, C=1, T)
        encoder_out = model.encoder.model[-1].conv.conv
        features = model.encoder(noise)[0].T  # (N, dimension)
        mean, std = features.mean(dim=0), features.std(dim=0)  # (dimension,)
        encoder_out.weight_g.div_(std.view(-1, 1, 1))  # the layer is affine in its output:
        encoder_out.bias.sub_(mean).div_(std)  # it now gives (features - mean) / std
        residual = (features - mean) / std  # (N, dimension)
        for layer in model.quantizer.vq.layers:
            codebook = layer._codebook
            picks = torch.randint(0, n_frames, (config.codebook_size,))
            jitter = torch.randn(config.codebook_size, config.dimension) * residual.std(dim=0)
            codebook.embed.copy_(residual[picks] + 0.05 * jitter)  # (codebook_size, dimension)
            codebook.embed_avg.copy_(codebook.embed)
            codebook.cluster_size.fill_(1.0)
            codebook.inited.fill_(1.0)
            residual = residual - codebook.embed[codebook.quantize(residual)]
        for module in model.decoder.modules():
            if isinstance(module, nn.Conv1d | nn.ConvTranspose1d):
                module.bias.zero_()
        units = torch.randint(0, config.codebook_size, (1, 1, n_frames))  # (1, B=1, N)
        rms = model.decode(units).pow(2).mean().sqrt()
        model.decoder.model[-1].conv.conv.weight_g.mul_(RANDOM_DECODE_RMS / rms)
