"""The ICoT removal schedule: how many transcript tokens stage 2 removes at each optimizer step.

Stepwise internalization (Deng, Choi & Shieber 2024) as the paper applies it to the ASR
transcript: at step s the first k = s // T + 1 + o transcript tokens are removed, where T is the
number of steps per removal and o is a per-example offset drawn from the removal-smoothing
distribution P(o) = (1 − e^−λ) e^−λo (geometric; λ = 4 puts 98 % of the mass on o = 0). Each time
the base count k grows the optimizer is reset. Pure arithmetic: no torch, no data, no model.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RemovalSchedule:
    """k(step) and the smoothing offset; validated on construction.

    steps_per_removal: T, optimizer steps between two removals (the paper: 2,500).
    lambda_: λ of the removal smoothing; larger is sharper; `math.inf` turns smoothing off
        (offset always 0).
    max_offset: the offset is drawn from the geometric distribution truncated to 0..max_offset
        (renormalized); None leaves it untruncated.
    """

    steps_per_removal: int
    lambda_: float = 4.0
    max_offset: int | None = None

    def __post_init__(self) -> None:
        if self.steps_per_removal < 1:
            raise ValueError(f"steps_per_removal must be ≥ 1, got {self.steps_per_removal}")
        if not self.lambda_ > 0:  # also rejects NaN
            raise ValueError(f"lambda_ must be > 0 (inf: no smoothing), got {self.lambda_}")
        if self.max_offset is not None and self.max_offset < 0:
            raise ValueError(f"max_offset must be ≥ 0 or None, got {self.max_offset}")

    def k_at(self, step: int) -> int:
        """The base number of tokens removed at optimizer step `step` (0-based): step // T + 1."""
        if step < 0:
            raise ValueError(f"step must be ≥ 0, got {step}")
        return step // self.steps_per_removal + 1

    def sample_offset(self, rng: random.Random) -> int:
        """One draw of the smoothing offset o ~ P(o) ∝ e^−λo on 0..max_offset (or 0..∞).

        Inverse-CDF sampling: with q = e^−λ, P(o ≤ n) = 1 − q^(n+1), so o = floor(ln(1 − u·c) /
        ln q) for u ~ U[0, 1) and c = 1 − q^(max_offset+1) (c = 1 when untruncated).
        """
        if math.isinf(self.lambda_) or self.max_offset == 0:
            return 0
        if self.max_offset is None:
            mass = 1.0
        else:
            mass = -math.expm1(-self.lambda_ * (self.max_offset + 1))
        u = rng.random()
        offset = math.floor(math.log1p(-u * mass) / -self.lambda_)
        # Rounding at the top of the truncated range can land one past max_offset.
        return offset if self.max_offset is None else min(offset, self.max_offset)

    def tokens_to_remove(self, step: int, rng: random.Random, transcript_len: int) -> int:
        """How many tokens to cut from the start of one example's transcript at `step`.

        k_at(step) plus a fresh offset, clipped to the transcript's length (a clipped example
        has its whole transcript removed: it is already an A-T-A example).
        """
        if transcript_len < 0:
            raise ValueError(f"transcript_len must be ≥ 0, got {transcript_len}")
        return min(self.k_at(step) + self.sample_offset(rng), transcript_len)

    def is_complete(self, step: int, max_transcript_len: int) -> bool:
        """True once the base count alone removes every token of the longest transcript."""
        return self.k_at(step) >= max_transcript_len

    def completion_step(self, max_transcript_len: int) -> int:
        """The first step at which `is_complete` holds: (max_transcript_len − 1) · T (or 0)."""
        return max(max_transcript_len - 1, 0) * self.steps_per_removal


@dataclass(frozen=True)
class OptimizerReset:
    """Tells the training loop when to rebuild its optimizer: at each step where k grew.

    Stateless on purpose, so a loop resumed from a checkpoint asks the same question and gets
    the same answer. Once the longest transcript is gone (k ≥ max_transcript_len before the
    step) further growth of k changes no example, so there is nothing to reset for.
    """

    schedule: RemovalSchedule
    max_transcript_len: int

    def due(self, step: int) -> bool:
        """True iff k_at(step) > k_at(step − 1) while removal was still under way."""
        if step == 0:
            return False
        previous_k = self.schedule.k_at(step - 1)
        return self.schedule.k_at(step) > previous_k and previous_k < self.max_transcript_len
