"""The demo domain as a corpus source: the demo corpus a recipe describes, built once per run.

`DemoSource` holds the recipe's `DemoCorpusSpec` (training/data/demo_corpus.py) and does what
the pipeline asks of a source (training/data/source.py): fit the unit codec on the corpus's own
audio, build or open the corpus, measure the training user turns' speech level, and re-voice a
split's dialogues for evaluation, as the corpus voiced them or under a `Condition` (another
voice, speed or noise). Knows nothing of models, stages or bundles.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from model.audio.level import speech_level_dbfs
from model.codecs import SpeechCodec
from training.config import Recipe
from training.data.demo_corpus import (
    DemoCorpusSpec,
    DialoguePlan,
    build_demo_corpus,
    check_demo_corpus,
    codec_fit_audio,
    plan_dialogue,
    prefetch_replies,
    reply_audio,
    user_audio,
)
from training.data.domain import every_reply
from training.data.shards import Corpus
from training.data.source import EvalTurn
from training.data.synth import (
    ASSISTANT_VOICE,
    HELD_OUT_LANGUAGES,
    HELD_OUT_VARIANTS,
    SAMPLE_RATE_HZ,
    Voice,
    check_voice,
)

SPLIT_VOICES = {
    "train": "training voices, augmented",
    "dev": "training voices",
    "test": f"held-out voices only ({', '.join(HELD_OUT_LANGUAGES)}; "
            f"variants {', '.join(HELD_OUT_VARIANTS)})",
}


@dataclass(frozen=True)
class Condition:
    """How the user turns sound instead of the split's own choice, to stress a model with what
    users bring (the demo-domain page: other English voices, 130–190 words per minute, noise down
    to 20 dB SNR). None keeps the split's choice; the dialogues stay the same.

    voice: an espeak-ng voice for every user turn, `en-gb-scotland` or `en-us+m7`.
    speed_wpm: the speaking rate of every user turn.
    snr_db: white background noise at this SNR on every user turn, seeded per turn.
    """

    voice: str | None = None
    speed_wpm: int | None = None
    snr_db: float | None = None

    def __post_init__(self) -> None:
        self.voiced(ASSISTANT_VOICE)  # a bad or missing voice or speed fails before synthesis
        if self.snr_db is not None and not np.isfinite(self.snr_db):
            raise ValueError(f"snr_db must be a finite number of dB, got {self.snr_db}")

    def voiced(self, voice: Voice) -> Voice:
        """`voice` with this condition's voice and speed. Raises ValueError for a malformed name
        or speed, SynthesisError for a voice espeak-ng lacks."""
        if self.voice is not None:
            language, _, variant = self.voice.partition("+")
            voice = replace(voice, language=language, variant=variant or None)
            check_voice(voice)
        if self.speed_wpm is not None:
            voice = replace(voice, speed_wpm=self.speed_wpm)
        return voice

    def apply(self, plan: DialoguePlan) -> DialoguePlan:
        """`plan` voiced under this condition."""
        augmentations = plan.augmentations if self.snr_db is None else tuple(
            replace(a, snr_db=self.snr_db, noise="white") for a in plan.augmentations)
        return replace(plan, voice=self.voiced(plan.voice), augmentations=augmentations)

    def describe(self) -> str:
        """`voice en-gb-scotland, 190 wpm, white noise at 20 dB SNR`; '' for no condition."""
        parts = [f"voice {self.voice}" if self.voice is not None else None,
                 f"{self.speed_wpm} wpm" if self.speed_wpm is not None else None,
                 f"white noise at {self.snr_db:g} dB SNR" if self.snr_db is not None else None]
        return ", ".join(part for part in parts if part is not None)


def demo_dialogues(spec: DemoCorpusSpec, split: str, limit: int | None = None,
                   condition: Condition | None = None) -> list[list[EvalTurn]]:
    """The demo corpus's dialogues of `split`, re-voiced exactly as the corpus voiced them or
    under `condition`."""
    count = spec.size(split) if limit is None else min(limit, spec.size(split))
    plans = [plan_dialogue(spec, split, i) for i in range(count)]
    if condition is not None:
        plans = [condition.apply(plan) for plan in plans]
    return [
        [EvalTurn(turn.user, turn.reply, clip, SAMPLE_RATE_HZ, turn.intent)
         for turn, clip in zip(plan.dialogue.turns, clips, strict=True)]
        for plan, clips in zip(plans, user_audio(plans), strict=True)
    ]


class DemoSource:
    """The demo corpus of one recipe: dev and test are each data.eval_examples dialogues."""

    def __init__(self, recipe: Recipe) -> None:
        data = recipe.data
        self.spec = DemoCorpusSpec(
            train_dialogues=data.train_examples, dev_dialogues=data.eval_examples,
            test_dialogues=data.eval_examples, seed=recipe.training.seed,
            augment_prob=data.augment_prob, max_speech_tokens=data.max_speech_tokens)
        self.corpus_dir = data.corpus_dir
        self.shard_size = data.shard_size
        self.unit_codec = recipe.unit_codec
        self.seed = recipe.training.seed

    def codec_fit_audio(self) -> list[np.ndarray]:
        """The clips the unit codec is fitted on (unit_codec.fit_dialogues training dialogues)."""
        return codec_fit_audio(self.spec, self.unit_codec.fit_dialogues)

    def fit_codec(self, directory: Path, progress: bool) -> None:
        """Fit the unit codec on the corpus's own audio, then its context decoder on every reply
        the assistant can give (the one voice it decodes), and save it to `directory`."""
        from model.codecs.units import UnitCodec, UnitCodecConfig

        fit = self.unit_codec
        clips = self.codec_fit_audio()
        config = UnitCodecConfig(encoder_context=fit.encoder_context,
                                 encoder_cepstra=fit.encoder_cepstra)
        frames = sum(clip.size for clip in clips) // config.hop_samples
        codec = UnitCodec.fit(clips, units=fit.units_for(frames), seed=self.seed,
                              progress=progress, config=config)
        replies = every_reply()
        prefetch_replies(replies)
        codec = codec.fit_decoder([reply_audio(reply) for reply in replies],
                                  context=fit.decoder_context)
        codec.save(directory)

    def build_corpus(self, codec: SpeechCodec, progress: bool) -> None:
        build_demo_corpus(self.corpus_dir, self.spec, codec, shard_size=self.shard_size,
                          progress=progress)

    def open_corpus(self, codec: SpeechCodec) -> Corpus:
        corpus = Corpus.open(self.corpus_dir)
        check_demo_corpus(corpus, self.spec, codec)
        return corpus

    def input_level_dbfs(self) -> tuple[float, float]:
        """The 1st–99th percentile speech level of the training user turns, as the corpus voices
        them (augmentation included), over the dialogues the codec is fitted on."""
        count = min(self.unit_codec.fit_dialogues, self.spec.train_dialogues)
        plans = [plan_dialogue(self.spec, "train", i) for i in range(count)]
        levels = [speech_level_dbfs(clip, SAMPLE_RATE_HZ)
                  for clips in user_audio(plans) for clip in clips]
        low, high = np.percentile([level for level in levels if level is not None], [1, 99])
        return round(float(low), 1), round(float(high), 1)

    def split_voices(self, split: str) -> str:
        return SPLIT_VOICES[split]

    def dialogues(self, split: str, limit: int | None = None,
                  condition: Condition | None = None) -> list[list[EvalTurn]]:
        return demo_dialogues(self.spec, split, limit, condition)
