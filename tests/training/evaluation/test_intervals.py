"""Bootstrap intervals over dialogues: they hold the figure, shrink with more dialogues, follow
whole dialogues, and pair the two bundles' dialogues for a TTFA ratio."""

from __future__ import annotations

import pytest

from training.evaluation.intervals import ratio_interval, share_interval


def test_a_share_s_interval_holds_it_and_shrinks_with_more_dialogues():
    small = share_interval([[True, False]] * 5 + [[True]] * 5)
    large = share_interval([[True, False]] * 50 + [[True]] * 50)
    assert small.value == pytest.approx(10 / 15) == large.value
    assert small.low < small.value < small.high
    assert large.high - large.low < small.high - small.low
    assert share_interval([[True]] * 10).to_dict() == {"value": 1.0, "low": 1.0, "high": 1.0}
    assert share_interval([[], []]) is None


def test_dialogues_are_resampled_whole():
    """Ten dialogues all right or all wrong vary more than thirty independent turns do."""
    clustered = share_interval([[True] * 3] * 5 + [[False] * 3] * 5)
    independent = share_interval([[True]] * 15 + [[False]] * 15)
    assert clustered.value == independent.value == 0.5
    assert clustered.high - clustered.low > independent.high - independent.low


def test_a_ttfa_ratio_pairs_the_same_dialogues():
    atta = [[100.0, 110.0], [90.0], [120.0, 100.0]]
    ata = [[75.0, 82.0], [68.0], [90.0, 75.0]]
    estimate = ratio_interval(ata, atta)
    assert estimate.value == pytest.approx(75.0 / 100.0)
    assert estimate.low <= estimate.value <= estimate.high < 1.0
    assert ratio_interval([[]], [[1.0]]) is None
    with pytest.raises(ValueError, match="same dialogues"):
        ratio_interval(ata, atta[:2])
