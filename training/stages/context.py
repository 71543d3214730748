"""What every stage of one run shares: the recipe, run directory, corpus, template, accelerator.

`StageContext` hands a stage its data stream, renderer and dtype, runs the shared loop with the
run's settings, and keeps the stage-directory protocol: a stage is finished when its
`final/DONE` marker exists (written after its outputs), so `--resume` skips it; an unfinished
stage resumes from its newest checkpoint. Knows nothing of what a stage trains.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from model.speech_tokens import SpeechVocab
from model.template import Template
from training.config import Recipe
from training.data.shards import Corpus
from training.stages.examples import Renderer
from training.stages.loop import StageResult, StageSpec, run_stage
from training.stages.stream import TurnStream, iter_turns

DONE_MARKER = "DONE"
MONITOR_TURNS = 64  # dev turns the in-training monitor scores (teacher-forced)


class RunDirectoryError(ValueError):
    """The run directory holds another run; the message says how to continue or start over."""


def refuse_existing_run(run_dir: Path, stages: list[str]) -> None:
    """Without --resume, a run directory that already holds any of `stages` is an error."""
    taken = [name for name in stages if (run_dir / name).exists()]
    if taken:
        raise RunDirectoryError(
            f"{run_dir} already holds stage(s) {', '.join(taken)} of an earlier run; pass "
            "--resume to continue it, or --out another directory"
        )


def pad_id(tokenizer: Any) -> int:
    """The id padding uses (labels mask it, so any id works when the tokenizer has none)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


@dataclass
class StageContext:
    """One process's view of a run (see the module docstring).

    n_units: the codec's unit count (the tokenizer's speech tokens).
    resume: continue unfinished stages from their checkpoints and skip finished ones.
    """

    recipe: Recipe
    run_dir: Path
    corpus: Corpus
    accelerator: Any
    n_units: int
    resume: bool = False
    progress: bool = True

    @property
    def main(self) -> bool:
        return bool(self.accelerator.is_main_process)

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, self.recipe.training.dtype)

    def stage_dir(self, name: str) -> Path:
        return self.run_dir / name

    def final_dir(self, name: str) -> Path:
        return self.stage_dir(name) / "final"

    def is_done(self, name: str) -> bool:
        return (self.final_dir(name) / DONE_MARKER).is_file()

    def mark_done(self, name: str) -> None:
        """Record the stage as finished (main process, after its outputs are written)."""
        if self.main:
            (self.final_dir(name) / DONE_MARKER).write_text("")
        self.accelerator.wait_for_everyone()

    def seed(self, stage: str) -> None:
        """Seed torch for a stage's initialization (a fresh model, a fresh adapter), so a stage
        starts the same whether the run began with it or resumed into it."""
        digest = hashlib.sha256(f"{self.recipe.training.seed}:{stage}".encode()).digest()
        torch.manual_seed(int.from_bytes(digest[:8], "little"))

    def template(self, tokenizer: Any) -> Template:
        return Template(SpeechVocab(tokenizer, n_units=self.n_units))

    def renderer(self, tokenizer: Any, context_tokens: int) -> Renderer:
        return Renderer(self.template(tokenizer), context_tokens)

    def stream(self, split: str = "train") -> TurnStream:
        """This rank's endless stream of the split's turns (`text`: stage 0's text chat)."""
        return TurnStream(self.corpus, split, max_history=self.recipe.data.max_history_turns,
                          seed=self.recipe.training.seed, rank=self.accelerator.process_index,
                          world_size=self.accelerator.num_processes)

    def monitor_turns(self) -> list:
        """The dev turns the in-training monitor scores (the first MONITOR_TURNS)."""
        turns = []
        for turn in iter_turns(self.corpus, "dev", self.recipe.data.max_history_turns):
            turns.append(turn)
            if len(turns) == MONITOR_TURNS:
                break
        return turns

    def run(self, spec: StageSpec, model: nn.Module, tokenizer: Any,
            split: str = "train") -> StageResult:
        return run_stage(spec, model, self.stream(split), accelerator=self.accelerator,
                         training=self.recipe.training, stage_dir=self.stage_dir(spec.name),
                         pad_id=pad_id(tokenizer), resume=self.resume, progress=self.progress)
