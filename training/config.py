"""Training recipes: typed dataclass configs loaded from YAML (training/recipes/*.yaml).

A recipe says everything one `icot train --recipe NAME` run does: which corpus to build, which
model to start from, how long stage 0 (the domain as text chat), stage 1 (explicit A-T-T-A
chain) and stage 2 (ICoT: stepwise transcript removal with a LoRA adapter) train, which
baselines to add, and where the bundles go.
Every section is a frozen dataclass that validates itself in `__post_init__`;
training/recipe_files.py reads a YAML file into a `Recipe` (through model/config_loader.py).
Pure data: no torch, no model, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from model.config_loader import require, to_data
from training.stages.schedule import RemovalSchedule

PHASES = ("all", "prepare", "train")  # what `icot train --phase` runs of a recipe (pipeline.py)

LLAMA_LORA_TARGETS: tuple[str, ...] = (
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""Every linear layer of a Llama block: attention projections and the MLP."""


@dataclass(frozen=True)
class DataConfig:
    """Which corpus the run trains on and how it is built."""

    source: Literal["demo", "soda"]
    """demo: synthetic demo-domain dialogues voiced with espeak-ng (training/data/domain.py,
    synth.py); soda: SODA-TTS rows read from parquet (training/data/soda.py)."""
    corpus_dir: str
    """Directory of the sharded corpus (manifest.json + shards); building it is resumable."""
    soda_dir: str | None = None
    """soda only: a local copy of robinysh/soda_tts, the folder that holds data/*.parquet."""
    train_examples: int | None = None
    """demo: dialogues to synthesize for training; soda: cap on training rows (None: all)."""
    eval_examples: int | None = None
    """demo: held-out-voice dialogues for evaluation; soda: cap on validation rows (None: all)."""
    max_speech_tokens: int = 500
    """Drop a turn whose user or reply speech has more units than this (the paper: 500)."""
    max_tts_wer: float | None = None
    """soda only: drop rows whose input or output TTS WER exceeds this (None: keep all)."""
    augment_prob: float = 0.0
    """demo only: probability that a user utterance gets speed perturbation or noise."""
    wide_augmentation: bool = False
    """demo only: augmented utterances may also get brown noise or mains hum, a level change,
    a telephone band or a room echo (training/data/demo_corpus.py)."""
    max_history_turns: int = 2
    """Earlier turns of a dialogue kept in the prompt (the demo's recall intent needs ≥ 1)."""
    shard_size: int = 1000
    """Examples per shard file."""

    def __post_init__(self) -> None:
        require(bool(self.corpus_dir), "corpus_dir", "must be a directory path")
        if self.source == "soda":
            require(bool(self.soda_dir), "soda_dir", "required when source is soda")
        else:
            require(self.soda_dir is None, "soda_dir", "only used when source is soda")
            require(self.max_tts_wer is None, "max_tts_wer", "only used when source is soda")
            for name in ("train_examples", "eval_examples"):
                require(getattr(self, name) is not None, name, "required when source is demo")
        for name in ("train_examples", "eval_examples"):
            value = getattr(self, name)
            require(value is None or value >= 1, name, f"must be ≥ 1 or null, got {value}")
        require(self.max_speech_tokens >= 1, "max_speech_tokens", "must be ≥ 1")
        require(self.max_tts_wer is None or self.max_tts_wer >= 0, "max_tts_wer",
                "must be ≥ 0 or null")
        require(0.0 <= self.augment_prob <= 1.0, "augment_prob", "must lie in [0, 1]")
        require(self.max_history_turns >= 0, "max_history_turns", "must be ≥ 0")
        require(self.shard_size >= 1, "shard_size", "must be ≥ 1")


@dataclass(frozen=True)
class ModelConfig:
    """The model stage 1 starts from and the speech codec it speaks."""

    codec_kind: Literal["units", "whisper-units", "speechtokenizer"]
    """units: the project's log-mel k-means codec; whisper-units: user speech as k-means units of
    Whisper tiny.en's encoder, replies as the unit codec's (model/codecs/heard_units.py);
    speechtokenizer: AnyGPT's SpeechTokenizer."""
    codec_path: str | None = None
    """The codec directory; None with units: fit the unit codec on the training voices."""
    base_model: str | None = None
    """A local Hugging Face causal-LM directory (e.g. a copy of fnlp/AnyGPT-chat); None builds a
    Llama from scratch with the sizes below."""
    hidden_size: int = 256
    """From scratch only: width of the residual stream."""
    num_layers: int = 4
    """From scratch only: transformer blocks."""
    num_heads: int = 4
    """From scratch only: attention heads (hidden_size must divide evenly)."""
    intermediate_size: int = 1024
    """From scratch only: width of the MLP."""
    max_positions: int = 1024
    """From scratch only: longest sequence in tokens (prompt + history + target)."""

    def __post_init__(self) -> None:
        if self.codec_kind == "speechtokenizer":
            require(bool(self.codec_path), "codec_path", "required for the speechtokenizer codec")
        if self.base_model is not None:
            require(bool(self.base_model), "base_model", "must be a directory path or null")
            return
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size"):
            require(getattr(self, name) >= 1, name, "must be ≥ 1")
        require(self.max_positions >= 16, "max_positions", "must be ≥ 16")
        require(self.hidden_size % self.num_heads == 0, "num_heads",
                f"must divide hidden_size ({self.hidden_size}), got {self.num_heads}")


@dataclass(frozen=True)
class UnitCodecFit:
    """How the unit codec is fitted when model.codec_path is null (docs/codecs.md): on the user
    turns of the first training dialogues and the assistant's replies, as the corpus voices them."""

    units: int = 1024
    """Units K to fit; halved while the fitting audio has fewer than min_frames_per_unit frames
    per unit (the tiny test recipe has seconds of it)."""
    min_frames_per_unit: int = 4
    """Fewest fitting frames per unit before K is halved."""
    fit_dialogues: int = 300
    """Training dialogues whose audio the codec is fitted on (and the input level measured on)."""
    encoder_context: int = 3
    """Log-mel frames either side of each encoded frame."""
    encoder_cepstra: int = 13
    """Cepstral coefficients per frame that units are assigned by (0: all mels)."""
    decoder_context: int = 2
    """Units either side the context decoder reads (±1 suits ±0 encoders)."""
    user_units: int = 512
    """whisper-units only: k-means units over the Whisper encoder's frames of the users' turns
    (the reply units are `units`, fitted on the assistant's replies)."""

    def __post_init__(self) -> None:
        require(self.units >= 2, "units", f"must be ≥ 2, got {self.units}")
        require(self.user_units >= 2, "user_units", f"must be ≥ 2, got {self.user_units}")
        for name in ("min_frames_per_unit", "fit_dialogues"):
            require(getattr(self, name) >= 1, name, f"must be ≥ 1, got {getattr(self, name)}")
        for name in ("encoder_context", "encoder_cepstra", "decoder_context"):
            require(getattr(self, name) >= 0, name, f"must be ≥ 0, got {getattr(self, name)}")

    def units_for(self, frames: int) -> int:
        """Units to fit on `frames` frames: `units`, halved while fewer than min_frames_per_unit
        frames per unit remain (never below 2)."""
        units = self.units
        while units > 2 and frames < units * self.min_frames_per_unit:
            units //= 2
        return units


@dataclass(frozen=True)
class LoraSettings:
    """A peft LoRA adapter (training/stages/lora.py)."""

    r: int = 32
    """Rank of the update (the paper: 32)."""
    alpha: float = 32.0
    """Scale numerator: the update is multiplied by alpha / r (the paper: 32)."""
    dropout: float = 0.0
    """Dropout on the adapter's input."""
    target_modules: tuple[str, ...] = LLAMA_LORA_TARGETS
    """Names of the linear layers that get an adapter."""

    def __post_init__(self) -> None:
        require(self.r >= 1, "r", f"must be ≥ 1, got {self.r}")
        require(self.alpha > 0, "alpha", f"must be > 0, got {self.alpha}")
        require(0.0 <= self.dropout < 1.0, "dropout", "must lie in [0, 1)")
        require(len(self.target_modules) > 0, "target_modules", "must name at least one module")


@dataclass(frozen=True)
class Stage0Config:
    """Stage 0: train the LM from scratch on the whole domain as text chat (text in, text out),
    held-out content included, before it hears any speech (the demo-domain page)."""

    enabled: bool = False
    """True: run stage 0; stage 1 then starts from its model and tokenizer."""
    steps: int = 1
    """Optimizer steps."""
    dialogues: int = 1000
    """Text dialogues the corpus's `text` split holds."""
    lr: float | None = None
    """Peak learning rate; None uses training.lr."""

    def __post_init__(self) -> None:
        require(self.steps >= 1, "steps", f"must be ≥ 1, got {self.steps}")
        require(self.dialogues >= 1, "dialogues", f"must be ≥ 1, got {self.dialogues}")
        require(self.lr is None or self.lr > 0, "lr", "must be > 0 or null")


@dataclass(frozen=True)
class Stage1Config:
    """Stage 1: train the explicit A-T-T-A chain (transcript, reply text, reply speech)."""

    steps: int
    """Optimizer steps."""
    enabled: bool = True
    """False skips stage 1 (the base model must already speak A-T-T-A)."""
    method: Literal["full", "lora"] = "full"
    """full: train every weight; lora: train an adapter and merge it after the stage."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    """The adapter when method is lora."""
    lr: float | None = None
    """Peak learning rate; None uses training.lr."""
    typed_share: float = 0.0
    """Share of turns rendered as typed questions (text in, reply text and speech out), so
    that the bundles answer typed words too."""

    def __post_init__(self) -> None:
        require(self.steps >= 1, "steps", f"must be ≥ 1, got {self.steps}")
        require(self.lr is None or self.lr > 0, "lr", "must be > 0 or null")
        require(0.0 <= self.typed_share <= 1.0, "typed_share", "must lie in [0, 1]")


@dataclass(frozen=True)
class Stage2Config:
    """Stage 2, ICoT: remove the transcript stepwise until the model answers A-T-A."""

    steps_per_removal: int = 2500
    """T: optimizer steps between removals; k = step // T + 1 + offset (the paper: 2,500)."""
    removal_lambda: float = 4.0
    """λ of the removal smoothing P(o) = (1 − e^−λ) e^−λo; .inf turns smoothing off."""
    max_offset: int | None = None
    """Truncate the smoothing offset to 0..max_offset; null leaves it untruncated."""
    extra_steps: int = 0
    """Optimizer steps after the whole transcript is gone (pure A-T-A training)."""
    enabled: bool = True
    """False stops after stage 1."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    """The adapter trained on top of the frozen stage-1 model."""
    kl_weight: float = 0.0
    """Weight of KL(teacher ‖ student) on the reply-speech logits, teacher = the frozen stage-1
    model reading the full A-T-T-A example; 0 skips the teacher (the paper's code: 50)."""
    kl_temperature: float = 1.0
    """Softmax temperature of the KL term (the loss is scaled by its square)."""
    lr: float | None = None
    """Peak learning rate; None uses training.lr."""
    reset_optimizer: bool = True
    """Rebuild the optimizer each time k grows (stepwise internalization does)."""

    def __post_init__(self) -> None:
        require(self.steps_per_removal >= 1, "steps_per_removal", "must be ≥ 1")
        require(self.removal_lambda > 0, "removal_lambda", "must be > 0 (.inf: no smoothing)")
        require(self.max_offset is None or self.max_offset >= 0, "max_offset",
                "must be ≥ 0 or null")
        require(self.extra_steps >= 0, "extra_steps", "must be ≥ 0")
        require(math.isfinite(self.kl_weight) and self.kl_weight >= 0, "kl_weight", "must be ≥ 0")
        require(self.kl_temperature > 0, "kl_temperature", "must be > 0")
        require(self.lr is None or self.lr > 0, "lr", "must be > 0 or null")

    def schedule(self) -> RemovalSchedule:
        """The removal schedule these settings describe."""
        return RemovalSchedule(self.steps_per_removal, self.removal_lambda, self.max_offset)


@dataclass(frozen=True)
class BaselinesConfig:
    """The paper's comparison models, each a LoRA adapter like stage 2's."""

    no_cot_ata: bool = False
    """A-T-A without the ASR chain of thought. With stage 0: trained from the stage-0 model on
    A-T-A targets as stage 1 trains (same steps, method and learning rate), then an adapter as
    stage 2 trains (same steps and schedule), so it gets the ICoT arm's whole budget. Without
    stage 0: an adapter on the stage-1 model."""
    no_cot_steps: int | None = None
    """Its adapter's optimizer steps; None: as many as stage 2 takes, for a like-for-like
    comparison."""
    aa_icot: bool = False
    """Continue stage 2's adapter past the transcript: remove the reply text the same way
    (same T and λ) until the model answers A-A."""

    def __post_init__(self) -> None:
        require(self.no_cot_steps is None or self.no_cot_steps >= 1, "no_cot_steps",
                "must be ≥ 1 or null")


@dataclass(frozen=True)
class TrainingConfig:
    """Optimization and bookkeeping shared by every stage."""

    batch_size: int
    """Examples per process per micro-batch."""
    lr: float
    """Peak learning rate (AdamW), reached after warmup, then held or decayed (`lr_schedule`)."""
    checkpoint_every: int
    """Save a resumable checkpoint every this many optimizer steps."""
    log_every: int
    """Log loss, k and learning rate every this many optimizer steps."""
    output_dir: str
    """Run directory: checkpoints, logs and a fitted codec."""
    grad_accum: int = 1
    """Micro-batches per optimizer step (effective batch = batch_size · grad_accum · processes)."""
    warmup_steps: int = 0
    """Linear warmup from 0 at the start of each stage and after each optimizer reset."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """After warmup: hold the peak, or follow a half cosine over each stage's steps down to
    `min_lr_ratio` of the peak (annealing is what turns a still-rising accuracy curve into a
    settled model within a fixed step budget)."""
    min_lr_ratio: float = 0.1
    """The cosine schedule's floor, as a fraction of the peak learning rate."""
    grad_clip: float | None = 1.0
    """Clip the gradient norm to this (the paper's code: 50); null: no clipping."""
    max_steps: int | None = None
    """Cap on optimizer steps per stage, for dry runs; null runs every stage to its length."""
    seed: int = 0
    """Seeds data order, removal offsets and initialization."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Training precision (bfloat16 for AnyGPT on GPUs)."""
    mixed_precision: Literal["bf16"] | None = None
    """`bf16`: autocast the forward pass to bfloat16 while weights, optimizer state and losses
    stay in `dtype` (accelerate's mixed precision, fixed once per process). On a CPU with
    AVX512-BF16 a demo stage-1 step takes 0.36 s instead of 0.74 s; on GPUs it is the usual bf16
    mixed precision. null: no autocast (the demo recipe: its shipped bundles are float32 runs)."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "grad_accum", "checkpoint_every", "log_every"):
            require(getattr(self, name) >= 1, name, f"must be ≥ 1, got {getattr(self, name)}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(self.warmup_steps >= 0, "warmup_steps", "must be ≥ 0")
        require(self.weight_decay >= 0, "weight_decay", "must be ≥ 0")
        require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]")
        require(self.grad_clip is None or self.grad_clip > 0, "grad_clip", "must be > 0 or null")
        require(self.max_steps is None or self.max_steps >= 1, "max_steps", "must be ≥ 1 or null")
        require(bool(self.output_dir), "output_dir", "must be a directory path")


@dataclass(frozen=True)
class ExportConfig:
    """Where the trained models are written as bundles (model/bundle.py); null skips one."""

    cot_bundle: str | None = None
    """The stage-1 A-T-T-A bundle."""
    icot_bundle: str | None = None
    """The stage-2 A-T-A bundle (stage-1 weights + the ICoT adapter)."""
    baselines_dir: str | None = None
    """Parent directory of the baselines' bundles, one subdirectory each."""


@dataclass(frozen=True)
class Recipe:
    """One training run, end to end."""

    name: str
    """Short name, used in logs and run directories."""
    description: str
    """What the recipe is for and what it costs."""
    data: DataConfig
    model: ModelConfig
    stage1: Stage1Config
    training: TrainingConfig
    stage0: Stage0Config = field(default_factory=Stage0Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    unit_codec: UnitCodecFit = field(default_factory=UnitCodecFit)

    def __post_init__(self) -> None:
        require(bool(self.name), "name", "must not be empty")
        if self.model.base_model is None:
            require(self.stage1.enabled and self.stage1.method == "full", "stage1.method",
                    "a model built from scratch needs stage 1 enabled with method full")
        if self.stage0.enabled:
            require(self.data.source == "demo" and self.model.base_model is None,
                    "stage0.enabled", "stage 0 trains a model from scratch on the demo domain's "
                    "text: it needs data.source demo and no model.base_model")
        if self.data.source == "soda":
            require(self.model.codec_kind == "speechtokenizer", "model.codec_kind",
                    "SODA-TTS units are SpeechTokenizer layer-1 units: use speechtokenizer")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, not tuples) that `recipe_from_dict` reads back."""
        return to_data(self)
