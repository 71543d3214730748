"""A Llama forward pass over a transformers `LlamaForCausalLM`'s own weights and our KV cache.

Two entry points, both writing keys and values into `KVCache` in place: `prefill` runs a chunk of
one slot's prompt, `decode` runs one token for each of rows [0, B) at per-row positions, attending
to each row's own length only, so slots of different lengths decode together. `decode` touches
only fixed-shape buffers, which is what lets it be captured as a CUDA graph (decode_step.py).
Embeddings, norm weights, the activation and the LM head are the transformers modules' own; the
q/k/v and gate/up projections run as one matrix product each over weights concatenated at load
(model/fused_weights.py, no copies kept), residual additions ride on the output projections'
matrix products, RMSNorm is one fused kernel, and attention, rotary embedding and caching are
ours: about 15 kernels per layer instead of 40, which is what a batch-1 step at 7B is made of.
Knows nothing of requests, sampling or scheduling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import LlamaForCausalLM

from model.fused_weights import FusedLayer, fuse_layer
from model.kv_cache import CacheShape, KVCache

SUPPORTED_MODEL = "transformers LlamaForCausalLM (model_type 'llama')"


class UnsupportedModel(ValueError):
    """The model is not one this forward pass reproduces exactly; the message says why."""


def check_supported(model: torch.nn.Module) -> None:
    """Raise `UnsupportedModel` unless `model` is a Llama this module computes exactly.

    Supported: any LlamaForCausalLM — grouped-query attention (num_key_value_heads), explicit
    head_dim, attention/MLP biases, any hidden_act, tied or untied embeddings, and the static rope
    types (default, linear, llama3, yarn, …). Not supported: rope types whose frequencies change
    with the sequence length ('dynamic', 'longrope'), projections that are not plain linears
    (unmerged adapters: merge them first), and models of other families.
    """
    if not isinstance(model, LlamaForCausalLM):
        raise UnsupportedModel(f"the engine runs {SUPPORTED_MODEL}; got {type(model).__name__}")
    rope_type = model.model.rotary_emb.rope_type
    if not isinstance(rope_type, str) or "dynamic" in rope_type or rope_type == "longrope":
        raise UnsupportedModel(
            f"rope type {rope_type!r} changes its frequencies with sequence length, which a static "
            "cache cannot reproduce; use a static rope type (default, linear, llama3, yarn)"
        )
    for layer in model.model.layers:
        projections = (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj,
                       layer.self_attn.o_proj, layer.mlp.gate_proj, layer.mlp.up_proj,
                       layer.mlp.down_proj)
        if any(type(p) is not nn.Linear for p in projections):
            raise UnsupportedModel(
                "the engine fuses q/k/v and gate/up into single matrix products, which needs "
                "plain torch Linear projections; merge adapters into the weights first"
            )


def swap_halves(x: torch.Tensor) -> torch.Tensor:
    """(…, D) → (…, D): the second half moved in front of the first (rotate_half without the
    sign, which the rotary sine table carries instead: one kernel fewer per layer)."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat((second, first), dim=-1)


def linear_residual(residual: torch.Tensor, x: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """residual + linear(x) for (…, C_in) → (…, C_out); one matrix product that adds the residual
    in its epilogue when the linear has no bias."""
    if linear.bias is not None:
        return residual + linear(x)
    flat = torch.addmm(residual.reshape(-1, residual.shape[-1]), x.reshape(-1, x.shape[-1]),
                       linear.weight.t())
    return flat.view(residual.shape)


class LlamaForward:
    """Prefill and decode for a checked `LlamaForCausalLM` over a `KVCache` sized for it."""

    def __init__(self, model: LlamaForCausalLM, max_slots: int, max_seq_len: int) -> None:
        check_supported(model)
        model.eval()
        config = model.config
        self.model = model
        self.layers = list(model.model.layers)
        self.fused: list[FusedLayer] = [fuse_layer(layer) for layer in self.layers]
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
        self.cos, self.sin = self._rope_tables(max_seq_len + 1)  # (L + 1, D) each, sin signed
        self.columns = torch.arange(max_seq_len + 1, device=self.device)  # (L + 1,)

    def _rope_tables(self, n_positions: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and signed sin (n_positions, D), computed as transformers computes them, then cast.

        The sine's first half is negated: x·cos + swap_halves(x)·sin equals transformers'
        x·cos + rotate_half(x)·sin exactly (a sign flip is exact in floating point).
        """
        rotary = self.model.model.rotary_emb
        inv_freq = rotary.inv_freq.to(device=self.device, dtype=torch.float32)  # (D / 2,)
        positions = torch.arange(n_positions, device=self.device, dtype=torch.float32)
        freqs = positions[:, None] * inv_freq[None, :]  # (P, D / 2)
        angles = torch.cat((freqs, freqs), dim=-1)  # (P, D)
        scale = rotary.attention_scaling
        sign = torch.ones(angles.shape[-1], device=self.device)
        sign[: angles.shape[-1] // 2] = -1
        return (angles.cos() * scale).to(self.dtype), (angles.sin() * scale * sign).to(self.dtype)

    def weight_bytes(self) -> int:
        """Bytes of the model's parameters, shared (tied) tensors counted once."""
        seen = {p.data_ptr(): p.numel() * p.element_size() for p in self.model.parameters()}
        return sum(seen.values())

    @torch.inference_mode()
    def prefill(self, slot: int, token_ids: torch.Tensor, start: int) -> torch.Tensor:
        """Run prompt tokens (T,) of `slot` at positions [start, start + T).

        Returns float32 logits (V,) of the last token; keys/values land in the cache. A chunk
        that starts at position 0 attends causally without a mask (the flash kernel on CUDA);
        a later chunk attends to the cached columns before it through a mask.
        """
        n = token_ids.shape[0]
        end = start + n
        cos = self.cos[start:end][None, :, None]  # (1, T, 1, D)
        sin = self.sin[start:end][None, :, None]
        bias = None
        if start > 0:  # query t (at position start + t) sees columns 0 .. start + t
            queries = start + torch.arange(n, device=self.device)  # (T,)
            visible = self.columns[None, :end] <= queries[:, None]  # (T, end)
            bias = self._bias(visible[None])  # (1, 1, G·T, end)
        hidden = self.model.model.embed_tokens(token_ids[None])  # (1, T, C)

        def attend(layer: int, q, k, v, scale: float) -> torch.Tensor:
            keys, values = self.cache.write_span(layer, slot, start, k, v)  # (1, Hkv, end, D)
            if bias is None:
                return F.scaled_dot_product_attention(
                    q, keys, values, is_causal=True, scale=scale,
                    enable_gqa=self.n_heads != self.n_kv_heads,
                )  # (1, H, T, D)
            return self._attention(q, keys, values, bias, scale)

        hidden = self._layers(hidden, cos, sin, attend)  # (1, T, C)
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
        visible = self.columns[None, :length] <= positions[:, None]  # (B, L)
        bias = self._bias(visible[:, None])  # (B, 1, G, L)
        hidden = self.model.model.embed_tokens(token_ids[:, None])  # (B, 1, C)

        def attend(layer: int, q, k, v, scale: float) -> torch.Tensor:
            keys, values = self.cache.write_rows(layer, k, v, positions, length)  # (B, Hkv, L, D)
            return self._attention(q, keys, values, bias, scale)

        hidden = self._layers(hidden, cos, sin, attend)  # (B, 1, C)
        return self._logits(hidden[:, -1])

    def _bias(self, visible: torch.Tensor) -> torch.Tensor:
        """Additive attention mask from bool (B, T, L): 0 where visible, -inf
        elsewhere, repeated for the query heads each kv head serves → (B, 1, G·T, L). Made once
        per call instead of once per layer inside the attention kernel."""
        groups = self.n_heads // self.n_kv_heads
        visible = visible[:, None]  # (B, 1, T, L)
        bias = torch.zeros(visible.shape, dtype=self.dtype, device=self.device)
        return bias.masked_fill_(~visible, float("-inf")).repeat(1, 1, groups, 1)

    def _attention(self, q, keys, values, bias, scale: float) -> torch.Tensor:
        """q (B, H, T, D) against keys/values (B, Hkv, L, D) under `bias` → (B, H, T, D).

        Each kv head serves `groups` consecutive query heads; folding those into the query
        length lets every attention backend run grouped-query attention without copying keys.
        """
        batch, _, n, _ = q.shape
        groups = self.n_heads // self.n_kv_heads
        q = q.reshape(batch, self.n_kv_heads, groups * n, self.head_dim)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=bias, scale=scale)
        return out.reshape(batch, self.n_heads, n, self.head_dim)

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final norm and LM head: (B, C) → float32 (B, V)."""
        return self.model.lm_head(rms_norm(self.model.model.norm, hidden)).float()

    def _layers(self, hidden, cos, sin, attend) -> torch.Tensor:
        """The decoder stack: hidden (B, T, C) → (B, T, C).

        cos/sin (B or 1, T, 1, D) broadcast over heads; attend(layer, q (B, H, T, D),
        k, v (B, Hkv, T, D), scale) caches the layer's new keys/values and returns the attention
        output (B, H, T, D).
        """
        batch, n, _ = hidden.shape
        heads, kv_heads, head_dim = self.n_heads, self.n_kv_heads, self.head_dim
        qk_width = (heads + kv_heads) * head_dim
        for index, (layer, fused) in enumerate(zip(self.layers, self.fused, strict=True)):
            attn, mlp = layer.self_attn, layer.mlp
            x = rms_norm(layer.input_layernorm, hidden)
            qkv = F.linear(x, fused.qkv_weight, fused.qkv_bias)  # (B, T, (H + 2·Hkv)·D)
            qk = qkv[..., :qk_width].view(batch, n, heads + kv_heads, head_dim)
            qk = torch.addcmul(qk * cos, swap_halves(qk), sin)  # rotary, (B, T, H + Hkv, D)
            q = qk[:, :, :heads].transpose(1, 2)  # (B, H, T, D)
            k = qk[:, :, heads:].transpose(1, 2)  # (B, Hkv, T, D)
            v = qkv[..., qk_width:].view(batch, n, kv_heads, head_dim).transpose(1, 2)
            out = attend(index, q, k, v, attn.scaling)  # (B, H, T, D)
            out = out.transpose(1, 2).reshape(batch, n, heads * head_dim)
            hidden = linear_residual(hidden, out, attn.o_proj)
            x = rms_norm(layer.post_attention_layernorm, hidden)
            gate, up = F.linear(x, fused.gate_up_weight, fused.gate_up_bias).chunk(2, dim=-1)
            hidden = linear_residual(hidden, mlp.act_fn(gate) * up, mlp.down_proj)
        return hidden


def rms_norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A transformers LlamaRMSNorm as one fused kernel: (…, C) → (…, C)."""
    return F.rms_norm(x, (x.shape[-1],), norm.weight, norm.variance_epsilon)
