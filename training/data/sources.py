"""Which corpus sources exist, by the recipe's `data.source`: the demo domain and SODA-TTS.

`corpus_source(recipe)` builds a recipe's source once, for the whole run (training/pipeline.py)
or evaluation (`icot eval`). Add a source by writing one (source.py says what it must do) and
naming it here and in `DataConfig.source`.
"""

from __future__ import annotations

from collections.abc import Callable

from training.config import Recipe
from training.data.demo_source import DemoSource
from training.data.soda_corpus import SodaSource
from training.data.source import CorpusSource

SOURCES: dict[str, Callable[[Recipe], CorpusSource]] = {"demo": DemoSource, "soda": SodaSource}


def corpus_source(recipe: Recipe) -> CorpusSource:
    """The source of the recipe's data.source."""
    return SOURCES[recipe.data.source](recipe)
