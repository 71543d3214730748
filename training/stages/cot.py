"""Stage 1: train the explicit A-T-T-A chain (transcript, reply text, reply speech).

The model is the stage-0 model (text chat, training/stages/text.py), or built from scratch (a
small Llama over a word tokenizer of the corpus's words and the codec's units), or loaded from a
local Hugging Face directory (AnyGPT), then trained fully or through a LoRA adapter merged at
the end. The loss covers each turn's assistant part: everything after the A-T-T-A prompt's
`<-Res->` (docs/training.md says why); `stage1.typed_share` of the turns are typed questions
instead. The no-CoT baseline's first part (`no_cot_base`) trains the same way on A-T-A targets.
Output: `{stage}/final/model`, a Hugging Face model directory with its tokenizer. Knows nothing
of stage 2, bundles or evaluation.
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
NO_COT_BASE = "no_cot_base"
VOCAB_MULTIPLE = 16  # embedding rows rounded up to a multiple of this (friendlier matmul shapes)


def corpus_words(corpus: Corpus) -> list[str]:
    """Every transcript and reply text of the training and text splits: the from-scratch
    vocabulary."""
    words: set[str] = set()
    splits = [split for split in ("train", "text") if split in corpus.splits]
    for turn in (t for split in splits for t in iter_turns(corpus, split, max_history=0)):
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


def initial_model(ctx: StageContext, start_dir: Path | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) a full stage starts from: `start_dir` (the stage-0 model), the base
    model, or a fresh one from scratch."""
    config = ctx.recipe.model
    if start_dir is not None or config.base_model is not None:
        directory = start_dir if start_dir is not None else config.base_model
        tokenizer = AutoTokenizer.from_pretrained(directory)
        SpeechVocab(tokenizer, n_units=ctx.n_units)  # fails early, naming a missing token
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=ctx.dtype)
        return model, tokenizer
    tokenizer = build_word_tokenizer(corpus_words(ctx.corpus), ctx.n_units)
    model = build_scratch_model(config, tokenizer, ctx.recipe.training.seed)
    return model.to(ctx.dtype), tokenizer


def context_tokens(model: Any) -> int:
    return int(model.config.max_position_embeddings)


def train_cot(ctx: StageContext, start_dir: Path | None = None) -> Path:
    """Run stage 1 from `start_dir` (the stage-0 model; None: base or scratch), or skip it when
    finished; returns the final model directory."""
    return _train_full(ctx, COT, start_dir, "atta")


def train_no_cot_base(ctx: StageContext, start_dir: Path) -> Path:
    """The no-CoT baseline's first part: stage 1's training on A-T-A targets, from the stage-0
    model; returns the final model directory."""
    return _train_full(ctx, NO_COT_BASE, start_dir, "ata")


def _train_full(ctx: StageContext, name: str, start_dir: Path | None, chain: str) -> Path:
    """Stage 1's settings (steps, method, learning rate, typed share) on the renderer's `chain`
    examples (`atta` or `ata`)."""
    out = ctx.final_dir(name) / "model"
    if ctx.is_done(name):
        return out
    stage1 = ctx.recipe.stage1
    model, tokenizer = initial_model(ctx, start_dir)
    ctx.seed(name)
    if stage1.method == "lora":
        model = add_lora(model, stage1.lora)
    renderer = ctx.renderer(tokenizer, context_tokens(model))
    spoken = getattr(renderer, chain)
    dev = [spoken(turn) for turn in ctx.monitor_turns()]
    pad = pad_id(tokenizer)
    every = ctx.recipe.training.checkpoint_every
    share = stage1.typed_share
    spec = StageSpec(
        name=name,
        steps=stage1.steps,
        lr=stage1.lr or ctx.recipe.training.lr,
        render=lambda turn, step, rng: (renderer.typed(turn) if rng.random() < share
                                        else spoken(turn)),
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
    ctx.mark_done(name)
    return out
