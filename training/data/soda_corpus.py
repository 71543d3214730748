"""The SODA-TTS corpus: a local copy of robinysh/soda_tts read by soda.py, stored as shards.

Splits: `train` (SODA's train), `dev` (its validation) and `test` (its test), each capped by the
recipe, one turn per record (the authors' template carries no history). The units are
SpeechTokenizer layer-1 units as the dataset ships them; nothing is voiced or encoded here, so
`SodaSource` (the corpus source of the anygpt recipe) fits no codec and has no user audio to
evaluate with. Knows nothing of tokenizers or models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model.codecs import SpeechCodec
from training.config import DataConfig, Recipe
from training.data.shards import Corpus, SplitPlan, build_corpus
from training.data.soda import SodaFilter, count_rows, read_soda
from training.data.source import EvalTurn, SourceError

CORPUS_FORMAT = "icot-soda-corpus/1"
SODA_SPLITS = {"train": "train", "dev": "validation", "test": "test"}  # ours → the dataset's


def _source(directory: str, split: str, keep: SodaFilter, n_units: int):
    def rows(start: int, stop: int):
        for example in read_soda(directory, split, keep, start=start, stop=stop, n_units=n_units):
            yield example.to_record()

    return rows


def build_soda_corpus(
    directory: str | Path,
    data: DataConfig,
    n_units: int,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Build (or resume) the sharded corpus of `data.soda_dir`; returns the manifest.

    train is capped at data.train_examples rows, dev and test at data.eval_examples (None: all);
    rows over data.max_speech_tokens units or data.max_tts_wer are dropped (soda.SodaFilter).
    """
    if data.soda_dir is None:
        raise ValueError("data.soda_dir is required for the SODA-TTS corpus")
    keep = SodaFilter(max_speech_tokens=data.max_speech_tokens, max_tts_wer=data.max_tts_wer)
    plans = {}
    for ours, theirs in SODA_SPLITS.items():
        cap = data.train_examples if ours == "train" else data.eval_examples
        rows = count_rows(data.soda_dir, theirs)
        size = rows if cap is None else min(cap, rows)
        plans[ours] = SplitPlan(size, _source(data.soda_dir, theirs, keep, n_units))
    config = {"format": CORPUS_FORMAT, "soda_dir": str(Path(data.soda_dir).resolve()),
              "max_speech_tokens": data.max_speech_tokens, "max_tts_wer": data.max_tts_wer,
              "n_units": n_units}
    return build_corpus(directory, plans, config, shard_size=data.shard_size,
                        overwrite=overwrite, progress=progress)


class SodaSource:
    """The SODA-TTS corpus of one recipe (see the module docstring)."""

    def __init__(self, recipe: Recipe) -> None:
        self.data = recipe.data

    def fit_codec(self, directory: Path, progress: bool) -> None:
        raise SourceError("SODA-TTS ships SpeechTokenizer units: set model.codec_path to the "
                          "SpeechTokenizer directory instead of fitting a codec")

    def build_corpus(self, codec: SpeechCodec, progress: bool) -> None:
        build_soda_corpus(self.data.corpus_dir, self.data, codec.vocab_size, progress=progress)

    def open_corpus(self, codec: SpeechCodec) -> Corpus:
        return Corpus.open(self.data.corpus_dir)

    def input_level_dbfs(self) -> None:
        return None  # the dataset keeps units, not the audio they were encoded from

    def split_voices(self, split: str) -> str:
        return f"SODA-TTS {SODA_SPLITS[split]} voices"

    def dialogues(self, split: str, limit: int | None = None,
                  condition: Any = None) -> list[list[EvalTurn]]:
        raise SourceError("the SODA-TTS corpus keeps no user audio for the evaluation to speak "
                          "to the bundles; evaluate them with a demo recipe")
