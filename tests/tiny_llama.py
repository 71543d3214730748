"""A tiny random Llama and the engine around it, shared by the engine tests on CPU and on CUDA.

The model has 2 GQA layers and a large init range, so its logits are peaked and greedy argmax is
never a near-tie: token-for-token comparisons (engine against transformers, graphs against eager)
are exact rather than lucky.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from model.engine import Engine, EngineConfig, Request

VOCAB = 300


def tiny_config(**overrides) -> LlamaConfig:
    """The 2-layer GQA Llama's config, with `overrides` applied."""
    values = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=0.3,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=0,
    )
    values.update(overrides)
    return LlamaConfig(**values)


def save_model(directory: Path, config: LlamaConfig, seed: int = 0) -> Path:
    """Random weights for `config`, seeded, saved as a Hugging Face model directory."""
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def make_engine(model_dir: Path, device: str = "cpu", **config) -> Engine:
    """An engine with 4 slots of 128 tokens, 16-token prefill chunks; `config` overrides."""
    values = dict(max_slots=4, max_seq_len=128, prefill_chunk_tokens=16, attention_block_tokens=32)
    values.update(config)
    return Engine.from_pretrained(model_dir, EngineConfig(**values), device=device)


def prompt(length: int, seed: int) -> tuple[int, ...]:
    """`length` random token ids (never the pad id 0), the same for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randint(1, VOCAB, (length,), generator=generator).tolist())


def run(engine: Engine, *requests: Request) -> list[list[int]]:
    """Submit all requests at once and drive the engine synchronously to the end."""
    handles = [engine.submit(request) for request in requests]
    engine.run_until_idle()
    return [handle.tokens for handle in handles]
