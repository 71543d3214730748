"""Stage 2 (ICoT) and the paper's two comparison models, each a LoRA adapter on stage 1.

- ICoT (`stage2`): at step s each turn loses the first k = s // T + 1 + offset transcript tokens
  (schedule.py); the optimizer is reset each time k grows; optionally KL to the frozen
  stage-1 model (the same weights with the adapter disabled) on the reply-speech logits. It runs
  until the longest transcript is gone plus `extra_steps`: the end state is the A-T-A chain.
- No-CoT baseline (`no_cot`): A-T-A examples from the first step, no curriculum, on the model
  it is given: the stage-1 model, or with stage 0 its own A-T-A model trained from stage 0
  (cot.py, `no_cot_base`), so that it gets the ICoT arm's whole budget.
- A-A with ICoT (`aa_icot`): continues the ICoT adapter and removes the reply text the same way
  (same T and λ) until the model answers with speech only.
Each writes `{stage}/final/adapter`. Knows nothing of bundles or evaluation.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import AutoModelForCausalLM, AutoTokenizer

from training.stages.context import StageContext, pad_id
from training.stages.examples import Rendered, Renderer, TurnItem
from training.stages.loop import StageSpec
from training.stages.lora import add_lora, load_adapter
from training.stages.monitor import teacher_forced
from training.stages.schedule import OptimizerReset, RemovalSchedule
from training.stages.stream import iter_turns

ICOT, NO_COT, AA_ICOT = "stage2", "no_cot", "aa_icot"


def longest(ctx: StageContext, length: Callable[[TurnItem], int]) -> int:
    """The largest `length(turn)` over the training split (what removal must reach)."""
    return max(length(turn) for turn in iter_turns(ctx.corpus, "train", max_history=0))


def _load_stage1(ctx: StageContext, stage1_dir: Path) -> tuple[Any, Any]:
    tokenizer = AutoTokenizer.from_pretrained(stage1_dir)
    model = AutoModelForCausalLM.from_pretrained(stage1_dir, dtype=ctx.dtype)
    return model, tokenizer


def _curriculum_spec(
    ctx: StageContext,
    name: str,
    renderer: Renderer,
    remove: Callable[[TurnItem, int], Rendered],
    length: Callable[[TurnItem], int],
    pad: int,
) -> StageSpec:
    """A stepwise-removal stage: `remove(turn, drop)` deletes `drop` tokens of what `length`
    counts; the schedule, resets, KL and monitor follow the recipe's stage2 section."""
    s2 = ctx.recipe.stage2
    schedule: RemovalSchedule = s2.schedule()
    max_len = longest(ctx, length)
    growth = OptimizerReset(schedule, max_len)
    dev = ctx.monitor_turns()

    def render(turn: TurnItem, step: int, rng: random.Random) -> Rendered:
        return remove(turn, schedule.tokens_to_remove(step, rng, length(turn)))

    def monitor(model: Any, step: int) -> dict[str, Any]:
        k = 0 if step == 0 else min(schedule.k_at(step - 1), max_len)
        rendered = [remove(turn, min(k, length(turn))) for turn in dev]
        return {"k": k, **teacher_forced(model, rendered, pad, ctx.accelerator.device)}

    return StageSpec(
        name=name,
        steps=max(1, schedule.completion_step(max_len) + s2.extra_steps),
        lr=s2.lr or ctx.recipe.training.lr,
        render=render,
        reset_due=growth.due if s2.reset_optimizer else (lambda step: False),
        k_at=schedule.k_at,
        kl_weight=s2.kl_weight,
        kl_temperature=s2.kl_temperature,
        monitor=monitor,
        monitor_due=lambda step: step == 0 or growth.due(step),
    )


def _run_removal(ctx: StageContext, name: str, model: Any, tokenizer: Any, renderer: Renderer,
                 render_removed: Callable[..., Rendered],
                 length: Callable[[TurnItem], int]) -> Path:
    """Train `model` through a removal curriculum: `render_removed(turn, k, teacher=…)` renders a
    turn with k tokens removed, `length(turn)` says how many there are to remove. Returns the
    adapter directory."""
    teacher = ctx.recipe.stage2.kl_weight > 0
    spec = _curriculum_spec(
        ctx, name, renderer,
        remove=lambda turn, drop: render_removed(turn, drop, teacher=teacher),
        length=length, pad=pad_id(tokenizer),
    )
    return _finish(ctx, name, ctx.run(spec, model, tokenizer).model)


def _finish(ctx: StageContext, name: str, model: Any) -> Path:
    out = ctx.final_dir(name) / "adapter"
    if ctx.main:
        model.save_pretrained(out)
    ctx.mark_done(name)
    return out


def _new_adapter(ctx: StageContext, name: str, stage1_dir: Path):
    """The stage-1 model with a fresh LoRA adapter (seeded per stage), its tokenizer and a
    renderer sized to its context: the start of every stage that trains a new adapter."""
    base, tokenizer = _load_stage1(ctx, stage1_dir)
    ctx.seed(name)
    model = add_lora(base, ctx.recipe.stage2.lora)
    return model, tokenizer, ctx.renderer(tokenizer, int(base.config.max_position_embeddings))


def train_icot(ctx: StageContext, stage1_dir: Path) -> Path:
    """Stage 2 on top of the stage-1 model; returns the adapter directory."""
    if ctx.is_done(ICOT):
        return ctx.final_dir(ICOT) / "adapter"
    model, tokenizer, renderer = _new_adapter(ctx, ICOT, stage1_dir)
    return _run_removal(ctx, ICOT, model, tokenizer, renderer, renderer.icot,
                        renderer.transcript_len)


def no_cot_steps(ctx: StageContext, renderer: Renderer) -> int:
    """The baseline's length: baselines.no_cot_steps, or as many steps as stage 2 takes."""
    if ctx.recipe.baselines.no_cot_steps is not None:
        return ctx.recipe.baselines.no_cot_steps
    schedule = ctx.recipe.stage2.schedule()
    max_len = longest(ctx, renderer.transcript_len)
    return max(1, schedule.completion_step(max_len) + ctx.recipe.stage2.extra_steps)


def train_no_cot(ctx: StageContext, base_dir: Path) -> Path:
    """The A-T-A baseline without the ASR chain of thought, an adapter on the model in
    `base_dir`; returns the adapter directory."""
    if ctx.is_done(NO_COT):
        return ctx.final_dir(NO_COT) / "adapter"
    model, tokenizer, renderer = _new_adapter(ctx, NO_COT, base_dir)
    dev = [renderer.ata(turn) for turn in ctx.monitor_turns()]
    pad, every = pad_id(tokenizer), ctx.recipe.training.checkpoint_every
    spec = StageSpec(
        name=NO_COT,
        steps=no_cot_steps(ctx, renderer),
        lr=ctx.recipe.stage2.lr or ctx.recipe.training.lr,
        render=lambda turn, step, rng: renderer.ata(turn),
        monitor=lambda m, step: teacher_forced(m, dev, pad, ctx.accelerator.device),
        monitor_due=lambda step: step > 0 and step % every == 0,
    )
    return _finish(ctx, NO_COT, ctx.run(spec, model, tokenizer).model)


def train_aa_icot(ctx: StageContext, stage1_dir: Path, icot_adapter: Path) -> Path:
    """A-A with ICoT: the stage-2 adapter trained on, removing the reply text; returns the
    adapter directory."""
    if ctx.is_done(AA_ICOT):
        return ctx.final_dir(AA_ICOT) / "adapter"
    base, tokenizer = _load_stage1(ctx, stage1_dir)
    model = load_adapter(base, icot_adapter, merge=False, trainable=True)
    renderer = ctx.renderer(tokenizer, int(base.config.max_position_embeddings))
    return _run_removal(ctx, AA_ICOT, model, tokenizer, renderer, renderer.aa_icot,
                        renderer.reply_text_len)
