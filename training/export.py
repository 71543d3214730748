"""Export trained stages as bundles (docs/bundles.md) through model/bundle.py's `write_bundle`.

The stage-1 model becomes a full bundle (A-T-T-A: llm/, codec/, bundle.json). Every adapter
stage (ICoT A-T-A, the baselines) becomes a bundle holding only its LoRA adapter, whose `llm`
and `codec` point at the stage-1 bundle by relative path (`../demo-cot/llm`), so the two demo
bundles share one copy of the weights and move together. Generation defaults are chosen here
(`generation_config`). Knows nothing of training loops or evaluation.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from model.bundle import (
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_SAMPLING,
    BundleConfig,
    CodecRef,
    GenerationConfig,
    write_bundle,
)
from model.chain import Chain
from model.codecs import SpeechCodec
from model.sampling import GREEDY

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
MAX_NEW_TOKENS_MARGIN = 1.25  # room above the longest reply seen in training
MAX_NEW_TOKENS_MULTIPLE = 16
GENERATION_SEED = 0


def generation_config(from_scratch: bool, context_tokens: int,
                      longest_target_tokens: int | None = None) -> GenerationConfig:
    """Sampling defaults for bundle.json.

    A model trained from scratch on the closed demo domain learned one right answer per turn and
    one unit sequence per reply (the assistant voice never varies), so it decodes greedily, and
    may generate 1.25 × the longest target it was trained on. A pretrained base (AnyGPT) keeps
    the authors' inference settings (temperature 0.7, top-p 0.8, repetition penalty 1.05) and
    their 2,048 new tokens. Either way at most half the context goes to the reply.
    """
    half = context_tokens // 2
    if not from_scratch:
        return GenerationConfig(DEFAULT_SAMPLING, DEFAULT_SAMPLING,
                                min(DEFAULT_MAX_NEW_TOKENS, half))
    if longest_target_tokens is None or longest_target_tokens < 1:
        raise ValueError("a from-scratch model needs the longest training target's length")
    wanted = longest_target_tokens * MAX_NEW_TOKENS_MARGIN
    rounded = int(-(-wanted // MAX_NEW_TOKENS_MULTIPLE) * MAX_NEW_TOKENS_MULTIPLE)
    return GenerationConfig(GREEDY, GREEDY, min(rounded, half), seed=GENERATION_SEED)


def export_cot_bundle(
    directory: str | Path,
    model_dir: str | Path,
    codec: SpeechCodec,
    codec_kind: str,
    generation: GenerationConfig,
    input_level_dbfs: tuple[float, float] | None = None,
    chain: Chain = Chain.ATTA,
) -> Path:
    """The stage-1 model (a Hugging Face directory with its tokenizer) as a full bundle of
    `chain` (the no-CoT baseline's own model: A-T-A); `input_level_dbfs`: the training user
    turns' speech level range (None: not known)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = BundleConfig(chain=chain, codec=CodecRef(codec_kind, "codec"), llm="llm",
                          generation=generation, input_level_dbfs=input_level_dbfs)
    return write_bundle(directory, config, model, tokenizer, codec)


def export_adapter_bundle(
    directory: str | Path,
    chain: Chain,
    cot_bundle: str | Path,
    adapter_dir: str | Path,
    generation: GenerationConfig,
) -> Path:
    """An adapter stage as a bundle over the stage-1 bundle's LM and codec (relative paths),
    with its input level range."""
    directory, cot_bundle = Path(directory).resolve(), Path(cot_bundle).resolve()
    cot = BundleConfig.from_dict(json.loads((cot_bundle / "bundle.json").read_text()))
    llm = os.path.relpath(cot_bundle / cot.llm, directory)
    codec_path = os.path.relpath(cot_bundle / cot.codec.path, directory)
    target = directory / "adapter"
    target.mkdir(parents=True, exist_ok=True)
    for name in ADAPTER_FILES:
        shutil.copyfile(Path(adapter_dir) / name, target / name)
    _point_adapter_at(target / ADAPTER_FILES[0], llm)
    config = BundleConfig(chain=chain, codec=CodecRef(cot.codec.kind, codec_path), llm=llm,
                          adapter="adapter", generation=generation,
                          input_level_dbfs=cot.input_level_dbfs)
    return write_bundle(directory, config)


def _point_adapter_at(config_path: Path, llm: str) -> None:
    """peft records the training run's absolute base-model path; ship the bundle's instead."""
    data: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
    data["base_model_name_or_path"] = llm
    config_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
