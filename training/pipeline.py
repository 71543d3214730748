"""Run a recipe end to end: codec, corpus, stages 0–2, baselines, bundles, evaluation.

What `icot train --recipe NAME` does, in order, each step skipped when its output is already
there (so `--resume` continues an interrupted run): prepare (load the codec or have the corpus
source fit it, then the source builds or resumes the sharded corpus); train (stage 0, text chat;
stage 1, A-T-T-A; stage 2, ICoT; the enabled baselines); export (stage 1 as a full bundle, each
adapter as a bundle over it; the no-CoT baseline trained from stage 0 over its own model);
evaluate (every bundle on the source's test dialogues, then the results page with its plots).
The corpus source (training/data/source.py: demo or SODA-TTS) is the only part that knows where
the data comes from. Under `accelerate launch` every process trains; the corpus, the bundles and
the evaluation are the main process's job while the others wait. Paths in the recipe are
relative to the working directory (the repository root).

A run can be split across machines (`phase`): `prepare` fits the codec and builds the corpus
(it needs espeak-ng) and stops; `train` trains the stages on a run directory prepared that way
(a GPU machine without espeak-ng) and stops before exporting; a later `--resume` on the first
machine exports and evaluates, skipping every finished stage.
"""

from __future__ import annotations

import datetime
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from model.chain import Chain
from model.codecs import SpeechCodec, load_codec
from training.config import PHASES, Recipe
from training.data.shards import Corpus, CorpusError
from training.data.source import CorpusSource, SourceError
from training.data.sources import corpus_source
from training.export import export_adapter_bundle, export_cot_bundle, generation_config
from training.stages.context import RunDirectoryError, StageContext, refuse_existing_run
from training.stages.cot import COT, NO_COT_BASE, train_cot, train_no_cot_base
from training.stages.icot import AA_ICOT, ICOT, NO_COT, train_aa_icot, train_icot, train_no_cot
from training.stages.stream import iter_turns
from training.stages.text import STAGE0, train_text

CODEC_DIR = "codec"
LABELS = {COT: "A-T-T-A", ICOT: "A-T-A ICoT", NO_COT: "A-T-A no-CoT", AA_ICOT: "A-A ICoT"}
CHAINS = {ICOT: Chain.ATA, NO_COT: Chain.ATA, AA_ICOT: Chain.AA}  # the adapter bundles' chains
BASELINE_DIRS = {NO_COT: "ata-no-cot", AA_ICOT: "aa-icot", NO_COT_BASE: "ata-no-cot-base"}
EVAL_SPLIT = "test"
BARRIER_TIMEOUT_S = 6 * 3600  # processes wait this long for the main one (corpus, export, eval)


@dataclass
class RunOptions:
    """How `icot train` runs a recipe.

    out: the run directory (checkpoints, logs, fitted codec, results); None: the recipe's
        training.output_dir.
    resume: continue the run in `out` (finished stages are skipped, unfinished ones resume from
        their newest checkpoint); without it a directory holding a run is refused.
    evaluate: evaluate the bundles and write the results page at the end.
    eval_limit: evaluate on the first N test dialogues only (None: all).
    results: also write the results page here (e.g. docs/results.md).
    phase: "all"; "prepare" (codec and corpus only); "train" (stages only, on a prepared run
        directory: nothing is voiced, exported or evaluated).
    """

    out: str | Path | None = None
    resume: bool = False
    progress: bool = True
    evaluate: bool = True
    eval_limit: int | None = None
    results: str | Path | None = None
    phase: str = "all"

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"phase must be one of {', '.join(PHASES)}, got {self.phase!r}")
        if self.eval_limit is not None and self.eval_limit < 1:
            raise ValueError(f"eval_limit must be ≥ 1, got {self.eval_limit}")


@dataclass
class RunSummary:
    """What a run produced: the bundles by label and the results page, if evaluated."""

    run_dir: Path
    main: bool = True
    """Whether this is the main process (the one that exported and evaluated)."""
    bundles: dict[str, Path] = field(default_factory=dict)
    results_page: Path | None = None
    summaries: list[dict[str, Any]] = field(default_factory=list)


def make_accelerator(mixed_precision: str | None = None) -> Any:
    """accelerate's Accelerator for this process (DDP under `accelerate launch`; gloo on CPU),
    autocasting to `mixed_precision` (`bf16`, or None: none).

    The process-group timeout is long because the other processes wait while the main one
    builds the corpus (minutes for the demo, hours for SODA-TTS).
    """
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    wait = InitProcessGroupKwargs(timeout=datetime.timedelta(seconds=BARRIER_TIMEOUT_S))
    return Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=mixed_precision or "no",
                       kwargs_handlers=[wait])


def prepare_codec(recipe: Recipe, source: CorpusSource, run_dir: Path, accelerator: Any,
                  progress: bool, build: bool = True) -> SpeechCodec:
    """The recipe's codec: model.codec_path, or the unit codec the source fits into run_dir/codec
    (without `build`, one that a `prepare` phase fitted there)."""
    model = recipe.model
    if model.codec_path is not None:
        return load_codec(model.codec_kind, model.codec_path)
    directory = run_dir / CODEC_DIR
    if not build and not directory.is_dir():
        raise RunDirectoryError(f"{directory} is missing: prepare the run first "
                                "(`icot train --phase prepare`, on a machine with espeak-ng)")
    if accelerator.is_main_process and not directory.is_dir():
        tmp = directory.with_name(CODEC_DIR + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        source.fit_codec(tmp, progress)
        tmp.rename(directory)
    accelerator.wait_for_everyone()
    return load_codec(model.codec_kind, directory)


def prepare_corpus(source: CorpusSource, codec: SpeechCodec, accelerator: Any, progress: bool,
                   build: bool = True) -> Corpus:
    """Build (or resume) the source's corpus on the main process; every process opens it
    (without `build`, only opens the corpus a `prepare` phase built)."""
    if build and accelerator.is_main_process:
        source.build_corpus(codec, progress)
    accelerator.wait_for_everyone()
    try:
        return source.open_corpus(codec)
    except CorpusError as error:
        if build:
            raise
        raise RunDirectoryError(f"{error} (prepare the run first: `icot train --phase "
                                "prepare`, on a machine with espeak-ng)") from error


def bundle_paths(recipe: Recipe, run_dir: Path) -> dict[str, Path]:
    """Where each stage's bundle goes: the recipe's export paths, else run_dir/bundles/."""
    export = recipe.export
    baselines = Path(export.baselines_dir) if export.baselines_dir else run_dir / "bundles"
    return {
        COT: Path(export.cot_bundle) if export.cot_bundle else run_dir / "bundles" / "cot",
        ICOT: Path(export.icot_bundle) if export.icot_bundle else run_dir / "bundles" / "icot",
        NO_COT: baselines / BASELINE_DIRS[NO_COT],
        AA_ICOT: baselines / BASELINE_DIRS[AA_ICOT],
        NO_COT_BASE: baselines / BASELINE_DIRS[NO_COT_BASE],
    }


def longest_target(ctx: StageContext, stage1_dir: Path) -> int:
    """Tokens the longest A-T-T-A answer of the training split takes (without history)."""
    from transformers import AutoTokenizer

    renderer = ctx.renderer(AutoTokenizer.from_pretrained(stage1_dir), 1 << 30)
    return max(len(r.ids) - r.boundary for r in
               map(renderer.atta, iter_turns(ctx.corpus, "train", max_history=0)))


def run_recipe(recipe: Recipe, options: RunOptions | None = None) -> RunSummary:
    """Run `recipe` end to end (see the module docstring); returns what it produced."""
    from transformers.utils import logging as transformers_logging

    options = options or RunOptions()
    transformers_logging.disable_progress_bar()  # per-file load/save bars drown the stage bars
    accelerator = make_accelerator(recipe.training.mixed_precision)
    run_dir = Path(options.out or recipe.training.output_dir)
    stages = [STAGE0] if recipe.stage0.enabled else []
    stages.append(COT)
    if recipe.stage2.enabled:
        stages.append(ICOT)
    if recipe.baselines.no_cot_ata:
        stages += [NO_COT_BASE, NO_COT] if recipe.stage0.enabled else [NO_COT]
    if recipe.baselines.aa_icot and recipe.stage2.enabled:
        stages.append(AA_ICOT)

    if not options.resume:
        refuse_existing_run(run_dir, stages)
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
    build = options.phase != "train"
    source = corpus_source(recipe)
    codec = prepare_codec(recipe, source, run_dir, accelerator, options.progress, build)
    corpus = prepare_corpus(source, codec, accelerator, options.progress, build)
    summary = RunSummary(run_dir, main=accelerator.is_main_process)
    if options.phase == "prepare":
        return summary
    ctx = StageContext(recipe, run_dir, corpus, accelerator, codec.vocab_size,
                       resume=options.resume, progress=options.progress)

    trained = train_stages(ctx, stages)
    if options.phase == "train":
        return summary
    paths = bundle_paths(recipe, run_dir)
    if ctx.main:
        export_bundles(ctx, source, codec, trained, paths)
    accelerator.wait_for_everyone()
    summary.bundles = {LABELS[name]: paths[name] for name in trained if name in LABELS}

    if options.evaluate and ctx.main:
        evaluate_run(recipe, source, summary, options)
    accelerator.wait_for_everyone()
    return summary


def train_stages(ctx: StageContext, stages: list[str]) -> dict[str, Path]:
    """Train stage 0 if enabled, stage 1 from it, then the enabled stages: the full stages'
    model directories and the others' adapter directories, by stage name (stage 0 is not
    exported: it speaks no speech)."""
    stage0_dir = train_text(ctx) if STAGE0 in stages else None
    stage1_dir = train_cot(ctx, stage0_dir)
    trained = {COT: stage1_dir}
    if ICOT in stages:
        trained[ICOT] = train_icot(ctx, stage1_dir)
    if NO_COT_BASE in stages and stage0_dir is not None:
        trained[NO_COT_BASE] = train_no_cot_base(ctx, stage0_dir)
    if NO_COT in stages:
        trained[NO_COT] = train_no_cot(ctx, trained.get(NO_COT_BASE, stage1_dir))
    if AA_ICOT in stages:
        trained[AA_ICOT] = train_aa_icot(ctx, stage1_dir, trained[ICOT])
    return trained


def export_bundles(ctx: StageContext, source: CorpusSource, codec: SpeechCodec,
                   trained: dict[str, Path], paths: dict[str, Path]) -> None:
    """Stage 1 as a full A-T-T-A bundle (with the source's input level), then each adapter as a
    bundle over it; one generation config for all (main process only)."""
    from transformers import AutoConfig

    model = ctx.recipe.model
    stage1_dir = trained[COT]
    context = AutoConfig.from_pretrained(stage1_dir).max_position_embeddings
    longest = longest_target(ctx, stage1_dir) if model.base_model is None else None
    generation = generation_config(model.base_model is None, context, longest)
    level = source.input_level_dbfs()
    export_cot_bundle(paths[COT], stage1_dir, codec, model.codec_kind, generation, level)
    if NO_COT_BASE in trained:
        export_cot_bundle(paths[NO_COT_BASE], trained[NO_COT_BASE], codec, model.codec_kind,
                          generation, level, chain=Chain.ATA)
    for name, adapter in trained.items():
        if name not in (COT, NO_COT_BASE):
            base = paths[NO_COT_BASE] if name == NO_COT and NO_COT_BASE in trained else paths[COT]
            export_adapter_bundle(paths[name], CHAINS[name], base, adapter, generation)


def evaluate_run(recipe: Recipe, source: CorpusSource, summary: RunSummary,
                 options: RunOptions) -> None:
    """Evaluate the bundles on the test split; write run_dir/results.md (and options.results)."""
    from training.evaluation.eval import count_turns, evaluate, machine_description
    from training.evaluation.intelligibility import WhisperJudge
    from training.evaluation.results import write_results_page

    try:
        dialogues = source.dialogues(EVAL_SPLIT, options.eval_limit)
    except SourceError as error:
        print(f"{recipe.name}: {error}; skipping the evaluation")
        return
    judge = WhisperJudge()
    reports = evaluate(list(summary.bundles.items()), dialogues, transcribe=judge.transcribe)
    summary.summaries = [report.summary() for report in reports]
    turns = count_turns(dialogues)
    setup = [
        f"recipe `{recipe.name}` ({recipe.description.strip()})",
        f"split `{EVAL_SPLIT}`: {source.split_voices(EVAL_SPLIT)}; {len(dialogues)} dialogues, "
        f"{sum(turns.values())} turns",
        f"measured on {machine_description()}, "
        f"{datetime.date.today().isoformat()}; one request at a time through the engine",
        "reply exact: generated reply text equals the reference; speech: Whisper tiny.en "
        "transcript of the decoded reply speech against the reference reply",
    ]
    pages = [summary.run_dir / "results.md"]
    if options.results is not None:
        pages.append(Path(options.results))
    for page in pages:
        write_results_page(page, summary.summaries, title=f"Results: recipe {recipe.name}",
                           setup=setup, run_dir=summary.run_dir,
                           turns=[report.to_dict() for report in reports])
    summary.results_page = pages[-1]
