"""Stage 1: train the explicit A-T-T-A chain (transcript, reply text, reply speech).

The model is either built from scratch (a small Llama over a word tokenizer of the corpus's
words and the codec's units, the demo) or loaded from a local Hugging Face directory (AnyGPT),
then trained fully or through a LoRA adapter merged at the end. The loss covers each turn's
assistant part: everything after the A-T-T-A prompt's `<-Res->` (docs/training.md says why).
Output: `stage1/final/model`, a Hugging Face model directory with its tokenizer. Knows nothing of
stage 2, bundles or evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from model.speech_tokens import SpeechVocab
from training.config import ModelConfig
from training.data.shards import Corpus
from training.stages.context import StageContext, pad_id
from training.stages.loop import StageSpec
from training.stages.lora import add_lora
from training.stages.monitor import teacher_forced
from training.stages.stream import iter_turns
from training.word_tokenizer import build_word_tokenizer

COT = "stage1"
VOCAB_MULTIPLE = 16  # embedding rows rounded up to a multiple of this (friendlier matmul shapes)


def corpus_words(corpus: Corpus) -> list[str]:
    """Every transcript and reply text of the training split: the from-scratch vocabulary."""
    words: set[str] = set()
    for turn in iter_turns(corpus, "train", max_history=0):
        words.update(turn.transcript.split())
        words.update(turn.reply_text.split())
    return sorted(words)


def build_scratch_model(config: ModelConfig, tokenizer: Any, seed: int) -> LlamaForCausalLM:
    """A randomly initialized Llama of the recipe's shape over `tokenizer` (seeded)."""
    vocab = SpeechVocab(tokenizer)
    llm_config = LlamaConfig(
        vocab_size=-(-len(tokenizer) // VOCAB_MULTIPLE) * VOCAB_MULTIPLE,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=config.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=vocab.markers.end_of_assistant,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(llm_config)


def initial_model(ctx: StageContext) -> tuple[Any, Any]:
    """(model, tokenizer) stage 1 starts from: the base model, or a fresh one from scratch."""
    config = ctx.recipe.model
    if config.base_model is not None:
        tokenizer = AutoTokenizer.from_pretrained(config.base_model)
        SpeechVocab(tokenizer, n_units=ctx.n_units)  # fails early, naming a missing token
        model = AutoModelForCausalLM.from_pretrained(config.base_model, dtype=ctx.dtype)
        return model, tokenizer
    tokenizer = build_word_tokenizer(corpus_words(ctx.corpus), ctx.n_units)
    model = build_scratch_model(config, tokenizer, ctx.recipe.training.seed)
    return model.to(ctx.dtype), tokenizer


def context_tokens(model: Any) -> int:
    return int(model.config.max_position_embeddings)


def train_cot(ctx: StageContext) -> Path:
    """Run stage 1 (or skip it when finished); returns the final model directory."""
    out = ctx.final_dir(COT) / "model"
    if ctx.is_done(COT):
        return out
    stage1 = ctx.recipe.stage1
    model, tokenizer = initial_model(ctx)
    ctx.seed(COT)
    if stage1.method == "lora":
        model = add_lora(model, stage1.lora)
    renderer = ctx.renderer(tokenizer, context_tokens(model))
    dev = [renderer.atta(turn) for turn in ctx.monitor_turns()]
    pad = pad_id(tokenizer)
    every = ctx.recipe.training.checkpoint_every
    spec = StageSpec(
        name=COT,
        steps=stage1.steps,
        lr=stage1.lr or ctx.recipe.training.lr,
        render=lambda turn, step, rng: renderer.atta(turn),
        monitor=lambda m, step: teacher_forced(m, dev, pad, ctx.accelerator.device),
        monitor_due=lambda step: step > 0 and step % every == 0,
    )
    result = ctx.run(spec, model, tokenizer)
    trained = result.model
    if stage1.method == "lora":
        trained = trained.merge_and_unload()
    if ctx.main:
        trained.save_pretrained(out)
        tokenizer.save_pretrained(out)
    ctx.mark_done(COT)
    return out
