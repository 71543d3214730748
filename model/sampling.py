"""Token sampling for the engine: per-request parameters, segment rules and a batched sampler.

Knows only logits, token ids and slot indices. It must not touch the model, the KV cache, the
scheduler or any text: the chain layer expresses "speech segments" as token ids (`SegmentRule`).

Randomness is counter-based: the Gumbel noise for (request seed, sample index, token id) is a hash
of those three numbers, so a seeded request draws the same tokens whatever else shares its batch,
on any device, with no per-request generator object to step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

MASK32 = 0xFFFFFFFF
# Odd multipliers below 2**31, so a 32-bit value times one stays inside int64 (no overflow).
MIX_MULTIPLIER_A = 0x7FEB352D
MIX_MULTIPLIER_B = 0x5BD1E995
TOKEN_STRIDE = 0x61C88647  # spreads consecutive token ids over the 32-bit hash input
UNIFORM_BITS = 24  # float32 holds 24-bit integers exactly


@dataclass(frozen=True)
class SamplingParams:
    """How one token is drawn from the logits (the order follows transformers' processors).

    temperature: 0 means greedy (argmax); otherwise logits are divided by it.
    top_k: keep the k most likely tokens; 0 keeps all.
    top_p: keep the smallest set of most likely tokens whose probability reaches top_p; 1 keeps all.
    repetition_penalty: transformers' rule over every token already in the sequence (prompt
        included): a positive logit is divided by it, a negative one multiplied; 1 is off.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be a finite number ≥ 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be ≥ 0 (0 keeps all tokens), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p}")
        if not (math.isfinite(self.repetition_penalty) and self.repetition_penalty > 0):
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @classmethod
    def from_dict(cls, values: dict) -> SamplingParams:
        """Build from a mapping such as bundle.json's `generation.text`; unknown keys are errors."""
        unknown = set(values) - {"temperature", "top_k", "top_p", "repetition_penalty"}
        if unknown:
            raise ValueError(f"unknown sampling fields: {', '.join(sorted(unknown))}")
        return cls(**values)


GREEDY = SamplingParams(temperature=0.0)


@dataclass(frozen=True)
class SegmentRule:
    """A span of the output opened by `start_id` and closed by `end_id` with its own sampling.

    Inside the span only `allowed_ids` and `end_id` may be sampled, drawn with `sampling`; outside
    every span the request's own sampling applies. The chain layer uses one rule for speech:
    `SegmentRule(sosp, eosp, speech_unit_ids, speech_sampling)`.
    """

    start_id: int
    end_id: int
    allowed_ids: frozenset[int]
    sampling: SamplingParams

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_ids", frozenset(int(i) for i in self.allowed_ids))
        if min(self.start_id, self.end_id, *self.allowed_ids, 0) < 0:
            raise ValueError("segment token ids must be ≥ 0")
        if self.start_id == self.end_id:
            raise ValueError("a segment's start_id and end_id must differ")
        if not self.allowed_ids:
            raise ValueError("a segment needs at least one allowed id besides end_id")

    def permitted(self) -> frozenset[int]:
        """Every id that may be sampled inside the segment."""
        return self.allowed_ids | {self.end_id}


def mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (xorshift-multiply rounds) on int64 tensors holding values < 2**32."""
    x = x & MASK32
    x = x ^ (x >> 16)
    x = (x * MIX_MULTIPLIER_A) & MASK32
    x = x ^ (x >> 15)
    x = (x * MIX_MULTIPLIER_B) & MASK32
    return x ^ (x >> 16)


def seed_key(seed: int) -> int:
    """Fold a seed in [0, 2**63) into the 32-bit key the noise hash starts from."""
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must lie in [0, 2**63), got {seed}")
    lo = mix32(torch.tensor(seed & MASK32))
    return int(mix32(lo ^ (seed >> 32)))


def gumbel_noise(
    keys: torch.Tensor, counters: torch.Tensor, token_ids: torch.Tensor
) -> torch.Tensor:
    """Gumbel(0, 1) noise for each row's (key, counter) at the given token ids.

    keys, counters: int64 (N,); token_ids: int64 (N, V) → float32 (N, V). The value depends only on
    (key, counter, token id), never on the batch or on the order of `token_ids`.
    """
    row = mix32(keys ^ mix32(counters))  # (N,)
    bits = mix32(row[:, None] + token_ids * TOKEN_STRIDE) >> (32 - UNIFORM_BITS)  # (N, V)
    uniform = (bits.float() + 0.5) / float(1 << UNIFORM_BITS)  # strictly inside (0, 1)
    return -torch.log(-torch.log(uniform))


@dataclass
class RowParams:
    """Sampling parameters gathered per logits row (all tensors (N,) on the logits' device)."""

    temperature: torch.Tensor  # float32
    top_k: torch.Tensor  # int64, 0 = off
    top_p: torch.Tensor  # float32
    repetition_penalty: torch.Tensor  # float32
    keys: torch.Tensor  # int64 noise keys
    counters: torch.Tensor  # int64, tokens drawn so far by the row's request


def sample(
    logits: torch.Tensor,
    params: RowParams,
    *,
    seen: torch.Tensor | None,
    allowed: torch.Tensor | None,
    any_random: bool,
) -> torch.Tensor:
    """Draw one token per row. logits (N, V) → int64 (N,).

    seen: bool (N, V), tokens already in each row's sequence (for the repetition penalty), or None
        when no row uses a penalty. allowed: bool (N, V), tokens each row may draw, or None.
    any_random: False when every row is greedy, which skips the sort and the noise.
    """
    x = logits.float()  # (N, V)
    if seen is not None:
        penalty = params.repetition_penalty[:, None]  # (N, 1)
        x = torch.where(seen, torch.where(x > 0, x / penalty, x * penalty), x)
    if allowed is not None:
        x = x.masked_fill(~allowed, -math.inf)
    greedy_ids = x.argmax(dim=-1)  # (N,)
    if not any_random:
        return greedy_ids
    x = x / params.temperature.clamp_min(1e-6)[:, None]
    sorted_x, order = x.sort(dim=-1, descending=True)  # (N, V) each
    vocab = x.shape[-1]
    rank = torch.arange(vocab, device=x.device)  # (V,)
    top_k = torch.where(params.top_k > 0, params.top_k, vocab)  # (N,)
    keep = rank[None, :] < top_k[:, None]  # (N, V)
    sorted_x = sorted_x.masked_fill(~keep, -math.inf)
    probs = sorted_x.softmax(dim=-1)  # (N, V)
    mass_before = probs.cumsum(dim=-1) - probs
    keep &= mass_before < params.top_p[:, None]  # rank 0 always stays: its mass_before is 0
    sorted_x = sorted_x.masked_fill(~keep, -math.inf)
    noisy = sorted_x + gumbel_noise(params.keys, params.counters, order)  # Gumbel-max trick
    sampled_ids = order.gather(1, noisy.argmax(dim=-1, keepdim=True)).squeeze(1)  # (N,)
    return torch.where(params.temperature > 0, sampled_ids, greedy_ids)


@dataclass(frozen=True)
class Stages:
    """Which sampling stages a batch needs (host-side; a captured graph runs them all)."""

    penalty: bool = True
    mask: bool = True
    random: bool = True



class SlotSampler:
    """Per-slot sampling state on the device: parameters, seen tokens, allowed ids, RNG keys.

    The engine calls `reset` when a request takes a slot, `set_params` when the request enters or
    leaves a segment, `sample` for a prefill's first token, and `sample_rows` for a decode step
    over slots [0, B). Every table has a fixed address, so `sample_rows` can be captured in a
    CUDA graph; host copies of the parameters say which stages a batch needs (`stages`), so an
    eager greedy batch costs one argmax.
    """

    def __init__(self, max_slots: int, vocab_size: int, device: torch.device) -> None:
        self.vocab_size = vocab_size
        self.device = device
        self._temperature = torch.zeros(max_slots, device=device)
        self._top_k = torch.zeros(max_slots, dtype=torch.long, device=device)
        self._top_p = torch.ones(max_slots, device=device)
        self._penalty = torch.ones(max_slots, device=device)
        self._keys = torch.zeros(max_slots, dtype=torch.long, device=device)
        self._counters = torch.zeros(max_slots, dtype=torch.long, device=device)
        self._seen = torch.zeros(max_slots, vocab_size, dtype=torch.bool, device=device)
        self._allowed = torch.ones(max_slots, vocab_size, dtype=torch.bool, device=device)
        self._rows = torch.arange(max_slots, device=device)  # (S,)
        self._masks = [torch.ones(vocab_size, dtype=torch.bool, device=device)]  # 0: all ids
        self._mask_ids: dict[frozenset[int], int] = {}
        self._host: list[tuple[SamplingParams, int]] = [(GREEDY, 0)] * max_slots

    def mask_index(self, permitted: frozenset[int] | None) -> int:
        """Index of the allowed-ids mask for `permitted` (None: every id), built once per set."""
        if permitted is None:
            return 0
        if permitted not in self._mask_ids:
            if max(permitted) >= self.vocab_size:
                raise ValueError(f"segment ids must be < vocab size {self.vocab_size}")
            mask = torch.zeros(self.vocab_size, dtype=torch.bool, device=self.device)
            mask[sorted(permitted)] = True
            self._masks.append(mask)
            self._mask_ids[permitted] = len(self._masks) - 1
        return self._mask_ids[permitted]

    def reset(self, slot: int, prompt_ids: list[int], seed: int) -> None:
        """Start a request in `slot`: its seen tokens are the prompt, its draw counter 0."""
        self._seen[slot] = False
        self._seen[slot, torch.tensor(prompt_ids, device=self.device)] = True
        self._keys[slot] = seed_key(seed)
        self._counters[slot] = 0

    def set_params(self, slot: int, params: SamplingParams, mask_index: int) -> None:
        """Use `params` and allowed-mask `mask_index` for the slot's next draws."""
        if self._host[slot] == (params, mask_index):
            return
        previous_mask = self._host[slot][1]
        self._host[slot] = (params, mask_index)
        self._temperature[slot] = params.temperature
        self._top_k[slot] = params.top_k
        self._top_p[slot] = params.top_p
        self._penalty[slot] = params.repetition_penalty
        if mask_index != previous_mask:
            self._allowed[slot] = self._masks[mask_index]

    def stages(self, slots: list[int]) -> Stages:
        """The stages that sampling for `slots` needs (greedy, no penalty, no mask: argmax)."""
        host = [self._host[s] for s in slots]
        return Stages(
            penalty=any(p.repetition_penalty != 1.0 for p, _ in host),
            mask=any(m != 0 for _, m in host),
            random=any(not p.greedy for p, _ in host),
        )

    def state(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The tensors a draw changes (counters (S,), seen ids (S, V)), to save and restore."""
        return self._counters, self._seen

    def _params(self, rows: torch.Tensor | slice) -> RowParams:
        return RowParams(
            temperature=self._temperature[rows],
            top_k=self._top_k[rows],
            top_p=self._top_p[rows],
            repetition_penalty=self._penalty[rows],
            keys=self._keys[rows],
            counters=self._counters[rows],
        )

    def sample(self, logits: torch.Tensor, slots: list[int]) -> torch.Tensor:
        """logits (N, V) for `slots` (N,) → int64 (N,) token ids; marks them seen, counts draws."""
        index = torch.tensor(slots, device=self.device)  # (N,)
        stages = self.stages(slots)
        tokens = sample(
            logits,
            self._params(index),
            seen=self._seen[index] if stages.penalty else None,
            allowed=self._allowed[index] if stages.mask else None,
            any_random=stages.random,
        )
        self._seen[index, tokens] = True
        self._counters[index] += 1
        return tokens

    def sample_rows(
        self, logits: torch.Tensor, active: torch.Tensor, stages: Stages
    ) -> torch.Tensor:
        """A decode step's draw for slots [0, B): logits (B, V), active bool (B,) → int64 (B,).

        Only active rows (slots that are decoding) count the draw and mark the token seen; the
        others' tokens are thrown away. No host synchronisation: safe inside a CUDA graph.
        """
        batch = logits.shape[0]
        tokens = sample(
            logits,
            self._params(slice(0, batch)),
            seen=self._seen[:batch] if stages.penalty else None,
            allowed=self._allowed[:batch] if stages.mask else None,
            any_random=stages.random,
        )  # (B,)
        rows = self._rows[:batch]  # (B,)
        self._seen[rows, tokens] = self._seen[rows, tokens] | active
        self._counters[:batch] += active
        return tokens
