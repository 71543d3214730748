"""95 % confidence intervals by bootstrap over dialogues, for the results page.

Turns of one dialogue are not independent (a recall turn fails with the name turn before it), so
every interval resamples whole dialogues with replacement: a share is recomputed over the turns
of the drawn dialogues, a TTFA ratio over the same drawn dialogues for both bundles (paired).
Percentile intervals over `DRAWS` resamples from a fixed seed: the same results give the same
interval. Pure numpy: knows nothing of bundles, engines or pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DRAWS = 2000
LEVEL = 0.95
SEED = 0


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95 % interval (low, high); None figures have no interval."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def _draws(dialogues: int) -> np.ndarray:
    """(DRAWS, dialogues) indices of dialogues drawn with replacement, seeded."""
    return np.random.default_rng(SEED).integers(0, dialogues, size=(DRAWS, dialogues))


def _interval(samples: np.ndarray) -> tuple[float, float]:
    tail = (1.0 - LEVEL) / 2 * 100
    low, high = np.nanpercentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def share_interval(dialogues: Sequence[Sequence[bool]]) -> Estimate | None:
    """The share of True over all turns, with its interval; `dialogues`: each dialogue's turn
    outcomes (a dialogue may hold none). None when there is no turn at all."""
    hits = np.array([sum(turns) for turns in dialogues], dtype=np.float64)  # (D,)
    counts = np.array([len(turns) for turns in dialogues], dtype=np.float64)  # (D,)
    if counts.sum() == 0:
        return None
    draws = _draws(len(dialogues))  # (DRAWS, D)
    with np.errstate(invalid="ignore", divide="ignore"):
        samples = hits[draws].sum(axis=1) / counts[draws].sum(axis=1)  # (DRAWS,)
    return Estimate(float(hits.sum() / counts.sum()), *_interval(samples))


def ratio_interval(numerator: Sequence[Sequence[float]],
                   denominator: Sequence[Sequence[float]]) -> Estimate | None:
    """median(numerator) / median(denominator) over the turns of the same dialogues (e.g. the
    A-T-A bundle's TTFA over the A-T-T-A bundle's), with its paired interval; each argument holds
    one list of per-turn values per dialogue, in the same dialogue order. None without values."""
    if len(numerator) != len(denominator):
        raise ValueError("both sides need the same dialogues")
    if not any(numerator) or not any(denominator):
        return None
    value = float(np.median(np.concatenate([np.asarray(d, float) for d in numerator if d]))
                  / np.median(np.concatenate([np.asarray(d, float) for d in denominator if d])))
    samples = np.empty(DRAWS)
    for row, drawn in enumerate(_draws(len(numerator))):
        top = [v for i in drawn for v in numerator[i]]
        bottom = [v for i in drawn for v in denominator[i]]
        samples[row] = np.median(top) / np.median(bottom) if top and bottom else np.nan
    return Estimate(value, *_interval(samples))
