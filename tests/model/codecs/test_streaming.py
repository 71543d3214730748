"""The streaming decoder says ahead of a push whether the push will decode a chunk."""

from __future__ import annotations

import numpy as np
import pytest

from model.codecs import StreamingDecoder
from model.codecs.speechtokenizer import SpeechTokenizerCodec


@pytest.fixture(scope="module")
def codec() -> SpeechTokenizerCodec:
    return SpeechTokenizerCodec.random(seed=0)  # the 0.4 M-parameter test size


@pytest.mark.parametrize("step", [1, 2, 7])
def test_emits_after_predicts_every_push(codec, step):
    units = np.random.default_rng(step).integers(0, codec.vocab_size, 60)
    decoder = StreamingDecoder(codec)
    predicted, emitted = [], []
    for start in range(0, units.size, step):
        piece = units[start:start + step]
        predicted.append(decoder.emits_after(piece.size))
        emitted.append(bool(decoder.push(piece)))
    assert predicted == emitted
    assert any(emitted) and not all(emitted)
