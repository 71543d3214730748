"""A tiny random AnyGPT-format bundle for tests and benchmarks: seconds to build, no download.

A 2-layer Llama (hidden 64, grouped-query attention) with random weights, the word tokenizer of
training/word_tokenizer.py (all AnyGPT markers and `n_units` speech tokens) and a small random
codec, written with `write_bundle`, so it loads exactly like a trained bundle. Its replies are
noise; what it exercises is every code path from bundle.json to audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from model.bundle import BundleConfig, CodecRef, GenerationConfig, write_bundle
from model.chain import Chain
from model.codecs import SpeechCodec
from training.word_tokenizer import build_word_tokenizer

TINY_LAYERS = 2
TINY_HIDDEN = 64
TINY_HEADS = 4
TINY_KV_HEADS = 2  # grouped-query attention, as in the large models the engine targets
TINY_FFN = 128
TINY_CONTEXT_TOKENS = 1024
TINY_MAX_NEW_TOKENS = 256
EMBEDDING_MULTIPLE = 16  # embeddings padded past the tokenizer, as released checkpoints often are


def build_tiny_bundle(
    directory: str | Path,
    chain: str | Chain = "A-T-A",
    codec_kind: str = "speechtokenizer",
    n_units: int = 64,
    seed: int = 0,
    words: Sequence[str] = (),
) -> Path:
    """Write a tiny random bundle into `directory` and return it.

    codec_kind: "speechtokenizer" (a small random SpeechTokenizer with `n_units` codes) or
        "units" (the unit codec, fitted on a few seconds of seeded noise).
    words: extra words that become single tokens (e.g. the demo domain's); anything else is
        spelled in letters.
    Same arguments, same files: the model, codec and tokenizer depend only on them.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_word_tokenizer(words, n_units)
    vocab_size = -(-len(tokenizer) // EMBEDDING_MULTIPLE) * EMBEDDING_MULTIPLE
    llm_config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=TINY_HIDDEN, intermediate_size=TINY_FFN,
        num_hidden_layers=TINY_LAYERS, num_attention_heads=TINY_HEADS,
        num_key_value_heads=TINY_KV_HEADS, max_position_embeddings=TINY_CONTEXT_TOKENS,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=None, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(llm_config).eval()
    config = BundleConfig(
        chain=Chain.parse(chain), codec=CodecRef(codec_kind, "codec"),
        generation=GenerationConfig(max_new_tokens=TINY_MAX_NEW_TOKENS, seed=seed),
    )
    return write_bundle(directory, config, model, tokenizer, _tiny_codec(codec_kind, n_units, seed))


def _tiny_codec(kind: str, n_units: int, seed: int) -> SpeechCodec:
    if kind == "speechtokenizer":
        from model.codecs.speechtokenizer import SpeechTokenizerCodec

        return SpeechTokenizerCodec.random(codebook_size=n_units, seed=seed)
    raise ValueError(f"no tiny codec of kind {kind!r}; use 'speechtokenizer'")
