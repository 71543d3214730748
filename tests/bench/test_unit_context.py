"""bench.unit_context: collapsing unit runs, identifying questions by their nearest reference,
and the options that choose what is compared."""

from __future__ import annotations

import argparse
import random

import numpy as np
import pytest

from bench.unit_context import collapsed, configure, identified_share
from model.codecs.units import UnitCodec
from training.data.domain import single_turns
from training.data.synth import sample_training_voice, synthesize_many


@pytest.fixture(scope="module")
def questions() -> list[tuple[str, np.ndarray]]:
    """Six distinct demo questions in one training voice: (text, audio)."""
    voice = sample_training_voice(random.Random(1))
    texts = [turn.user for turn in single_turns()[::40]][:6]
    return list(zip(texts, synthesize_many([(text, voice) for text in texts]), strict=True))


@pytest.fixture(scope="module")
def codec(questions: list[tuple[str, np.ndarray]]) -> UnitCodec:
    return UnitCodec.fit([clip for _, clip in questions], units=32, seed=0, iterations=10,
                         progress=False)


def test_collapsed_keeps_one_unit_of_each_run() -> None:
    assert collapsed(np.array([3, 3, 1, 1, 1, 3, 2])) == [3, 1, 3, 2]
    assert collapsed(np.array([7])) == [7]
    assert collapsed(np.array([], dtype=np.int64)) == []


def test_a_query_counts_when_its_nearest_reference_has_its_text(
    codec: UnitCodec, questions: list[tuple[str, np.ndarray]]
) -> None:
    assert len({text for text, _ in questions}) == len(questions)
    # Each clip is its own nearest reference (distance 0): identified under its own text...
    assert identified_share(codec.encode, questions, questions) == 1.0
    # ...and not under another question's.
    relabelled = [(questions[(i + 1) % len(questions)][0], clip)
                  for i, (_, clip) in enumerate(questions)]
    assert identified_share(codec.encode, questions, relabelled) == 0.0
    # One query of six carrying a wrong label: five of six identified.
    one_wrong = [(questions[1][0], questions[0][1]), *questions[1:]]
    assert identified_share(codec.encode, questions, one_wrong) == pytest.approx(5 / 6)


def test_options_choose_contexts_cepstra_and_noise_levels() -> None:
    parser = argparse.ArgumentParser()
    configure(parser)
    defaults = parser.parse_args([])
    assert (defaults.contexts, defaults.cepstra, defaults.snr) == ([0, 1, 2, 3], [0], [])
    chosen = parser.parse_args("--contexts 2 3 --cepstra 0 13 --snr 30 20".split())
    assert (chosen.contexts, chosen.cepstra, chosen.snr) == ([2, 3], [0, 13], [30.0, 20.0])
