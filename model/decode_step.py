"""The hot decode step: one token for every row of a fixed range of slots, over static buffers.

The engine writes each slot's next input token and write position into `tokens` / `positions`
(one entry per slot, allocated once) and calls `run(*bucket(rows, columns))`. On CUDA the step
for each (batch bucket, length bucket) pair is captured once as a CUDA graph and replayed;
elsewhere the same `LlamaForward.decode` runs eagerly at the exact sizes. Knows nothing of
requests, sampling or scheduling.
"""

from __future__ import annotations

import bisect

import torch

from model.llama_forward import LlamaForward

GRAPH_WARMUP_RUNS = 2  # eager runs on a side stream before capture (cuBLAS/allocator set-up)


def batch_buckets(max_slots: int) -> tuple[int, ...]:
    """Powers of two below `max_slots`, then `max_slots`: (1, 2, 4, …, max_slots)."""
    sizes = [1 << i for i in range(max_slots.bit_length()) if (1 << i) < max_slots]
    return (*sizes, max_slots)


def length_buckets(max_seq_len: int, block_tokens: int) -> tuple[int, ...]:
    """Multiples of `block_tokens` below `max_seq_len`, then `max_seq_len`."""
    return (*range(block_tokens, max_seq_len, block_tokens), max_seq_len)


class DecodeRunner:
    """Runs `forward.decode` over rows [0, batch) and columns [0, length) at bucketed sizes."""

    def __init__(
        self,
        forward: LlamaForward,
        batch_sizes: tuple[int, ...],
        lengths: tuple[int, ...],
        cuda_graphs: bool,
    ) -> None:
        cache = forward.cache
        self.forward = forward
        self.batch_sizes = batch_sizes
        self.lengths = lengths
        self.use_graphs = cuda_graphs and forward.device.type == "cuda"
        max_slots = cache.shape.max_slots
        self.tokens = torch.zeros(max_slots, dtype=torch.long, device=forward.device)  # (S,)
        self.positions = torch.full(  # (S,)
            (max_slots,), cache.scratch_position, dtype=torch.long, device=forward.device
        )
        self._graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self._pool = torch.cuda.graph_pool_handle() if self.use_graphs else None

    def bucket(self, rows: int, columns: int) -> tuple[int, int]:
        """Smallest (batch, length) buckets covering `rows` slots and `columns` positions.

        Only graphs need fixed sizes; eagerly, the exact sizes waste no work.
        """
        if not self.use_graphs:
            return rows, columns
        batch = self.batch_sizes[bisect.bisect_left(self.batch_sizes, rows)]
        length = self.lengths[bisect.bisect_left(self.lengths, columns)]
        return batch, length

    def run(self, batch: int, length: int) -> torch.Tensor:
        """One decode step over rows [0, batch); float32 logits (batch, V).

        With graphs the result is the graph's static output: read it before the next `run`.
        """
        if not self.use_graphs:
            return self.forward.decode(self.tokens[:batch], self.positions[:batch], length)
        if (batch, length) not in self._graphs:
            self._graphs[(batch, length)] = self._capture(batch, length)
        graph, logits = self._graphs[(batch, length)]
        graph.replay()
        return logits

    def capture_all(self) -> int:
        """Capture every bucket pair now (start-up), so no request pays for a capture; returns
        how many graphs exist. A no-op without graphs."""
        if self.use_graphs:
            for batch in reversed(self.batch_sizes):  # largest first: the pool grows once
                for length in reversed(self.lengths):
                    if (batch, length) not in self._graphs:
                        self._graphs[(batch, length)] = self._capture(batch, length)
        return len(self._graphs)

    def _capture(self, batch: int, length: int) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        """Warm up on a side stream, then capture one step into the shared memory pool.

        The warm-up runs write the same keys/values a real step at the current inputs would write
        (live rows at their own positions, others at the scratch column), so capturing lazily
        in the middle of serving leaves every slot's cache as it would have been.
        """
        tokens, positions = self.tokens[:batch], self.positions[:batch]
        device = self.forward.device
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP_RUNS):
                self.forward.decode(tokens, positions, length)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: CUDA work on other threads (a codec on the same GPU) cannot break capture.
        with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
            logits = self.forward.decode(tokens, positions, length)  # (batch, V), static
        return graph, logits
