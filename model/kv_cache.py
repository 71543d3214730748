"""The engine's static KV cache: fixed buffers for `max_slots` sequences of `max_seq_len` tokens.

Layout per layer: keys and values of shape (max_slots, n_kv_heads, max_seq_len + 1, head_dim),
row = slot. Column `max_seq_len` is a scratch column: a decode step runs over a fixed range of
rows, and rows that are not decoding (free, or still in prefill) write their throw-away key and
value there, where no real sequence ever attends. Buffers are allocated once and never move, so a
captured CUDA graph can keep their addresses. Knows nothing of models, requests or sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CacheShape:
    """Sizes of the cache; validated so a wrong model/config pairing fails at construction."""

    n_layers: int
    max_slots: int
    max_seq_len: int
    n_kv_heads: int
    head_dim: int

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value < 1:
                raise ValueError(f"KV cache {name} must be ≥ 1, got {value}")

    def nbytes(self, dtype: torch.dtype) -> int:
        """Bytes of keys and values over all layers."""
        per_layer = self.max_slots * self.n_kv_heads * (self.max_seq_len + 1) * self.head_dim
        return 2 * self.n_layers * per_layer * torch.empty((), dtype=dtype).element_size()


class KVCache:
    """Preallocated keys and values, written in place by prefill chunks and decode steps."""

    def __init__(self, shape: CacheShape, dtype: torch.dtype, device: torch.device) -> None:
        self.shape = shape
        dims = (shape.max_slots, shape.n_kv_heads, shape.max_seq_len + 1, shape.head_dim)
        # Zero-filled so scratch rows only ever read finite numbers.
        self.keys = [torch.zeros(dims, dtype=dtype, device=device) for _ in range(shape.n_layers)]
        self.values = [torch.zeros(dims, dtype=dtype, device=device) for _ in range(shape.n_layers)]
        self._rows = torch.arange(shape.max_slots, device=device)  # (S,)

    @property
    def scratch_position(self) -> int:
        """Write position for rows whose step output is thrown away."""
        return self.shape.max_seq_len

    def nbytes(self) -> int:
        return self.shape.nbytes(self.keys[0].dtype)

    def write_rows(
        self,
        layer: int,
        key: torch.Tensor,
        value: torch.Tensor,
        positions: torch.Tensor,
        length: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode write: row b gets key/value (B, Hkv, 1, D) at positions[b] (B,).

        Returns the cached keys and values of rows [0, B), first `length` columns:
        (B, Hkv, length, D). Callers mask columns beyond each row's own position.
        """
        batch = key.shape[0]
        rows = self._rows[:batch]
        self.keys[layer][rows, :, positions] = key[:, :, 0]
        self.values[layer][rows, :, positions] = value[:, :, 0]
        return self.keys[layer][:batch, :, :length], self.values[layer][:batch, :, :length]

    def write_span(
        self, layer: int, slot: int, start: int, key: torch.Tensor, value: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefill write: key/value (1, Hkv, T, D) into `slot` at positions [start, start + T).

        Returns the slot's keys and values up to the end of the span: (1, Hkv, start + T, D).
        """
        end = start + key.shape[2]
        if end > self.shape.max_seq_len:
            raise ValueError(f"span ends at {end}, beyond max_seq_len {self.shape.max_seq_len}")
        self.keys[layer][slot, :, start:end] = key[0]
        self.values[layer][slot, :, start:end] = value[0]
        rows = slice(slot, slot + 1)
        return self.keys[layer][rows, :, :end], self.values[layer][rows, :, :end]
