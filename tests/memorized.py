"""Test support: spoken audio from espeak-ng and a tiny bundle trained to memorize replies.

The memorized bundle is a real model, trained here in seconds: a tiny random AnyGPT-format bundle
fine-tuned until greedy decoding reproduces a few short dialogues (reply text and reply speech
units) for the exact espeak-ng audio below. It lets conversation and server tests check what a
user notices (the right reply, audio before the reply ends, multi-turn recall) without the demo
bundle, which is trained by `icot train --recipe demo`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tiny_bundle import build_tiny_bundle

from model.audio import float_to_pcm16, pcm16_to_float, read_audio
from model.bundle import Bundle, write_bundle
from model.chain import Chain
from model.sampling import GREEDY
from model.template import PastTurn

SPEECH_RATE_HZ = 16_000
USER_VOICE = ("en-us", 160)
ASSISTANT_VOICE = ("en-us", 175)
MAX_MEMORIZE_STEPS = 600
CHECK_EVERY_STEPS = 25
MEMORIZE_LR = 3e-3

# (user, transcript, reply) turns of each memorized dialogue; the second needs the first's name.
DIALOGUES: tuple[tuple[tuple[str, str], ...], ...] = (
    (("my name is anna", "nice to meet you anna"), ("what is my name", "your name is anna")),
    (("what is two plus three", "two plus three is five"),),
)


def speak(text: str, voice: tuple[str, int] = USER_VOICE, rate: int = SPEECH_RATE_HZ) -> np.ndarray:
    """espeak-ng speech of `text` as float32 (T,) at `rate`, quantized to PCM16 as it crosses
    the wire, so a client sending it as PCM16 delivers exactly these samples."""
    language, words_per_minute = voice
    wav = subprocess.run(
        ["espeak-ng", "-v", language, "-s", str(words_per_minute), "--stdout", text],
        check=True, capture_output=True,
    ).stdout
    samples, _ = read_audio(wav, target_rate=rate)
    return pcm16_to_float(float_to_pcm16(samples))


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: tiny models are overhead-bound, and on a busy 2-core machine
    OpenMP's waiting threads made them 5-50x slower than one thread (measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def memorize_bundle(directory: Path, chain: Chain | str = Chain.ATA, seed: int = 0) -> Path:
    """Build a tiny bundle whose model greedily answers `DIALOGUES` (spoken by `speak`)."""
    chain = Chain.parse(chain)
    words = sorted({w for d in DIALOGUES for turn in d for text in turn for w in text.split()})
    build_tiny_bundle(directory, chain=chain, n_units=64, seed=seed, words=words)
    bundle = Bundle.load(directory)
    encode = bundle.codec.encode
    sequences: list[tuple[list[int], int]] = []
    for dialogue in DIALOGUES:
        history: list[PastTurn] = []
        for user, reply in dialogue:
            user_units = encode(speak(user)).tolist()
            reply_units = encode(speak(reply, ASSISTANT_VOICE)).tolist()
            example = bundle.template.example(chain, user_units, user, reply, reply_units, history)
            sequences.append((example.ids, example.boundary))
            transcript = user if chain.emits_transcript else ""
            history.append(PastTurn(user_units, transcript, reply, reply_units))
    model = bundle.model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=MEMORIZE_LR)
    torch.manual_seed(seed)
    with one_torch_thread():
        for step in range(MAX_MEMORIZE_STEPS):
            if step % CHECK_EVERY_STEPS == 0 and all(_recites(model, s) for s in sequences):
                break
            optimizer.zero_grad()
            for ids, boundary in sequences:
                input_ids = torch.tensor([ids])  # (1, T)
                labels = input_ids.clone()
                labels[:, :boundary] = -100  # learn the reply, not the prompt
                model(input_ids=input_ids, labels=labels).loss.backward()
            optimizer.step()
        else:
            raise RuntimeError(f"the tiny model did not memorize the dialogues in {step} steps")
    model.eval()
    generation = replace(bundle.config.generation, text=GREEDY, speech=GREEDY)
    config = replace(bundle.config, generation=generation)
    return write_bundle(directory, config, model=model)


@torch.no_grad()
def _recites(model: torch.nn.Module, sequence: tuple[list[int], int]) -> bool:
    """Whether greedy decoding would reproduce the reply (teacher-forced argmax = target)."""
    ids, boundary = sequence
    logits = model(input_ids=torch.tensor([ids])).logits[0]  # (T, V)
    predicted = logits[boundary - 1:-1].argmax(dim=-1)
    return bool((predicted == torch.tensor(ids[boundary:])).all())
