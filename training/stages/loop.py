"""The training loop every stage shares: batches, loss, optimizer, logs, checkpoints, DDP.

A stage (cot.py, icot.py) describes itself with a `StageSpec`: how long it runs, its learning
rate, how a turn becomes a token sequence at a given step, when the optimizer resets, the KL
weight and an optional monitor. `run_stage` owns the rest: right-padded batches and
the cross-entropy on each sequence's target part only (batch.py), KL to the frozen stage-1
model through peft's `disable_adapter()`, AdamW with linear warmup at the stage's start (not
after an optimizer reset, so every arm of a comparison follows one schedule) and an optional
cosine decay, gradient accumulation and clipping, a progress bar and `log.jsonl`
(logs.py), and resumable checkpoints (checkpoints.py). It runs single-process or under
`accelerate launch` (DDP; each rank reads its own slice of the data).
Knows nothing of chains, corpora or the removal schedule's arithmetic.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from model.template import PromptTooLongError
from training.config import TrainingConfig
from training.stages.batch import Batch, collate, target_loss
from training.stages.checkpoints import (
    CHECKPOINTS_KEPT,
    COMPLETE_MARKER,
    WEIGHTS_FILE,
    checkpoint_dir,
    inner_optimizer,
    latest_checkpoint,
    load_trainable,
    reset_optimizer,
    trainable_state,
)
from training.stages.distill import reply_speech_kl
from training.stages.examples import Rendered, TurnItem
from training.stages.logs import RunLog
from training.stages.stream import BatchPlanner, TurnStream


@dataclass(frozen=True)
class StageSpec:
    """What one stage trains; the loop does the rest.

    name: directory and log name (`stage1`, `stage2`, `no_cot`, `aa_icot`).
    steps: optimizer steps (training.max_steps caps it for dry runs).
    lr: peak learning rate.
    render: (turn, step, rng) → the sequence to learn at that optimizer step; the rng is seeded
        by (seed, stage, step, rank), so a resumed run renders the same sequences.
    reset_due: step → rebuild the optimizer before this step (stepwise internalization).
    k_at: step → the removal count to log (None: the stage removes nothing).
    kl_weight, kl_temperature: the KL term to the frozen stage-1 model (needs a peft model and
        `render` attaching teacher views).
    monitor: (model, step) → metrics, run on the main process before the steps where
        `monitor_due` holds and after the last step; written to monitor.jsonl.
    """

    name: str
    steps: int
    lr: float
    render: Callable[[TurnItem, int, random.Random], Rendered]
    reset_due: Callable[[int], bool] = lambda step: False
    k_at: Callable[[int], int] | None = None
    kl_weight: float = 0.0
    kl_temperature: float = 1.0
    monitor: Callable[[nn.Module, int], dict[str, Any]] | None = None
    monitor_due: Callable[[int], bool] = lambda step: False

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"{self.name}: steps must be ≥ 1, got {self.steps}")
        if not self.lr > 0:
            raise ValueError(f"{self.name}: lr must be > 0, got {self.lr}")
        if self.kl_weight < 0 or self.kl_temperature <= 0:
            raise ValueError(f"{self.name}: kl_weight must be ≥ 0 and kl_temperature > 0")


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warmup: (step + 1) / warmup for the stage's first warmup steps, then 1. An optimizer
    reset does not warm up again (docs/training.md, "One learning-rate schedule")."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


def schedule_factor(step: int, total: int, training: TrainingConfig) -> float:
    """The decay multiplier at `step` of a `total`-step stage: 1 for a constant schedule; a half
    cosine from 1 at step 0 to `min_lr_ratio` at the last step for a cosine one."""
    if training.lr_schedule == "constant" or total <= 1:
        return 1.0
    progress = min(step, total - 1) / (total - 1)
    floor = training.min_lr_ratio
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass
class StageResult:
    """A finished stage: the trained (unwrapped) model and what the loop measured."""

    model: nn.Module
    steps: int
    skipped_turns: int
    seconds: float


class _Trainer:
    """One stage's run on one process (see `run_stage`)."""

    def __init__(self, spec: StageSpec, model: nn.Module, stream: TurnStream, accelerator: Any,
                 training: TrainingConfig, stage_dir: Path, pad_id: int) -> None:
        self.spec = spec
        self.planner = BatchPlanner(stream, training.batch_size, training.seed)
        self.accelerator = accelerator
        self.training = training
        self.stage_dir = stage_dir
        self.pad_id = pad_id
        self.total = min(spec.steps, training.max_steps or spec.steps)
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError(f"{spec.name}: the model has no trainable parameters")
        optimizer = torch.optim.AdamW(self.params, lr=spec.lr,
                                      weight_decay=training.weight_decay)
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        self.skipped = 0

    @property
    def unwrapped(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.model)

    def resume(self, checkpoint: Path) -> int:
        load_trainable(self.unwrapped, checkpoint / WEIGHTS_FILE)
        state = torch.load(checkpoint / "optimizer.pt", map_location="cpu", weights_only=True)
        inner_optimizer(self.optimizer).load_state_dict(state)
        rank = self.accelerator.process_index
        mine = torch.load(checkpoint / f"rank-{rank}.pt", map_location="cpu", weights_only=False)
        if mine["world_size"] != self.accelerator.num_processes:
            raise ValueError(f"{checkpoint}: written by {mine['world_size']} processes; resume "
                             f"with the same number (now {self.accelerator.num_processes})")
        self.planner.restore(mine["planner"])
        torch.set_rng_state(mine["torch_rng"])
        self.skipped = mine["skipped"]
        return int(json.loads((checkpoint / "state.json").read_text())["step"])

    def save(self, step: int) -> None:
        acc = self.accelerator
        final = checkpoint_dir(self.stage_dir, step)
        tmp = final.with_name(final.name + ".tmp")
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        acc.wait_for_everyone()
        torch.save({"planner": self.planner.state(), "torch_rng": torch.get_rng_state(),
                    "skipped": self.skipped, "world_size": acc.num_processes},
                   tmp / f"rank-{acc.process_index}.pt")
        if acc.is_main_process:
            save_file(trainable_state(self.unwrapped), str(tmp / WEIGHTS_FILE))
            torch.save(inner_optimizer(self.optimizer).state_dict(), tmp / "optimizer.pt")
            (tmp / "state.json").write_text(json.dumps({"step": step, "stage": self.spec.name}))
        acc.wait_for_everyone()
        if acc.is_main_process:
            (tmp / COMPLETE_MARKER).write_text("")
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            done = sorted(p for p in final.parent.glob("step-*") if p.suffix != ".tmp")
            for old in done[:-CHECKPOINTS_KEPT]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()

    def next_batch(self, step: int, micro: int) -> Batch:
        """Micro-batch `micro` of optimizer step `step`, rendered for that step. A turn too long
        for the context is left out of its batch (counted in `skipped`)."""
        rng = random.Random(f"{self.training.seed}:{self.spec.name}:{step}:{micro}:"
                            f"{self.accelerator.process_index}")
        rendered: list[Rendered] = []
        for item in self.planner.batch(step * self.training.grad_accum + micro):
            try:
                rendered.append(self.spec.render(item, step, rng))
            except PromptTooLongError:
                self.skipped += 1
        if not rendered:
            raise PromptTooLongError(f"{self.spec.name}: no turn of batch {step} fits the "
                                     "context; raise the context or drop long turns")
        return collate(rendered, self.pad_id).to(self.accelerator.device)

    def losses(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.model(input_ids=batch.input_ids,
                            attention_mask=batch.attention_mask).logits  # (B, T, V)
        lm = target_loss(logits, batch.labels)
        if self.spec.kl_weight == 0:
            return lm, None
        if batch.teacher is None:
            raise ValueError(f"{self.spec.name}: kl_weight > 0 but render attached no teacher")
        with torch.no_grad(), self.unwrapped.disable_adapter():
            teacher = self.unwrapped(input_ids=batch.teacher.input_ids,
                                     attention_mask=batch.teacher.attention_mask).logits
        kl = reply_speech_kl(logits, teacher, batch.speech_mask, batch.teacher.speech_mask,
                             temperature=self.spec.kl_temperature)
        return lm, kl

    def train_step(self, step: int) -> dict[str, float]:
        acc, accum = self.accelerator, self.training.grad_accum
        sums = torch.zeros(3, device=acc.device)  # loss, lm, kl
        tokens = 0
        for micro in range(accum):
            batch = self.next_batch(step, micro)
            tokens += batch.target_tokens
            sync = contextlib.nullcontext() if micro == accum - 1 else acc.no_sync(self.model)
            with sync:
                with acc.autocast():
                    lm, kl = self.losses(batch)
                    loss = lm if kl is None else lm + self.spec.kl_weight * kl
                acc.backward(loss / accum)
            sums += torch.stack([loss.detach(), lm.detach(),
                                 torch.zeros((), device=acc.device) if kl is None
                                 else kl.detach()]).float() / accum
        if self.training.grad_clip is not None:
            acc.clip_grad_norm_(self.params, self.training.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        counted = torch.tensor(float(tokens), device=acc.device)
        if acc.num_processes > 1:
            sums, counted = acc.reduce(sums, reduction="mean"), acc.reduce(counted, "sum")
        loss, lm, kl = sums.tolist()
        metrics = {"loss": loss, "lm_loss": lm, "target_tokens": counted.item()}
        if self.spec.kl_weight:
            metrics["kl"] = kl
        return metrics

    def run_monitor(self, step: int, log: RunLog) -> None:
        if self.spec.monitor is None:
            return
        if self.accelerator.is_main_process:
            model = self.unwrapped
            model.eval()
            with torch.no_grad():
                metrics = self.spec.monitor(model, step)
            model.train()
            log.write({"step": step, **metrics})
        self.accelerator.wait_for_everyone()


def run_stage(
    spec: StageSpec,
    model: nn.Module,
    stream: TurnStream,
    *,
    accelerator: Any,
    training: TrainingConfig,
    stage_dir: Path,
    pad_id: int,
    resume: bool = False,
    progress: bool = True,
) -> StageResult:
    """Train `model` (its trainable parameters) for the stage; returns the unwrapped model.

    resume: continue from the newest complete checkpoint in `stage_dir` (none: start over).
    Writes stage_dir/log.jsonl (loss, lm_loss, kl, k, lr, wall and CPU seconds per step, every
    log_every steps), monitor.jsonl, and checkpoints/step-NNNNNNN every checkpoint_every steps.
    """
    stage_dir.mkdir(parents=True, exist_ok=True)
    trainer = _Trainer(spec, model, stream, accelerator, training, stage_dir, pad_id)
    main = accelerator.is_main_process
    start = 0
    checkpoint = latest_checkpoint(stage_dir) if resume else None
    if checkpoint is not None:
        start = trainer.resume(checkpoint)
    log = RunLog(stage_dir / "log.jsonl", start if checkpoint else None, main)
    # a monitor entry is written before its step runs: keep those of steps already run
    monitor_log = RunLog(stage_dir / "monitor.jsonl", start - 1 if checkpoint else None, main)
    model_to_train = trainer.model
    model_to_train.train()
    began = time.perf_counter()
    window: list[dict[str, float]] = []
    bar = tqdm(total=trainer.total, initial=start, desc=spec.name, unit="step",
               disable=not (progress and main))
    with bar:
        for step in range(start, trainer.total):
            if spec.monitor_due(step):
                trainer.run_monitor(step, monitor_log)
            reset = step > 0 and spec.reset_due(step)
            if reset:
                reset_optimizer(trainer.optimizer)
            lr = (spec.lr * warmup_factor(step, training.warmup_steps)
                  * schedule_factor(step, trainer.total, training))
            for group in trainer.optimizer.param_groups:
                group["lr"] = lr
            tick, cpu_tick = time.perf_counter(), time.process_time()
            metrics = trainer.train_step(step)
            metrics["step_s"] = time.perf_counter() - tick
            metrics["cpu_s"] = time.process_time() - cpu_tick  # all threads: shared-machine proof
            if not all(math.isfinite(metrics[k]) for k in ("loss", "lm_loss")):
                raise FloatingPointError(f"{spec.name}: loss is {metrics['loss']} at step {step}")
            window.append(metrics)
            done = step + 1
            postfix = {"loss": f"{metrics['loss']:.4f}", "lr": f"{lr:.2e}"}
            k = spec.k_at(step) if spec.k_at else None
            if k is not None:
                postfix["k"] = k
            bar.set_postfix(postfix)
            bar.update(1)
            if done % training.log_every == 0 or done == trainer.total or reset:
                entry = {"step": done, "lr": lr, "optimizer_reset": reset,
                         "skipped_turns": trainer.skipped,
                         **{key: sum(m[key] for m in window) / len(window)
                            for key in window[0]}}
                if k is not None:
                    entry["k"] = k
                log.write(entry)
                window = []
            if done % training.checkpoint_every == 0 and done < trainer.total:
                trainer.save(done)
        trainer.run_monitor(trainer.total, monitor_log)
    return StageResult(trainer.unwrapped, trainer.total, trainer.skipped,
                       time.perf_counter() - began)

