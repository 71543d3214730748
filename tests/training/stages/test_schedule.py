"""The removal schedule: k over steps, the smoothing offset's distribution, clipping, resets."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats

from training.stages.schedule import OptimizerReset, RemovalSchedule


def test_k_grows_by_one_every_T_steps():
    schedule = RemovalSchedule(steps_per_removal=150)
    assert [schedule.k_at(s) for s in (0, 1, 149, 150, 299, 300, 1499)] == [1, 1, 1, 2, 2, 3, 10]


@pytest.mark.parametrize("lambda_", [4.0, 1.0])
def test_offset_follows_the_geometric_pmf(lambda_):
    schedule = RemovalSchedule(steps_per_removal=10, lambda_=lambda_)
    rng = random.Random(1234)
    n = 40_000
    draws = [schedule.sample_offset(rng) for _ in range(n)]
    q = math.exp(-lambda_)
    expected_mean = q / (1 - q)
    mean = sum(draws) / n
    std_of_mean = math.sqrt(q) / (1 - q) / math.sqrt(n)
    assert abs(mean - expected_mean) < 5 * std_of_mean
    # Chi-square over bins 0..3 and a tail bin ≥ 4.
    pmf = [(1 - q) * q**o for o in range(4)]
    expected = [p * n for p in pmf] + [q**4 * n]
    observed = [draws.count(o) for o in range(4)] + [sum(d >= 4 for d in draws)]
    keep = [i for i, e in enumerate(expected) if e >= 5]  # chi-square needs ≥ 5 per bin
    obs = [observed[i] for i in keep]
    exp = [expected[i] for i in keep]
    exp[-1] += n - sum(exp)  # fold the dropped bins' mass into the last kept bin
    obs[-1] += n - sum(obs)
    assert stats.chisquare(obs, exp).pvalue > 1e-3


def test_truncated_offset_stays_in_range_and_renormalizes():
    schedule = RemovalSchedule(steps_per_removal=10, lambda_=0.5, max_offset=2)
    rng = random.Random(7)
    n = 30_000
    draws = [schedule.sample_offset(rng) for _ in range(n)]
    assert set(draws) == {0, 1, 2}
    q = math.exp(-0.5)
    norm = 1 + q + q**2
    for o in range(3):
        assert abs(draws.count(o) / n - q**o / norm) < 0.015


def test_infinite_lambda_turns_smoothing_off():
    schedule = RemovalSchedule(steps_per_removal=10, lambda_=math.inf)
    rng = random.Random(0)
    assert {schedule.sample_offset(rng) for _ in range(1000)} == {0}


def test_tokens_to_remove_is_clipped_to_the_transcript():
    schedule = RemovalSchedule(steps_per_removal=100, lambda_=0.2)  # offsets of several tokens
    rng = random.Random(3)
    counts = [schedule.tokens_to_remove(450, rng, transcript_len=6) for _ in range(2000)]
    assert min(counts) == 5  # k = 5 at step 450, offset ≥ 0
    assert max(counts) == 6  # never past the transcript
    assert schedule.tokens_to_remove(10_000, rng, transcript_len=3) == 3
    assert schedule.tokens_to_remove(0, rng, transcript_len=0) == 0


def test_completion():
    schedule = RemovalSchedule(steps_per_removal=100)
    assert schedule.completion_step(7) == 600
    assert not schedule.is_complete(599, 7)
    assert schedule.is_complete(600, 7)
    assert schedule.is_complete(0, 1)


def test_optimizer_resets_exactly_when_k_grows():
    schedule = RemovalSchedule(steps_per_removal=50)
    reset = OptimizerReset(schedule, max_transcript_len=4)
    due = [s for s in range(400) if reset.due(s)]
    # k grows at 50, 100, 150 (k: 1→2→3→4); after k = 4 the transcript is gone: no more resets.
    assert due == [50, 100, 150]
    for step in due:
        assert schedule.k_at(step) == schedule.k_at(step - 1) + 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"steps_per_removal": 0},
        {"steps_per_removal": 10, "lambda_": 0.0},
        {"steps_per_removal": 10, "lambda_": float("nan")},
        {"steps_per_removal": 10, "max_offset": -1},
    ],
)
def test_invalid_schedules_are_rejected(kwargs):
    with pytest.raises(ValueError):
        RemovalSchedule(**kwargs)
