"""The demo corpus: demo-domain dialogues voiced with espeak-ng, encoded by a codec, in shards.

Splits: `train` (training voices, augmented), `dev` (the dev voices, clean), `test` (the test
voices, clean) and `text` (dialogues with no audio at all: stage 0's text chat). Speech splits
never hold held-out content but `test`, which asks about it half the time where an intent has
some (training/data/domain.py, `Content`); `check_held_out` proves it over a built corpus. Each
position of a split is one dialogue of one to three turns planned from a generator seeded by
(seed, split, position) — its text, its user voice, speed and pitch, and each turn's
augmentation — so a build resumed or repeated anywhere writes the same bytes. User turns are
spoken in the dialogue's user voice, replies in the fixed assistant voice
(training/data/synth.py); edge silences are trimmed to a short margin. Records are stored with
training/data/shards.py, one dialogue per line. Knows nothing of tokenizers, templates or
models; the codec is passed in.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.audio import resample
from model.codecs import SpeechCodec
from training.data.domain import Content, Dialogue, reply_to, sample_dialogue
from training.data.shards import Corpus, CorpusError, SplitPlan, build_corpus
from training.data.synth import (
    ASSISTANT_VOICE,
    DEV_VOICES,
    HELD_OUT_LANGUAGES,
    HELD_OUT_VARIANTS,
    SAMPLE_RATE_HZ,
    TRAINING_PITCH_RANGE,
    TRAINING_SPEED_RANGE_WPM,
    Voice,
    espeak_path,
    sample_training_voice,
    synthesize_many,
)
from training.data.voicing import (
    Augmentation,
    prefetch_replies,
    reply_audio,
    sample_augmentation,
    trim_silence,
)

CORPUS_FORMAT = "icot-demo-corpus/2"
SPEECH_SPLITS = ("train", "dev", "test")
TEXT_SPLIT = "text"
SPLITS = (*SPEECH_SPLITS, TEXT_SPLIT)
SPLIT_CONTENT = {"train": Content.SPEECH, "dev": Content.SPEECH, "test": Content.TEST,
                 TEXT_SPLIT: Content.TEXT}


@dataclass(frozen=True)
class DemoCorpusSpec:
    """What a demo corpus holds: dialogues per split, seed, augmentation and the length limit.

    augment_prob: probability that a training user turn is augmented (speed, noise or both).
    max_speech_tokens: a dialogue with a user turn or reply longer than this many units is
        left out (its position is skipped).
    memory_rate: share of multi-turn dialogues that state a name or number and later ask for it.
    text_dialogues: dialogues of the `text` split (stage 0's text chat; no audio).
    wide_augmentation: augmented training turns may also get other noise kinds, a level change,
        a telephone band or a room echo (`_sample_augmentation`).
    """

    train_dialogues: int
    dev_dialogues: int
    test_dialogues: int
    text_dialogues: int = 0
    wide_augmentation: bool = False
    seed: int = 0
    augment_prob: float = 0.0
    max_speech_tokens: int = 500
    memory_rate: float = 0.5

    def __post_init__(self) -> None:
        for split in SPLITS:
            if self.size(split) < 0:
                raise ValueError(f"{split}_dialogues must be ≥ 0, got {self.size(split)}")
        if not 0.0 <= self.augment_prob <= 1.0:
            raise ValueError(f"augment_prob must lie in [0, 1], got {self.augment_prob}")
        if self.max_speech_tokens < 1:
            raise ValueError(f"max_speech_tokens must be ≥ 1, got {self.max_speech_tokens}")
        if not 0.0 <= self.memory_rate <= 1.0:
            raise ValueError(f"memory_rate must lie in [0, 1], got {self.memory_rate}")

    def size(self, split: str) -> int:
        """Dialogue positions planned for `split`."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; the demo corpus has {', '.join(SPLITS)}")
        return getattr(self, f"{split}_dialogues")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DialoguePlan:
    """Everything about one dialogue except its audio: text, user voice, per-turn augmentation."""

    split: str
    index: int
    dialogue: Dialogue
    voice: Voice
    augmentations: tuple[Augmentation, ...]

    @property
    def seed(self) -> str:
        return f"{self.split}:{self.index}"


def _held_out_voice(rng: random.Random) -> Voice:
    """A test language and variant at a speed and pitch drawn from the training ranges."""
    return Voice(rng.choice(HELD_OUT_LANGUAGES), rng.choice(HELD_OUT_VARIANTS),
                 rng.randint(*TRAINING_SPEED_RANGE_WPM), rng.randint(*TRAINING_PITCH_RANGE))


def _dev_voice(rng: random.Random) -> Voice:
    """A dev voice at a speed and pitch drawn from the training ranges."""
    voice = rng.choice(DEV_VOICES)
    return Voice(voice.language, voice.variant, rng.randint(*TRAINING_SPEED_RANGE_WPM),
                 rng.randint(*TRAINING_PITCH_RANGE))


SPLIT_VOICE = {"train": sample_training_voice, "dev": _dev_voice, "test": _held_out_voice,
               TEXT_SPLIT: lambda rng: ASSISTANT_VOICE}  # text: no user audio is ever made


def plan_dialogue(spec: DemoCorpusSpec, split: str, index: int) -> DialoguePlan:
    """The dialogue at `index` of `split`: the same plan for the same (spec.seed, split, index).

    train draws from the training voices, dev from the dev voices, test from the test voices,
    each split from its own seed stream; only train turns are augmented. The text of each split
    is drawn from the content SPLIT_CONTENT allows it.
    """
    if not 0 <= index < spec.size(split):
        raise IndexError(f"{split} has {spec.size(split)} dialogues; no index {index}")
    rng = random.Random(f"{CORPUS_FORMAT}:{spec.seed}:{split}:{index}")
    dialogue = sample_dialogue(rng, memory_rate=spec.memory_rate, content=SPLIT_CONTENT[split])
    voice = SPLIT_VOICE[split](rng)
    prob = spec.augment_prob if split == "train" else 0.0
    augmentations = tuple(sample_augmentation(rng, prob, spec.wide_augmentation)
                          for _ in dialogue.turns)
    return DialoguePlan(split, index, dialogue, voice, augmentations)


def user_audio(plans: Sequence[DialoguePlan], workers: int = 2) -> list[list[np.ndarray]]:
    """Each plan's user turns voiced, trimmed and augmented: float32 (T,) at 16 kHz."""
    jobs = [(turn.user, plan.voice) for plan in plans for turn in plan.dialogue.turns]
    clips = iter(synthesize_many(jobs, workers=workers))
    voiced = []
    for plan in plans:
        turns = []
        for index, augmentation in enumerate(plan.augmentations):
            clip = trim_silence(next(clips))
            turns.append(augmentation.apply(clip, f"{plan.seed}:{index}"))
        voiced.append(turns)
    return voiced


def encode(codec: SpeechCodec, samples: np.ndarray, *, output: bool = False) -> list[int]:
    """16 kHz audio → the codec's units (resampled to the codec's rate first if it differs);
    `output`: as speech the model says (the reply), else as speech it hears."""
    if codec.sample_rate != SAMPLE_RATE_HZ:
        samples = resample(samples, SAMPLE_RATE_HZ, codec.sample_rate)
    units = codec.encode_output(samples) if output else codec.encode(samples)
    return [int(u) for u in units]


class DialogueSource:
    """`source(start, stop)` for build_corpus: the records of one split's positions."""

    def __init__(self, spec: DemoCorpusSpec, split: str, codec: SpeechCodec,
                 workers: int = 2) -> None:
        self.spec = spec
        self.split = split
        self.codec = codec
        self.workers = workers

    def __call__(self, start: int, stop: int) -> Iterator[dict[str, Any]]:
        plans = [plan_dialogue(self.spec, self.split, i) for i in range(start, stop)]
        if self.split == TEXT_SPLIT:
            yield from map(text_record, plans)
            return
        prefetch_replies([t.reply for p in plans for t in p.dialogue.turns],
                                 self.workers)
        for plan, clips in zip(plans, user_audio(plans, self.workers), strict=True):
            record = self.record(plan, clips)
            if record is not None:
                yield record

    def record(self, plan: DialoguePlan, clips: Sequence[np.ndarray]) -> dict[str, Any] | None:
        """The stored form of one dialogue; None when a turn is over max_speech_tokens."""
        turns = []
        for turn, clip, augmentation in zip(plan.dialogue.turns, clips, plan.augmentations,
                                            strict=True):
            user_units = encode(self.codec, clip)
            reply_units = encode(self.codec, reply_audio(turn.reply), output=True)
            if max(len(user_units), len(reply_units)) > self.spec.max_speech_tokens:
                return None
            turns.append({
                "user_units": user_units,
                "transcript": turn.user,
                "reply_text": turn.reply,
                "reply_units": reply_units,
                "intent": turn.intent,
                "augmentation": asdict(augmentation),
            })
        voice = plan.voice
        return {"split": plan.split, "index": plan.index, "voice": voice.espeak_name,
                "speed_wpm": voice.speed_wpm, "pitch": voice.pitch, "turns": turns}


def text_record(plan: DialoguePlan) -> dict[str, Any]:
    """The stored form of one text-chat dialogue: the turns' words, no units."""
    turns = [{"user_units": [], "transcript": turn.user, "reply_text": turn.reply,
              "reply_units": [], "intent": turn.intent} for turn in plan.dialogue.turns]
    return {"split": plan.split, "index": plan.index, "turns": turns}


def check_held_out(corpus: Corpus) -> int:
    """Raise CorpusError if a train or dev dialogue of `corpus` holds held-out content (an unseen
    sum, a text-only fact, a reserved reverse triple), judged from its stored words by the
    domain's reply rule; returns the number of turns checked."""
    checked = 0
    for split in ("train", "dev"):
        for record in corpus.iter_split(split):
            users: list[str] = []
            for turn in record["turns"]:
                if reply_to(turn["transcript"], users).held_out:
                    raise CorpusError(f"{corpus.directory}: {split} dialogue {record['index']} "
                                      f"holds held-out content: {turn['transcript']!r}")
                users.append(turn["transcript"])
                checked += 1
    return checked


def codec_fingerprint(codec: SpeechCodec) -> str:
    """sha256 over the codec's saved files but those that shape decoding only: corpora encoded
    by different codecs differ."""
    digest = hashlib.sha256(type(codec).__name__.encode())
    with tempfile.TemporaryDirectory() as tmp:
        codec.save(Path(tmp))
        saved = (p for p in Path(tmp).rglob("*") if p.is_file())
        for path in sorted(p for p in saved if p.name not in codec.decode_only_files):
            digest.update(str(path.relative_to(tmp)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def espeak_version() -> str:
    """espeak-ng's version line: another version voices the same text differently."""
    done = subprocess.run([espeak_path(), "--version"], capture_output=True, text=True,
                          check=False)
    return done.stdout.split("Data at")[0].strip()


def codec_record(codec: SpeechCodec) -> dict[str, Any]:
    """What a corpus manifest records of the codec that encoded it."""
    return {"class": type(codec).__name__, "fingerprint": codec_fingerprint(codec),
            "vocab_size": codec.vocab_size, "frame_rate": codec.frame_rate}


def check_demo_corpus(corpus: Corpus, spec: DemoCorpusSpec, codec: SpeechCodec) -> None:
    """Raise CorpusError unless `corpus` was built for `spec` and encoded with `codec`: a run
    trained on a corpus prepared elsewhere must train on the one its recipe describes.
    espeak-ng's version is not compared (a machine that only trains need not have espeak-ng)."""
    for key, expected in (("spec", spec.to_dict()), ("codec", codec_record(codec))):
        built = corpus.config.get(key) or {}
        differences = [f"{name} {built.get(name)!r} ≠ {value!r}"
                       for name, value in expected.items() if built.get(name) != value]
        if differences:
            raise CorpusError(f"{corpus.directory}: built with another {key} than this recipe's: "
                              f"{', '.join(differences)}")


def build_demo_corpus(
    directory: str | Path,
    spec: DemoCorpusSpec,
    codec: SpeechCodec,
    *,
    shard_size: int = 500,
    overwrite: bool = False,
    progress: bool = True,
    workers: int = 2,
) -> dict[str, Any]:
    """Build (or resume building) the demo corpus in `directory`; returns its manifest.

    The manifest's config records the spec, the codec's fingerprint and espeak-ng's version, so
    a directory built with anything else is refused unless `overwrite`.
    """
    config = {"format": CORPUS_FORMAT, "spec": spec.to_dict(), "codec": codec_record(codec),
              "espeak": espeak_version()}
    plans = {split: SplitPlan(spec.size(split), DialogueSource(spec, split, codec, workers))
             for split in SPLITS}
    return build_corpus(directory, plans, config, shard_size=shard_size, overwrite=overwrite,
                        progress=progress)


def codec_fit_audio(spec: DemoCorpusSpec, dialogues: int, workers: int = 2) -> list[np.ndarray]:
    """Audio to fit the unit codec on: the user turns of the first `dialogues` training
    dialogues (as the corpus voices them) and every distinct reply among them in the assistant
    voice, which is what the codec must decode well. No test dialogue is among them."""
    users, replies = codec_fit_clips(spec, dialogues, workers)
    return users + replies


def codec_fit_clips(spec: DemoCorpusSpec, dialogues: int,
                    workers: int = 2) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`codec_fit_audio` as (user turns, distinct replies)."""
    plans = [plan_dialogue(spec, "train", i) for i in range(min(dialogues, spec.train_dialogues))]
    replies = sorted({turn.reply for plan in plans for turn in plan.dialogue.turns})
    prefetch_replies(replies, workers)
    users = [clip for clips in user_audio(plans, workers) for clip in clips]
    return users, [reply_audio(reply) for reply in replies]
