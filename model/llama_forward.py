"""A Llama forward pass over a transformers `LlamaForCausalLM`'s own weights and our KV cache.

Two entry points, both writing keys and values into `KVCache` in place: `prefill` runs a chunk of
one slot's prompt, `decode` runs one token for each of rows [0, B) at per-row positions, attending
to each row's own length only, so slots of different lengths decode together. `decode` touches
only fixed-shape buffers, which is what lets it be captured as a CUDA graph (decode_step.py).
Norms, MLPs, projections and embeddings are the transformers modules themselves; attention,
rotary embedding and caching are ours. Knows nothing of requests, sampling or scheduling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM

from model.kv_cache import CacheShape, KVCache

SUPPORTED_MODEL = "transformers LlamaForCausalLM (model_type 'llama')"


class UnsupportedModel(ValueError):
    """The model is not one this forward pass reproduces exactly; the message says why."""


def check_supported(model: torch.nn.Module) -> None:
    """Raise `UnsupportedModel` unless `model` is a Llama this module computes exactly.

    Supported: any LlamaForCausalLM — grouped-query attention (num_key_value_heads), explicit
    head_dim, attention/MLP biases, any hidden_act, tied or untied embeddings, and the static rope
    types (default, linear, llama3, yarn, …). Not supported: rope types whose frequencies change
    with the sequence length ('dynamic', 'longrope'), and models of other families.
    """
    if not isinstance(model, LlamaForCausalLM):
        raise UnsupportedModel(f"the engine runs {SUPPORTED_MODEL}; got {type(model).__name__}")
    rope_type = model.model.rotary_emb.rope_type
    if not isinstance(rope_type, str) or "dynamic" in rope_type or rope_type == "longrope":
        raise UnsupportedModel(
            f"rope type {rope_type!r} changes its frequencies with sequence length, which a static "
            "cache cannot reproduce; use a static rope type (default, linear, llama3, yarn)"
        )


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(…, D) → (…, D): the second half negated and moved in front of the first."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


class LlamaForward:
    """Prefill and decode for a checked `LlamaForCausalLM` over a `KVCache` sized for it."""

    def __init__(self, model: LlamaForCausalLM, max_slots: int, max_seq_len: int) -> None:
        check_supported(model)
        model.eval()
        config = model.config
        self.model = model
        self.layers = list(model.model.layers)
        self.n_heads = config.num_attention_heads
        self.n_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.vocab_size = config.vocab_size
        weight = model.model.embed_tokens.weight
        self.device = weight.device
        self.dtype = weight.dtype
        self.cache = KVCache(
            CacheShape(
                n_layers=len(self.layers),
                max_slots=max_slots,
                max_seq_len=max_seq_len,
                n_kv_heads=self.n_kv_heads,
                head_dim=self.head_dim,
            ),
            self.dtype,
            self.device,
        )
        self.cos, self.sin = self._rope_tables(max_seq_len + 1)  # (L + 1, D) each
        self.columns = torch.arange(max_seq_len + 1, device=self.device)  # (L + 1,)

    def _rope_tables(self, n_positions: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin (n_positions, D), computed as transformers computes them, then cast."""
        rotary = self.model.model.rotary_emb
        inv_freq = rotary.inv_freq.to(device=self.device, dtype=torch.float32)  # (D / 2,)
        positions = torch.arange(n_positions, device=self.device, dtype=torch.float32)
        freqs = positions[:, None] * inv_freq[None, :]  # (P, D / 2)
        angles = torch.cat((freqs, freqs), dim=-1)  # (P, D)
        scale = rotary.attention_scaling
        return (angles.cos() * scale).to(self.dtype), (angles.sin() * scale).to(self.dtype)

    def weight_bytes(self) -> int:
        """Bytes of the model's parameters, shared (tied) tensors counted once."""
        seen = {p.data_ptr(): p.numel() * p.element_size() for p in self.model.parameters()}
        return sum(seen.values())

    @torch.inference_mode()
    def prefill(self, slot: int, token_ids: torch.Tensor, start: int) -> torch.Tensor:
        """Run prompt tokens (T,) of `slot` at positions [start, start + T).

        Returns float32 logits (V,) of the last token; keys/values land in the cache.
        """
        n = token_ids.shape[0]
        end = start + n
        cos = self.cos[start:end][None, None]  # (1, 1, T, D)
        sin = self.sin[start:end][None, None]
        # Query t (at position start + t) sees columns 0 .. start + t.
        mask = self.columns[None, :end] <= (start + torch.arange(n, device=self.device))[:, None]
        hidden = self.model.model.embed_tokens(token_ids[None])  # (1, T, C)

        def kv(layer: int, key: torch.Tensor, value: torch.Tensor):
            return self.cache.write_span(layer, slot, start, key, value)

        hidden = self._layers(hidden, cos, sin, mask[None, None], kv)  # (1, T, C)
        return self._logits(hidden[:, -1])[0]

    @torch.inference_mode()
    def decode(self, token_ids: torch.Tensor, positions: torch.Tensor, length: int) -> torch.Tensor:
        """One token per row: token_ids, positions (B,) → float32 logits (B, V).

        Row b is slot b; its token is written at positions[b] and attends to columns
        0 .. positions[b]. `length` (> every real row's position) bounds the columns read.
        Only fixed-shape tensor work, no host synchronisation: safe to capture as a CUDA graph.
        """
        cos = self.cos[positions][:, None, None]  # (B, 1, 1, D)
        sin = self.sin[positions][:, None, None]
        mask = self.columns[None, :length] <= positions[:, None]  # (B, length)
        hidden = self.model.model.embed_tokens(token_ids[:, None])  # (B, 1, C)

        def kv(layer: int, key: torch.Tensor, value: torch.Tensor):
            return self.cache.write_rows(layer, key, value, positions, length)

        hidden = self._layers(hidden, cos, sin, mask[:, None, None], kv)  # (B, 1, C)
        return self._logits(hidden[:, -1])

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final norm and LM head: (B, C) → float32 (B, V)."""
        return self.model.lm_head(self.model.model.norm(hidden)).float()

    def _layers(self, hidden, cos, sin, mask, kv) -> torch.Tensor:
        """The decoder stack: hidden (B, T, C) → (B, T, C).

        cos/sin broadcast to (B, H, T, D); mask bool (B, 1, T, L); kv(layer, key, value) caches a
        layer's new keys/values and returns the ones to attend to, (B, Hkv, L, D) each.
        """
        batch, n, _ = hidden.shape
        groups = self.n_heads // self.n_kv_heads
        # Each kv head serves `groups` consecutive query heads; folding those into the query
        # length lets every attention backend run grouped-query attention without copying keys.
        # One additive mask for all layers (0 where visible, -inf elsewhere), made once per call
        # instead of once per layer inside the attention kernel.
        bias = torch.zeros(mask.shape, dtype=self.dtype, device=self.device)
        bias = bias.masked_fill_(~mask, float("-inf")).repeat(1, 1, groups, 1)  # (B, 1, G * T, L)
        for index, layer in enumerate(self.layers):
            attn = layer.self_attn
            x = layer.input_layernorm(hidden)
            q = attn.q_proj(x).view(batch, n, self.n_heads, self.head_dim).transpose(1, 2)
            k = attn.k_proj(x).view(batch, n, self.n_kv_heads, self.head_dim).transpose(1, 2)
            v = attn.v_proj(x).view(batch, n, self.n_kv_heads, self.head_dim).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin  # (B, H, T, D)
            k = k * cos + rotate_half(k) * sin  # (B, Hkv, T, D)
            keys, values = kv(index, k, v)  # (B, Hkv, L, D) each
            q = q.reshape(batch, self.n_kv_heads, groups * n, self.head_dim)
            out = F.scaled_dot_product_attention(
                q, keys, values, attn_mask=bias, scale=attn.scaling
            )  # (B, Hkv, G * T, D)
            out = out.reshape(batch, self.n_heads, n, self.head_dim).transpose(1, 2)  # (B, T, H, D)
            hidden = hidden + attn.o_proj(out.reshape(batch, n, self.n_heads * self.head_dim))
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        return hidden
