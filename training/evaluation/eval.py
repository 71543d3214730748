"""Evaluate bundles exactly as the server answers: model/runtime.py's Runtime and Conversation
(codec encode → template prompt with the conversation's history → engine → parser → streaming
codec decode), one turn at a time, each dialogue in a fresh conversation.

Per bundle: exact-match reply accuracy (text), intelligibility of the reply speech (Whisper
tiny.en WER against the reference reply, and exact match of its normalized transcript), transcript
accuracy where the chain writes one, time to first audio (TTFA: from the user's audio in hand to
the first PCM chunk, as `TurnTimings.first_audio_ms`) and total time; accuracies per category
(seen, unseen sums, …) and per condition (a stress bucket), each with a 95 % interval by
bootstrap over dialogues (intervals.py). Bundles are run interleaved, dialogue by dialogue, so
load on a shared machine falls on all of them alike; Whisper runs after all generation. Writes
nothing; results.py (beside it) turns reports into the results page.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.chain import Chain
from training.data.source import EvalDialogue, EvalTurn
from training.evaluation.intelligibility import normalize, word_error_rate
from training.evaluation.intervals import share_interval

ENGINE_SLOTS = 1  # one request at a time: latency as a single user sees it


@dataclass
class TurnResult:
    """One turn of one bundle, scored (speech fields filled in after generation)."""

    dialogue: int
    turn: int
    intent: str | None
    reference_transcript: str
    reference_reply: str
    transcript: str | None
    reply_text: str
    ttfa_ms: float | None
    total_ms: float
    end_reason: str
    new_tokens: int
    speech_seconds: float
    heard: str | None = None  # Whisper's transcript of the reply speech
    category: str | None = None  # what the turn tests (seen, unseen sums, …)
    condition: str | None = None  # the stress bucket it was voiced under (None: the split's)

    @property
    def reply_exact(self) -> bool:
        return self.reply_text.strip() == self.reference_reply

    @property
    def speech_exact(self) -> bool | None:
        """Whether the judge heard the reference reply; None when no judge listened."""
        if self.heard is None:
            return None
        return normalize(self.heard) == normalize(self.reference_reply)


@dataclass
class BundleReport:
    """Every turn of one bundle and the figures of the results table."""

    label: str
    bundle: str
    chain: str
    turns: list[TurnResult]
    speech_wer: float | None = None

    def correct(self) -> list[bool | None]:
        """Per turn: the reply text is exact (chains that write it) or the judge heard the
        reference (A-A); None for an A-A turn nobody listened to."""
        emits_text = Chain.parse(self.chain).emits_reply_text
        return [t.reply_exact if emits_text else t.speech_exact for t in self.turns]

    def by_dialogue(self, values: Sequence[Any], keep: Any = None) -> list[list[Any]]:
        """`values` (one per turn) grouped by dialogue, in dialogue order; with `keep`, only the
        turns for which keep(turn) holds; None values dropped."""
        groups: dict[tuple[str | None, int], list[Any]] = {}
        for turn, value in zip(self.turns, values, strict=True):
            group = groups.setdefault((turn.condition, turn.dialogue), [])
            if value is not None and (keep is None or keep(turn)):
                group.append(value)
        return list(groups.values())

    def _shares(self, key: str) -> dict[str, dict[str, Any]]:
        correct = self.correct()
        names = sorted({getattr(t, key) or "-" for t in self.turns})
        result = {}
        for name in names:
            estimate = share_interval(self.by_dialogue(
                correct, lambda t, name=name: (getattr(t, key) or "-") == name))
            if estimate is not None:
                turns = sum(1 for t, c in zip(self.turns, correct, strict=True)
                            if (getattr(t, key) or "-") == name and c is not None)
                result[name] = {**estimate.to_dict(), "turns": turns}
        return result

    def summary(self) -> dict[str, Any]:
        turns = self.turns
        ttfa = [t.ttfa_ms for t in turns if t.ttfa_ms is not None]
        chain = Chain.parse(self.chain)
        heard = [t.speech_exact for t in turns]  # None where no judge listened
        correct = self.correct()
        by_intent: dict[str, list[bool]] = {}
        for t, right in zip(turns, correct, strict=True):
            if right is not None:  # an A-A turn nobody listened to has no accuracy
                by_intent.setdefault(t.intent or "-", []).append(right)
        accuracy = share_interval(self.by_dialogue(correct))
        return {
            "label": self.label, "bundle": self.bundle, "chain": self.chain, "turns": len(turns),
            "reply_exact": _share([t.reply_exact for t in turns])
            if chain.emits_reply_text else None,
            "accuracy_ci": None if accuracy is None else accuracy.to_dict(),
            "speech_exact": _share([exact for exact in heard if exact is not None]),
            "speech_wer": self.speech_wer,
            "transcript_exact": _share([t.transcript == t.reference_transcript for t in turns])
            if chain.emits_transcript else None,
            "ttfa_p50_ms": statistics.median(ttfa) if ttfa else None,
            "ttfa_mean_ms": statistics.fmean(ttfa) if ttfa else None,
            "ttfa_by_dialogue": self.by_dialogue([t.ttfa_ms for t in turns]),
            "total_p50_ms": statistics.median(t.total_ms for t in turns) if turns else None,
            "no_audio_turns": len(turns) - len(ttfa),
            "complete_share": _share([t.end_reason == "complete" for t in turns]),
            "accuracy_by_intent": {k: _share(v) for k, v in sorted(by_intent.items())},
            "accuracy_by_category": self._shares("category"),
            "accuracy_by_condition": self._shares("condition"),
        }

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "turns": [asdict(t) for t in self.turns]}


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


@dataclass
class _Answer:
    """What a conversation yielded for one turn."""

    transcript: str | None
    text: str
    end_reason: str
    audio: np.ndarray
    ttfa_ms: float | None
    total_ms: float
    output_tokens: int


async def _answer(conversation: Any, turn: EvalTurn) -> _Answer:
    from model.turn import ReplyAudio, TurnDone

    chunks: list[np.ndarray] = []
    done: TurnDone | None = None
    async for event in conversation.respond(turn.audio, turn.sample_rate):
        if isinstance(event, ReplyAudio):
            chunks.append(event.samples)
        elif isinstance(event, TurnDone):
            done = event
    if done is None:
        raise RuntimeError("the conversation ended a turn without TurnDone")
    audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return _Answer(done.user_transcript, done.reply_text, done.end_reason, audio,
                   done.timings.first_audio_ms, done.timings.total_ms or 0.0,
                   done.output_tokens)


async def _evaluate(
    bundles: Sequence[tuple[str, str | Path]],
    dialogues: Sequence[EvalDialogue],
    conditions: Sequence[str | None],
    progress: Callable[[int, int], None] | None,
) -> tuple[list[BundleReport], list[list[np.ndarray]], list[int]]:
    from model.runtime import Runtime, RuntimeConfig

    runtimes = [Runtime.load(path, RuntimeConfig(max_slots=ENGINE_SLOTS)) for _, path in bundles]
    try:
        for runtime in runtimes:
            await runtime.warmup()
            if dialogues and dialogues[0]:  # the first turn pays lazy set-up: not measured
                await _answer(runtime.new_conversation(), dialogues[0][0])
        reports = [BundleReport(label, str(path), runtime.chain.value, [])
                   for (label, path), runtime in zip(bundles, runtimes, strict=True)]
        audio: list[list[np.ndarray]] = [[] for _ in runtimes]
        for d, dialogue in enumerate(dialogues):
            for report, clips, runtime in zip(reports, audio, runtimes, strict=True):
                conversation = runtime.new_conversation()
                for t, turn in enumerate(dialogue):
                    answer = await _answer(conversation, turn)
                    report.turns.append(TurnResult(
                        dialogue=d, turn=t, intent=turn.intent,
                        reference_transcript=turn.transcript, reference_reply=turn.reply_text,
                        transcript=answer.transcript, reply_text=answer.text,
                        ttfa_ms=answer.ttfa_ms, total_ms=answer.total_ms,
                        end_reason=answer.end_reason, new_tokens=answer.output_tokens,
                        speech_seconds=answer.audio.size / runtime.sample_rate,
                        category=turn.category, condition=conditions[d]))
                    clips.append(answer.audio)
            if progress is not None:
                progress(d + 1, len(dialogues))
        return reports, audio, [runtime.sample_rate for runtime in runtimes]
    finally:
        for runtime in runtimes:
            await runtime.close()


def evaluate(
    bundles: Sequence[tuple[str, str | Path]],
    dialogues: Sequence[EvalDialogue],
    *,
    transcribe: Callable[[np.ndarray, int], str] | None,
    progress: Callable[[int, int], None] | None = None,
    conditions: Sequence[str | None] | None = None,
) -> list[BundleReport]:
    """Answer `dialogues` with every (label, bundle directory), interleaved dialogue by dialogue.

    transcribe: (audio, sample_rate) → text, the intelligibility judge (Whisper tiny.en's
        `WhisperJudge.transcribe`); None skips the speech metrics.
    conditions: the condition each dialogue was voiced under (a stress bucket's name), in
        dialogue order; None: the split's own voices for all.
    """
    conditions = list(conditions) if conditions is not None else [None] * len(dialogues)
    if len(conditions) != len(dialogues):
        raise ValueError(f"{len(conditions)} conditions for {len(dialogues)} dialogues")
    reports, audio, rates = asyncio.run(_evaluate(bundles, dialogues, conditions, progress))
    if transcribe is not None:
        for report, clips, rate in zip(reports, audio, rates, strict=True):
            for turn, clip in zip(report.turns, clips, strict=True):
                turn.heard = transcribe(clip, rate) if clip.size else ""
            report.speech_wer = word_error_rate([t.reference_reply for t in report.turns],
                                                [t.heard or "" for t in report.turns])
    return reports


def machine_description() -> str:
    """The hardware the figures were measured on, for the results page."""
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (CUDA)"
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def count_turns(dialogues: Sequence[EvalDialogue]) -> Counter[str]:
    """Turns per intent, for the results page."""
    return Counter(turn.intent or "-" for dialogue in dialogues for turn in dialogue)
