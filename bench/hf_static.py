"""The stock path to compare the engine with: transformers' own static-cache decode step.

`StaticStep` prefills a transformers `StaticCache` for `batch` sequences of `context` tokens, then
runs one decode token per sequence through the model's own forward (`LlamaForCausalLM.__call__`
with the static cache and a prepared 4-D mask, so no host synchronisation), captured as one CUDA
graph on CUDA devices (what ../shared/anchors.md calls "static cache, one step captured as a CUDA
graph"); each timed step is the replay plus a greedy argmax read back to the host. Touches nothing
of the engine.
"""

from __future__ import annotations

import torch
from transformers import LlamaForCausalLM, StaticCache

GRAPH_WARMUP_RUNS = 2


class StaticStep:
    """One decode step of `batch` sequences at `context` cached positions, transformers' way.

    The cache holds `cache_len` positions: transformers' attention reads all of them, masked,
    every step, so the benchmark sizes it to the columns the engine's length bucket reads.
    transformers' static cache advances its own write position on every call (a device counter,
    so a replayed graph advances it too): each step writes one column further, and `cache_len`
    must leave room for every call (`max_steps`). The mask keeps every step attending to the
    same `context + 1` columns, so each costs the same.
    """

    def __init__(self, model: LlamaForCausalLM, batch: int, context: int, cache_len: int,
                 max_steps: int, cuda_graph: bool) -> None:
        if cache_len < context + max_steps + GRAPH_WARMUP_RUNS:
            raise ValueError(f"cache_len {cache_len} leaves no room for {max_steps} steps "
                             f"after {context} cached positions")
        device = model.device
        self.model = model
        self.cache = StaticCache(config=model.config, max_cache_len=cache_len)
        generator = torch.Generator(device=device).manual_seed(0)
        prompt = torch.randint(0, model.config.vocab_size, (batch, context), device=device,
                               generator=generator)
        visible = torch.arange(cache_len, device=device) <= context  # (L,)
        self.mask = visible[None, None, None, :].expand(batch, 1, 1, cache_len)  # (B, 1, 1, L)
        self.tokens = prompt[:, -1:].clone()  # (B, 1)
        self.cache_position = torch.tensor([context], device=device)  # (1,)
        with torch.inference_mode():
            causal = torch.ones(context, cache_len, dtype=torch.bool, device=device).tril()
            prefill_mask = causal[None, None].expand(batch, 1, context, cache_len)
            model(input_ids=prompt, attention_mask=prefill_mask, past_key_values=self.cache,
                  cache_position=torch.arange(context, device=device), use_cache=True,
                  logits_to_keep=1)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.logits: torch.Tensor | None = None
        if cuda_graph and device.type == "cuda":
            self._capture()

    @torch.inference_mode()
    def forward(self) -> torch.Tensor:
        """The model's forward for one token per sequence: logits (B, V) of the last position."""
        out = self.model(input_ids=self.tokens, attention_mask=self.mask,
                         past_key_values=self.cache, cache_position=self.cache_position,
                         use_cache=True, logits_to_keep=1)
        return out.logits[:, -1]

    def _capture(self) -> None:
        device = self.model.device
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP_RUNS):
                self.forward()
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self.forward()

    def step(self) -> list[int]:
        """One timed step: the forward (replayed, or eager) and the greedy ids on the host."""
        if self.graph is None:
            return self.forward().argmax(dim=-1).tolist()
        self.graph.replay()
        return self.logits.argmax(dim=-1).tolist()
