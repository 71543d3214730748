"""`icot train`: run a training recipe end to end (training/pipeline.py).

    icot train --recipe demo                        # the shipped demo bundles, ≤ 90 min on 2 cores
    icot train --recipe tiny --out /tmp/run --set training.max_steps=2
    icot train --recipe demo --phase prepare        # codec and corpus (needs espeak-ng), then
    icot train --recipe demo --phase train          # the stages, e.g. on a GPU machine, then
    icot train --recipe demo --resume               # export and evaluate where espeak-ng is
    accelerate launch --num_processes 8 -m training.cli --recipe anygpt   # DDP, one GPU each

Heavy imports stay inside `run`, so `icot --help` stays fast. Knows nothing of how stages train.
"""

from __future__ import annotations

import argparse
import sys

from training.config import PHASES


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", required=True,
                        help="a shipped recipe's name (demo, anygpt, tiny) or a YAML path")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="override a recipe value (YAML syntax), e.g. training.max_steps=2")
    parser.add_argument("--out", help="run directory (default: the recipe's training.output_dir)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in the run directory (skip finished stages)")
    parser.add_argument("--no-eval", action="store_true",
                        help="stop after exporting the bundles")
    parser.add_argument("--eval-limit", type=int, metavar="N",
                        help="evaluate on the first N test dialogues only")
    parser.add_argument("--results", metavar="PATH",
                        help="also write the results page here, e.g. docs/results.md")
    parser.add_argument("--phase", choices=PHASES, default="all",
                        help="prepare: fit the codec and build the corpus, then stop; train: "
                             "train the stages of a prepared run directory, then stop "
                             "(no espeak-ng needed); all (default): everything")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from training.pipeline import RunOptions, run_recipe
    from training.recipe_files import RecipeError, load_recipe
    from training.stages.context import RunDirectoryError

    try:
        recipe = load_recipe(args.recipe, args.overrides)
        options = RunOptions(out=args.out, resume=args.resume, progress=not args.quiet,
                             evaluate=not args.no_eval, eval_limit=args.eval_limit,
                             results=args.results, phase=args.phase)
        summary = run_recipe(recipe, options)
    except (RecipeError, RunDirectoryError) as error:
        print(f"icot train: {error}", file=sys.stderr)
        return 2
    if not summary.main:
        return 0
    if args.phase != "all":
        print(f"{args.phase} phase done: {summary.run_dir}")
    for label, path in summary.bundles.items():
        print(f"{label}: {path}")
    if summary.results_page is not None:
        from training.evaluation.results import comparison_table

        print()
        print(comparison_table(summary.summaries))
        print(f"\nresults: {summary.results_page}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m training.cli ARGS` = `icot train ARGS` (what `accelerate launch -m` runs)."""
    parser = argparse.ArgumentParser(prog="icot train", description=__doc__.splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
