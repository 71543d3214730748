"""Bundles: the directory a server loads — bundle.json, a causal LM with its tokenizer, an optional
LoRA adapter (merged at load) and a speech codec. Reads and writes them (docs/bundles.md).

Everything that can be wrong with a bundle is found by `Bundle.load` before any request and
raised as one `BundleError` whose message names the file and the field, cheapest checks first
(bundle.json, paths, tokenizer, codec, vocabulary sizes) so a bad bundle fails in seconds, before
the weights load. `write_bundle` is the one way training/ and the tests produce bundles. Knows
nothing of the engine, the server or training.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from model.chain import Chain
from model.codecs import CODEC_CLASSES, SpeechCodec, load_codec
from model.config_loader import ConfigError, FieldError, from_data, required_in_file, to_data
from model.parser import ChainParser
from model.sampling import SamplingParams
from model.speech_tokens import MissingTokenError, SpeechVocab
from model.template import Template

BUNDLE_FILE = "bundle.json"
FORMAT = "icot-bundle/1"
TEMPLATES = ("anygpt",)
ADAPTER_CONFIG_FILE = "adapter_config.json"
LLM_CONFIG_FILE = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")
# the authors' inference settings (research notes): temperature 0.7, top-p 0.8, penalty 1.05
DEFAULT_SAMPLING = SamplingParams(temperature=0.7, top_p=0.8, repetition_penalty=1.05)
DEFAULT_MAX_NEW_TOKENS = 2048


class BundleError(ValueError):
    """A bundle that cannot be served; the message names the file and the field at fault."""


@dataclass(frozen=True)
class CodecRef:
    """Which codec turns units into audio: `kind` as registered in model.codecs, and the
    directory holding its files, relative to the bundle."""

    kind: str
    path: str

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in CODEC_CLASSES:
            raise FieldError("kind", f"unknown codec kind {self.kind!r}; known kinds: "
                                           f"{', '.join(CODEC_CLASSES)}")
        _check_path("path", self.path)


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling defaults of the bundle's model.

    text: sampling outside speech segments (transcript, reply text).
    speech: sampling inside `<sosp>…<eosp>` (units).
    max_new_tokens: the most tokens one reply may generate; the prompt gets the rest of the
        model's context.
    seed: the sampling seed of requests that set none; null draws a fresh seed per request.
    """

    text: SamplingParams = DEFAULT_SAMPLING
    speech: SamplingParams = DEFAULT_SAMPLING
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    seed: int | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.max_new_tokens) or self.max_new_tokens < 1:
            raise FieldError("max_new_tokens",
                             f"must be an integer ≥ 1, got {self.max_new_tokens!r}")
        if self.seed is not None and (not _is_int(self.seed) or not 0 <= self.seed < 2**63):
            raise FieldError("seed",
                             f"must be null or an integer in [0, 2**63), got {self.seed!r}")


@dataclass(frozen=True)
class BundleConfig:
    """The content of bundle.json (docs/bundles.md describes each field).

    chain: the answer chain the model was trained for (A-T-T-A, A-T-A, A-A).
    codec: the codec the speech units belong to.
    llm: directory of the Hugging Face causal LM and its tokenizer, relative to the bundle.
    adapter: directory of a peft LoRA adapter merged into the LM at load, or None.
    template: the prompt template; only "anygpt" (model/template.py) exists.
    generation: sampling defaults.
    input_level_dbfs: [low, high], the speech levels (model/audio/level.py) of the user turns the
        model was trained on; a user turn outside is scaled onto the nearer edge before encoding.
        None: user audio is encoded as it comes (e.g. a pretrained model that heard all levels).
    format: the bundle format version this file is written in.
    """

    chain: Chain
    codec: CodecRef
    llm: str = required_in_file("llm")
    adapter: str | None = None
    template: str = "anygpt"
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    input_level_dbfs: tuple[float, ...] | None = None  # a pair: (low, high)
    format: str = required_in_file(FORMAT)

    def __post_init__(self) -> None:
        if not isinstance(self.format, str) or self.format != FORMAT:
            raise FieldError("format", f"unknown bundle format {self.format!r}; this version "
                                       f"reads {FORMAT!r}")
        if not isinstance(self.chain, str):
            raise FieldError("chain", f"expected a string such as 'A-T-A', got {self.chain!r}")
        try:
            object.__setattr__(self, "chain", Chain.parse(self.chain))
        except ValueError as exc:
            raise FieldError("chain", str(exc)) from None
        if not isinstance(self.template, str) or self.template not in TEMPLATES:
            raise FieldError("template", f"unknown template {self.template!r}; known: "
                                         f"{', '.join(TEMPLATES)}")
        _check_path("llm", self.llm)
        if self.adapter is not None:
            _check_path("adapter", self.adapter)
        if self.input_level_dbfs is not None:
            object.__setattr__(self, "input_level_dbfs", _level_range(self.input_level_dbfs))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = BUNDLE_FILE) -> BundleConfig:
        """Build from parsed bundle.json; any problem is a ConfigError naming source and field."""
        return from_data(cls, data, source=source)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object bundle.json holds (format first)."""
        data = to_data(self)
        return {"format": data.pop("format"), **data}


def _level_range(value: Any) -> tuple[float, float]:
    """[low, high] in dBFS with low < high ≤ 0, as a tuple of floats."""
    numbers = (isinstance(value, list | tuple) and len(value) == 2
               and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value))
    if not numbers or not value[0] < value[1] <= 0:
        raise FieldError("input_level_dbfs",
                         f"must be null or [low, high] in dBFS with low < high ≤ 0, got {value!r}")
    return float(value[0]), float(value[1])


def read_config(directory: str | Path) -> BundleConfig:
    """Read and validate `directory`/bundle.json; errors are BundleErrors naming file and field."""
    path = Path(directory) / BUNDLE_FILE
    if not Path(directory).is_dir():
        raise BundleError(f"{directory}: no such bundle directory")
    if not path.is_file():
        raise BundleError(f"{path}: missing; a bundle directory needs a {BUNDLE_FILE}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BundleError(f"{path}: expected a JSON object, got {type(data).__name__}")
    try:
        return BundleConfig.from_dict(data, source=str(path))
    except ConfigError as exc:
        raise BundleError(f"{path}: field '{exc.field}': {exc.message}") from None


@dataclass
class Bundle:
    """A loaded bundle: everything a server needs to answer with the bundle's model."""

    directory: Path
    config: BundleConfig
    tokenizer: Any
    model: Any  # a transformers causal LM, adapter merged, in eval mode
    codec: SpeechCodec
    vocab: SpeechVocab
    template: Template

    @property
    def chain(self) -> Chain:
        return self.config.chain

    @property
    def context_tokens(self) -> int:
        """The model's context length (prompt + generated tokens)."""
        return int(self.model.config.max_position_embeddings)

    @property
    def prompt_budget(self) -> int:
        """The most prompt tokens, leaving room for `generation.max_new_tokens`."""
        return self.context_tokens - self.config.generation.max_new_tokens

    def parser(self) -> ChainParser:
        """A fresh parser for one reply of this bundle's chain."""
        return ChainParser(self.vocab, self.chain)

    @classmethod
    def load(
        cls,
        directory: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str | None = None,
    ) -> Bundle:
        """Load and check a bundle. dtype: None means float32 on CPU, bfloat16 elsewhere."""
        directory = Path(directory)
        config = read_config(directory)
        json_path = directory / BUNDLE_FILE
        llm_dir = _existing_dir(directory, config.llm, "llm", json_path)
        if not (llm_dir / LLM_CONFIG_FILE).is_file():
            raise BundleError(f"{llm_dir / LLM_CONFIG_FILE}: missing; field 'llm' of {json_path} "
                              "must name a Hugging Face model directory")
        if not any(llm_dir.glob("*.safetensors")):
            raise BundleError(f"{llm_dir}: no *.safetensors weights (field 'llm' of {json_path})")
        adapter_dir = None
        if config.adapter is not None:
            adapter_dir = _existing_dir(directory, config.adapter, "adapter", json_path)
            if not (adapter_dir / ADAPTER_CONFIG_FILE).is_file():
                raise BundleError(f"{adapter_dir / ADAPTER_CONFIG_FILE}: missing; field 'adapter' "
                                  f"of {json_path} must name a peft LoRA adapter directory")
        codec_dir = _existing_dir(directory, config.codec.path, "codec.path", json_path)

        tokenizer = _load_tokenizer(llm_dir, json_path)
        try:
            codec = load_codec(config.codec.kind, codec_dir)
        except Exception as exc:  # noqa: BLE001 - any failure of a codec's loader is reported
            raise BundleError(f"{codec_dir}: could not load the {config.codec.kind!r} codec "
                              f"({exc}); fields 'codec.kind'/'codec.path' of {json_path}") from exc
        vocab = _speech_vocab(tokenizer, codec, llm_dir, json_path)
        llm_config = _llm_config(llm_dir)
        _check_sizes(llm_config, len(tokenizer), config, llm_dir, json_path)

        model = _load_model(llm_dir, _resolve_dtype(dtype, device))
        if adapter_dir is not None:
            model = _merge_adapter(model, adapter_dir, json_path)
        model.to(device).eval()
        return cls(directory, config, tokenizer, model, codec, vocab, Template(vocab))


def write_bundle(
    directory: str | Path,
    config: BundleConfig,
    model: Any = None,
    tokenizer: Any = None,
    codec: SpeechCodec | None = None,
    adapter: Any = None,
) -> Path:
    """Write a bundle: the LM and tokenizer into `config.llm`, the codec into `config.codec.path`,
    a peft model's adapter into `config.adapter`, then bundle.json.

    Parts passed as None must already exist at their paths, so a bundle can share another's LM
    (`llm: "../demo-cot/llm"`) or codec and carry only its adapter. bundle.json is written last
    and atomically, so a directory with one is complete.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    llm_dir = directory / config.llm
    if model is not None:
        model.save_pretrained(llm_dir)
    if tokenizer is not None:
        tokenizer.save_pretrained(llm_dir)
    if not (llm_dir / LLM_CONFIG_FILE).is_file():
        raise ValueError(f"{llm_dir}: no model there; pass `model` or point `llm` at an LM")
    if not any((llm_dir / name).is_file() for name in TOKENIZER_FILES):
        raise ValueError(f"{llm_dir}: no tokenizer there; pass `tokenizer`")
    codec_dir = directory / config.codec.path
    if codec is not None:
        codec.save(codec_dir)
    if not codec_dir.is_dir():
        raise ValueError(f"{codec_dir}: no codec there; pass `codec`")
    if adapter is not None:
        if config.adapter is None:
            raise ValueError("an adapter was given but config.adapter is None")
        adapter.save_pretrained(directory / config.adapter)
    adapter_dir = None if config.adapter is None else directory / config.adapter
    if adapter_dir is not None and not (adapter_dir / ADAPTER_CONFIG_FILE).is_file():
        raise ValueError(f"{adapter_dir}: no adapter there; pass `adapter`")
    tmp = directory / (BUNDLE_FILE + ".tmp")
    tmp.write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, directory / BUNDLE_FILE)
    return directory


# ---- loading steps -------------------------------------------------------------------------


def _existing_dir(directory: Path, relative: str, field_path: str, json_path: Path) -> Path:
    path = directory / relative
    if not path.is_dir():
        raise BundleError(f"{json_path}: field '{field_path}': no directory at {path}")
    return path


def _tokenizer_file(llm_dir: Path) -> Path:
    return next((llm_dir / n for n in TOKENIZER_FILES if (llm_dir / n).is_file()), llm_dir)


def _load_tokenizer(llm_dir: Path, json_path: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(llm_dir)
    except Exception as exc:  # noqa: BLE001 - transformers raises many kinds here
        raise BundleError(f"{_tokenizer_file(llm_dir)}: could not load the tokenizer ({exc}); "
                          f"field 'llm' of {json_path}") from exc


def _speech_vocab(
    tokenizer: Any, codec: SpeechCodec, llm_dir: Path, json_path: Path
) -> SpeechVocab:
    try:
        return SpeechVocab(tokenizer, n_units=codec.vocab_size)
    except MissingTokenError as exc:
        raise BundleError(
            f"{_tokenizer_file(llm_dir)}: {exc}; the codec (field 'codec.kind' of {json_path}) "
            f"makes {codec.vocab_size} units, so the tokenizer needs <🗣️0>…<🗣️"
            f"{codec.vocab_size - 1}> and the AnyGPT markers"
        ) from None


def _llm_config(llm_dir: Path) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(llm_dir)
    except Exception as exc:  # noqa: BLE001
        raise BundleError(
            f"{llm_dir / LLM_CONFIG_FILE}: not a usable model config ({exc})"
        ) from exc


def _check_sizes(llm_config: Any, tokenizer_size: int, config: BundleConfig, llm_dir: Path,
                 json_path: Path) -> None:
    vocab_size = getattr(llm_config, "vocab_size", None)
    if not isinstance(vocab_size, int) or vocab_size < tokenizer_size:
        raise BundleError(f"{llm_dir / LLM_CONFIG_FILE}: field 'vocab_size' is {vocab_size}, "
                          f"fewer than the tokenizer's {tokenizer_size} tokens")
    context = getattr(llm_config, "max_position_embeddings", None)
    if not isinstance(context, int) or context <= config.generation.max_new_tokens:
        raise BundleError(f"{json_path}: field 'generation.max_new_tokens' is "
                          f"{config.generation.max_new_tokens}, leaving no room for a prompt in "
                          f"the model's context of {context} (field 'max_position_embeddings' "
                          f"of {llm_dir / LLM_CONFIG_FILE})")


def _resolve_dtype(dtype: torch.dtype | str | None, device: str | torch.device) -> torch.dtype:
    if dtype is None:
        return torch.float32 if torch.device(device).type == "cpu" else torch.bfloat16
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype, None)
        if not isinstance(resolved, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r} (e.g. 'float32', 'bfloat16')")
        return resolved
    return dtype


def _load_model(llm_dir: Path, dtype: torch.dtype) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(llm_dir, dtype=dtype)
    except Exception as exc:  # noqa: BLE001
        raise BundleError(f"{llm_dir}: could not load the model weights ({exc})") from exc


def _merge_adapter(model: Any, adapter_dir: Path, json_path: Path) -> Any:
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    except Exception as exc:  # noqa: BLE001
        raise BundleError(f"{adapter_dir / ADAPTER_CONFIG_FILE}: could not merge the adapter "
                          f"({exc}); field 'adapter' of {json_path}") from exc


# ---- bundle.json validation helpers ----------------------------------------------------------


def _check_path(field_path: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise FieldError(field_path, f"expected a non-empty path string, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
