"""Fused projections for the engine's forward: q/k/v as one matrix and gate/up as another.

`fuse_layer` concatenates a transformers Llama decoder layer's q, k and v projection weights (and
biases) into one tensor, and gate and up into another, then rebinds the original modules'
parameters as views of those tensors: no weight is held twice, and the transformers model still
computes exactly what it computed before. One matrix product then does the work of three (or
two), which at batch 1 means fewer, larger kernels reading the same bytes. Fusing a model again
(a second engine on it) makes new tensors; the earlier engine keeps its own until it is dropped.
Knows nothing of the cache, requests or sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FusedLayer:
    """One decoder layer's fused weights (views of them back the transformers modules).

    qkv_weight: (H·D + 2·Hkv·D, C); qkv_bias: (H·D + 2·Hkv·D,) or None.
    gate_up_weight: (2·I, C), gate rows first; gate_up_bias: (2·I,) or None.
    """

    qkv_weight: torch.Tensor
    qkv_bias: torch.Tensor | None
    gate_up_weight: torch.Tensor
    gate_up_bias: torch.Tensor | None


def _fuse(modules: list[nn.Linear]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Concatenate the linears' weights (and biases) by output rows; rebind each module's
    parameters as a view of the result. Returns (weight (ΣO, C), bias (ΣO,) or None)."""
    weight = torch.cat([m.weight.detach() for m in modules])
    has_bias = [m.bias is not None for m in modules]
    if any(has_bias) and not all(has_bias):
        raise ValueError("cannot fuse projections where only some have a bias")
    bias = torch.cat([m.bias.detach() for m in modules]) if all(has_bias) else None
    start = 0
    for module in modules:
        rows = module.weight.shape[0]
        module.weight = nn.Parameter(weight[start : start + rows],
                                     requires_grad=module.weight.requires_grad)
        if bias is not None:
            module.bias = nn.Parameter(bias[start : start + rows],
                                       requires_grad=module.bias.requires_grad)
        start += rows
    return weight, bias


def fuse_layer(layer: nn.Module) -> FusedLayer:
    """Fuse one `LlamaDecoderLayer`'s q/k/v and gate/up projections (see the module doc)."""
    attn, mlp = layer.self_attn, layer.mlp
    qkv_weight, qkv_bias = _fuse([attn.q_proj, attn.k_proj, attn.v_proj])
    gate_up_weight, gate_up_bias = _fuse([mlp.gate_proj, mlp.up_proj])
    return FusedLayer(qkv_weight, qkv_bias, gate_up_weight, gate_up_bias)
