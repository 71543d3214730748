"""The hot decode step: one token for every row of a fixed range of slots, over static buffers.

The engine writes a slot's first input token and write position into `tokens` / `positions`
(one entry per slot, allocated once) when its prefill ends, and calls
`step(*bucket(rows, columns), stages)`: the forward pass, the draw, and the advance of every
decoding slot's token and position all happen on the device, so the host's only part in a step
is one read of the drawn ids. On CUDA the forward for each (batch bucket, length bucket) pair
and the draw for each (batch bucket, random or not) are captured once as CUDA graphs and
replayed; elsewhere the same functions run eagerly at the exact sizes. Knows nothing of requests
or scheduling.
"""

from __future__ import annotations

import bisect

import torch

from model.llama_forward import LlamaForward
from model.sampling import SlotSampler, Stages

GRAPH_WARMUP_RUNS = 2  # eager runs on a side stream before capture (cuBLAS/allocator set-up)


def batch_buckets(max_slots: int) -> tuple[int, ...]:
    """Powers of two below `max_slots`, then `max_slots`: (1, 2, 4, …, max_slots)."""
    sizes = [1 << i for i in range(max_slots.bit_length()) if (1 << i) < max_slots]
    return (*sizes, max_slots)


def length_buckets(max_seq_len: int, block_tokens: int) -> tuple[int, ...]:
    """Multiples of `block_tokens` below `max_seq_len`, then `max_seq_len`."""
    return (*range(block_tokens, max_seq_len, block_tokens), max_seq_len)


class DecodeRunner:
    """Runs decode steps over rows [0, batch) and columns [0, length) at bucketed sizes."""

    def __init__(
        self,
        forward: LlamaForward,
        sampler: SlotSampler,
        batch_sizes: tuple[int, ...],
        lengths: tuple[int, ...],
        cuda_graphs: bool,
    ) -> None:
        cache = forward.cache
        self.forward = forward
        self.sampler = sampler
        self.batch_sizes = batch_sizes
        self.lengths = lengths
        self.use_graphs = cuda_graphs and forward.device.type == "cuda"
        self.scratch = cache.scratch_position
        max_slots, device = cache.shape.max_slots, forward.device
        self.tokens = torch.zeros(max_slots, dtype=torch.long, device=device)  # (S,)
        self.positions = torch.full((max_slots,), self.scratch, dtype=torch.long,  # (S,)
                                    device=device)
        self.logits = torch.zeros(max_slots, forward.vocab_size, device=device)  # (S, V) float32
        self._forward_graphs: dict[tuple[int, int], torch.cuda.CUDAGraph] = {}
        self._draw_graphs: dict[tuple[int, bool], torch.cuda.CUDAGraph] = {}
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

    def step(self, batch: int, length: int, stages: Stages) -> torch.Tensor:
        """One decode step over rows [0, batch): returns the drawn ids (batch,) on the device.

        Rows at the scratch position are idle: their draw is thrown away and their token and
        position stay. Decoding rows feed their drawn id next step at position + 1. With graphs
        the result is a view of `tokens`: read it before the next step.
        """
        if not self.use_graphs:
            self.forward_step(batch, length)
            return self.draw_step(batch, stages)
        forward, draw = self._forward_graph(batch, length), self._draw_graph(batch, stages.random)
        forward.replay()
        draw.replay()
        return self.tokens[:batch]

    def _forward_graph(self, batch: int, length: int) -> torch.cuda.CUDAGraph:
        if (batch, length) not in self._forward_graphs:
            self._forward_graphs[(batch, length)] = self._capture(self.forward_step, batch, length)
        return self._forward_graphs[(batch, length)]

    def _draw_graph(self, batch: int, random: bool) -> torch.cuda.CUDAGraph:
        """The draw for rows [0, batch) with every stage on (the graph serves any mix of rows);
        `random` False leaves out the sort and the noise (an all-greedy batch)."""
        if (batch, random) not in self._draw_graphs:
            stages = Stages(penalty=True, mask=True, random=random)
            self._draw_graphs[(batch, random)] = self._capture(self.draw_step, batch, stages)
        return self._draw_graphs[(batch, random)]

    def forward_step(self, batch: int, length: int) -> None:
        """The forward pass into `logits[:batch]` (the draw reads it there), eagerly."""
        self.logits[:batch].copy_(
            self.forward.decode(self.tokens[:batch], self.positions[:batch], length)
        )

    def draw_step(self, batch: int, stages: Stages) -> torch.Tensor:
        """Draw from `logits[:batch]`; decoding rows take their token and advance (eagerly)."""
        positions = self.positions[:batch]
        active = positions < self.scratch  # (B,)
        drawn = self.sampler.sample_rows(self.logits[:batch], active, stages)  # (B,)
        self.tokens[:batch] = torch.where(active, drawn, self.tokens[:batch])
        positions += active
        return self.tokens[:batch]

    def capture_all(self) -> int:
        """Capture every bucket's graphs now (start-up), so no request pays for a capture;
        returns how many graphs exist. A no-op without graphs."""
        if self.use_graphs:
            for batch in reversed(self.batch_sizes):  # largest first: the pool grows once
                for length in reversed(self.lengths):
                    self._forward_graph(batch, length)
                for random in (True, False):
                    self._draw_graph(batch, random)
        return len(self._forward_graphs) + len(self._draw_graphs)

    def _capture(self, function, *args) -> torch.cuda.CUDAGraph:
        """Capture `function(*args)` into the shared memory pool, after eager warm-up runs on a
        side stream (cuBLAS and allocator set-up).

        The warm-up runs must leave the engine's state as it was: a forward writes the same
        keys/values the real step would write (live rows at their own positions, others at the
        scratch column), and the draw's state (tokens, positions, counters, seen ids) is saved
        before and restored after, so capturing in the middle of serving changes nothing.
        """
        device = self.forward.device
        saved = self._draw_state()
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP_RUNS):
                function(*args)
                self._restore_draw_state(saved)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: CUDA work on other threads (a codec on the same GPU) cannot break capture.
        with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
            function(*args)
        return graph

    def _draw_state(self) -> list[torch.Tensor]:
        return [t.clone() for t in (self.tokens, self.positions, *self.sampler.state())]

    def _restore_draw_state(self, saved: list[torch.Tensor]) -> None:
        for target, value in zip((self.tokens, self.positions, *self.sampler.state()), saved,
                                 strict=True):
            target.copy_(value)
