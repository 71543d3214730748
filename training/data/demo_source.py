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
    check_held_out,
    codec_fit_audio,
    codec_fit_clips,
    plan_dialogue,
    user_audio,
)
from training.data.domain import speech_replies
from training.data.shards import Corpus
from training.data.source import EvalTurn
from training.data.synth import (
    ASSISTANT_VOICE,
    DEV_VOICE_NAMES,
    HELD_OUT_LANGUAGES,
    HELD_OUT_VARIANTS,
    NOISE_KINDS,
    SAMPLE_RATE_HZ,
    STRESS_VOICE_NAMES,
    Voice,
    check_voice,
    voice_named,
)
from training.data.voicing import NO_AUGMENTATION, Augmentation, prefetch_replies, reply_audio

SPLIT_VOICES = {
    "train": "training voices, augmented",
    "dev": f"dev voices only ({', '.join(DEV_VOICE_NAMES)})",
    "test": f"test voices only ({', '.join(HELD_OUT_LANGUAGES)}; "
            f"variants {', '.join(HELD_OUT_VARIANTS)})",
}


@dataclass(frozen=True)
class Condition:
    """How the user turns sound instead of the split's own choice, to stress a model with what
    users bring (the demo-domain page: other English voices, 120–200 words per minute, noise
    down to 20 dB SNR, a quiet or loud microphone, a telephone band, a room). None keeps the
    split's choice; the dialogues stay the same.

    voice: an espeak-ng voice for every user turn, `en-gb-scotland` or `en-us+m7`.
    speed_wpm: the speaking rate of every user turn.
    snr_db / noise: background noise of this kind (synth.NOISE_KINDS) at this SNR, seeded per
        turn. gain_db: the level changed by this much (clipped at full scale).
    band_rate_hz: through a channel of this sample rate (8000: telephone).
    echo_rt60_s: a room echo of this reverberation time.
    """

    voice: str | None = None
    speed_wpm: int | None = None
    snr_db: float | None = None
    noise: str = "white"
    gain_db: float | None = None
    band_rate_hz: int | None = None
    echo_rt60_s: float | None = None

    def __post_init__(self) -> None:
        self.voiced(ASSISTANT_VOICE)  # a bad or missing voice or speed fails before synthesis
        self.augmentation(NO_AUGMENTATION)  # a bad noise, SNR, gain, band or echo fails here

    def voiced(self, voice: Voice) -> Voice:
        """`voice` with this condition's voice and speed. Raises ValueError for a malformed name
        or speed, SynthesisError for a voice espeak-ng lacks."""
        if self.voice is not None:
            named = voice_named(self.voice)
            voice = replace(voice, language=named.language, variant=named.variant)
            check_voice(voice)
        if self.speed_wpm is not None:
            voice = replace(voice, speed_wpm=self.speed_wpm)
        return voice

    def augmentation(self, base: Augmentation) -> Augmentation:
        """`base` with this condition's signal changes put in place of its own."""
        changes = {name: getattr(self, name) for name in
                   ("snr_db", "gain_db", "band_rate_hz", "echo_rt60_s")
                   if getattr(self, name) is not None}
        if self.snr_db is not None:
            changes["noise"] = self.noise
        return replace(base, **changes)

    def apply(self, plan: DialoguePlan) -> DialoguePlan:
        """`plan` voiced under this condition."""
        return replace(plan, voice=self.voiced(plan.voice),
                       augmentations=tuple(map(self.augmentation, plan.augmentations)))

    def describe(self) -> str:
        """`voice en-gb-scotland, 190 wpm, pink noise at 20 dB SNR`; '' for no condition."""
        parts = [f"voice {self.voice}" if self.voice is not None else None,
                 f"{self.speed_wpm} wpm" if self.speed_wpm is not None else None,
                 f"{self.noise} noise at {self.snr_db:g} dB SNR"
                 if self.snr_db is not None else None,
                 f"level {self.gain_db:+g} dB" if self.gain_db is not None else None,
                 f"{self.band_rate_hz / 1000:g} kHz channel"
                 if self.band_rate_hz is not None else None,
                 f"room echo RT60 {self.echo_rt60_s:g} s"
                 if self.echo_rt60_s is not None else None]
        return ", ".join(part for part in parts if part is not None)


def stress_conditions() -> dict[str, Condition]:
    """The stress set (docs/training.md, "Stress set"): one condition per bucket, each spoken by
    a stress voice (none of them a training, dev or test voice), voices taken in turn."""
    voices = STRESS_VOICE_NAMES
    buckets: list[tuple[str, dict]] = [(f"voice {v}", {}) for v in voices]
    buckets += [("120 wpm", {"speed_wpm": 120}), ("200 wpm", {"speed_wpm": 200})]
    buckets += [(f"{kind} noise 20 dB", {"snr_db": 20.0, "noise": kind}) for kind in NOISE_KINDS]
    buckets += [("level −20 dB", {"gain_db": -20.0}), ("level +20 dB", {"gain_db": 20.0}),
                ("8 kHz band", {"band_rate_hz": 8000}), ("room echo", {"echo_rt60_s": 0.3})]
    return {name: Condition(voice=voices[i % len(voices)], **settings)
            for i, (name, settings) in enumerate(buckets)}


def demo_dialogues(spec: DemoCorpusSpec, split: str, limit: int | None = None,
                   condition: Condition | None = None) -> list[list[EvalTurn]]:
    """The demo corpus's dialogues of `split`, re-voiced exactly as the corpus voiced them or
    under `condition`."""
    count = spec.size(split) if limit is None else min(limit, spec.size(split))
    plans = [plan_dialogue(spec, split, i) for i in range(count)]
    if condition is not None:
        plans = [condition.apply(plan) for plan in plans]
    return [
        [EvalTurn(turn.user, turn.reply, clip, SAMPLE_RATE_HZ, turn.intent,
                  turn.category.value)
         for turn, clip in zip(plan.dialogue.turns, clips, strict=True)]
        for plan, clips in zip(plans, user_audio(plans), strict=True)
    ]


class DemoSource:
    """The demo corpus of one recipe: dev and test are each data.eval_examples dialogues, the
    text split stage0.dialogues (none without stage 0)."""

    def __init__(self, recipe: Recipe) -> None:
        data = recipe.data
        self.spec = DemoCorpusSpec(
            train_dialogues=data.train_examples, dev_dialogues=data.eval_examples,
            test_dialogues=data.eval_examples, seed=recipe.training.seed,
            augment_prob=data.augment_prob, max_speech_tokens=data.max_speech_tokens,
            text_dialogues=recipe.stage0.dialogues if recipe.stage0.enabled else 0,
            wide_augmentation=data.wide_augmentation)
        self.corpus_dir = data.corpus_dir
        self.shard_size = data.shard_size
        self.unit_codec = recipe.unit_codec
        self.codec_kind = recipe.model.codec_kind
        self.seed = recipe.training.seed

    def codec_fit_audio(self) -> list[np.ndarray]:
        """The clips the unit codec is fitted on (unit_codec.fit_dialogues training dialogues)."""
        return codec_fit_audio(self.spec, self.unit_codec.fit_dialogues)

    def fit_codec(self, directory: Path, progress: bool) -> None:
        """Fit the unit codec on the corpus's own audio, then its context decoder on the replies
        speech training may hear (the one voice it decodes; no test-only reply), and save it to
        `directory`. With `whisper-units` the reply codec is fitted on those replies alone and
        the user units on the fitting dialogues' user turns."""
        from model.codecs.heard_units import HeardUnitCodec
        from model.codecs.units import UnitCodec, UnitCodecConfig

        fit = self.unit_codec
        users, fit_replies = codec_fit_clips(self.spec, fit.fit_dialogues)
        fitted = [plan_dialogue(self.spec, "train", i)
                  for i in range(min(fit.fit_dialogues, self.spec.train_dialogues))]
        replies = sorted(set(speech_replies()) | {
            turn.reply for plan in fitted for turn in plan.dialogue.turns})
        prefetch_replies(replies)
        reply_clips = [reply_audio(reply) for reply in replies]
        heard = self.codec_kind == "whisper-units"
        clips = reply_clips if heard else users + fit_replies
        config = UnitCodecConfig(encoder_context=fit.encoder_context,
                                 encoder_cepstra=fit.encoder_cepstra)
        frames = sum(clip.size for clip in clips) // config.hop_samples
        codec = UnitCodec.fit(clips, units=fit.units_for(frames), seed=self.seed,
                              progress=progress, config=config)
        codec = codec.fit_decoder(reply_clips, context=fit.decoder_context)
        if heard:
            HeardUnitCodec.fit(codec, users, fit.user_units, seed=self.seed).save(directory)
        else:
            codec.save(directory)

    def build_corpus(self, codec: SpeechCodec, progress: bool) -> None:
        """Build (or resume) the corpus, then prove that no train or dev dialogue holds
        held-out content (`check_held_out`)."""
        build_demo_corpus(self.corpus_dir, self.spec, codec, shard_size=self.shard_size,
                          progress=progress)
        check_held_out(Corpus.open(self.corpus_dir))

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
