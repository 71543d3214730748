"""The word tokenizer of from-scratch models and tiny bundles: text round-trips (unknown words
through letters), unit tokens have consecutive ids, ids do not depend on word order, and a saved
tokenizer loads back identical."""

from __future__ import annotations

import pytest

from model.speech_tokens import SpeechVocab, unit_token
from training.word_tokenizer import build_word_tokenizer

N_UNITS = 32
WORDS = ["what is two plus three", "two plus three is five", "my name is anna",
         "nice to meet you anna", "what is my name", "your name is anna"]


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer(WORDS, N_UNITS)


@pytest.fixture(scope="module")
def vocab(tokenizer):
    return SpeechVocab(tokenizer)


def speech(units: list[int]) -> str:
    return "<sosp>" + "".join(unit_token(u) for u in units) + "<eosp>"


def test_word_tokenizer_round_trips_text_and_falls_back_to_letters(vocab, tokenizer):
    for text in [*WORDS, "zebra quux", "route 66"]:
        assert vocab.decode_text(vocab.encode_text(text)) == text
    assert len(vocab.encode_text("two plus three")) == 3  # whole words are single tokens
    assert len(vocab.encode_text("zebra")) == 5  # unknown word → letters
    unit_ids = [tokenizer.convert_tokens_to_ids(unit_token(u)) for u in range(N_UNITS)]
    assert unit_ids == list(range(unit_ids[0], unit_ids[0] + N_UNITS))
    assert build_word_tokenizer(reversed(WORDS), N_UNITS).get_vocab() == tokenizer.get_vocab()


def test_word_tokenizer_survives_save_and_load(tmp_path, tokenizer):
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = f"[Human]: {speech([3, 1])} <eoh> what is two plus three"
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert SpeechVocab(loaded).markers == SpeechVocab(tokenizer).markers
