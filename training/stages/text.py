"""Stage 0: the demo domain as text chat (text in, text out), before the model hears speech.

A Llama from scratch over a word tokenizer of every word of the corpus (its `text` split
included) and the codec's units learns the `text` split: typed questions answered with the
reply text and an empty speech segment (model/template.py, `typed_example`), held-out content
included, as AnyGPT's base LM knew things before it learned speech. Stage 1 and the no-CoT
baseline start from its model. Output: `stage0/final/model`. Knows nothing of speech stages,
bundles or evaluation.
"""

from __future__ import annotations

from pathlib import Path

from training.stages.context import StageContext, pad_id
from training.stages.cot import build_scratch_model, context_tokens, corpus_words
from training.stages.loop import StageSpec
from training.stages.monitor import teacher_forced
from training.word_tokenizer import build_word_tokenizer

STAGE0 = "stage0"
TEXT_SPLIT = "text"  # the corpus split of text dialogues (training/data/demo_corpus.py)


def train_text(ctx: StageContext) -> Path:
    """Run stage 0 (or skip it when finished); returns the final model directory."""
    out = ctx.final_dir(STAGE0) / "model"
    if ctx.is_done(STAGE0):
        return out
    recipe = ctx.recipe
    tokenizer = build_word_tokenizer(corpus_words(ctx.corpus), ctx.n_units)
    model = build_scratch_model(recipe.model, tokenizer, recipe.training.seed).to(ctx.dtype)
    renderer = ctx.renderer(tokenizer, context_tokens(model))
    dev = [renderer.typed(turn, speech=False) for turn in ctx.monitor_turns()]
    pad, every = pad_id(tokenizer), recipe.training.checkpoint_every
    spec = StageSpec(
        name=STAGE0,
        steps=recipe.stage0.steps,
        lr=recipe.stage0.lr or recipe.training.lr,
        render=lambda turn, step, rng: renderer.typed(turn, speech=False),
        monitor=lambda m, step: teacher_forced(m, dev, pad, ctx.accelerator.device),
        monitor_due=lambda step: step > 0 and step % every == 0,
    )
    trained = ctx.run(spec, model, tokenizer, split=TEXT_SPLIT).model
    if ctx.main:
        trained.save_pretrained(out)
        tokenizer.save_pretrained(out)
    ctx.mark_done(STAGE0)
    return out
