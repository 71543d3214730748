"""Corpus sources by recipe: the demo source's corpus is the recipe's, built once; SODA-TTS fits
no codec and has no user audio to evaluate with."""

from __future__ import annotations

import pytest

from training.data.demo_source import DemoSource
from training.data.soda_corpus import SodaSource
from training.data.source import SourceError
from training.data.sources import corpus_source
from training.recipe_files import load_recipe


def test_the_demo_source_holds_the_corpus_its_recipe_describes():
    recipe = load_recipe("demo")
    source = corpus_source(recipe)
    assert isinstance(source, DemoSource)
    spec = source.spec
    assert (spec.train_dialogues, spec.dev_dialogues, spec.test_dialogues) == (12000, 250, 250)
    assert (spec.text_dialogues, spec.wide_augmentation) == (20000, True)
    assert (spec.seed, spec.augment_prob, spec.max_speech_tokens) == (0, 0.5, 500)
    assert source.split_voices("test") == (
        "test voices only (en-gb-x-gbcwmd, en-us-nyc; variants m4, f4)")
    assert source.split_voices("dev") == (
        "dev voices only (en-us+m7, en-us+klatt2, en-gb-x-rp+klatt3)")


def test_the_tiny_demo_source_voices_its_test_dialogues(tmp_path):
    recipe = load_recipe("tiny", [f"data.corpus_dir={tmp_path}"])
    dialogues = corpus_source(recipe).dialogues("test", limit=1)
    assert len(dialogues) == 1 and dialogues[0][0].audio.size > 0
    assert dialogues[0][0].sample_rate == 16_000 and dialogues[0][0].reply_text


def test_the_soda_source_fits_no_codec_and_has_no_evaluation_audio(tmp_path):
    source = corpus_source(load_recipe("anygpt"))
    assert isinstance(source, SodaSource) and source.input_level_dbfs() is None
    with pytest.raises(SourceError, match="model.codec_path"):
        source.fit_codec(tmp_path / "codec", progress=False)
    with pytest.raises(SourceError, match="SODA-TTS"):
        source.dialogues("test", 1)
