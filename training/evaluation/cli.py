"""`icot eval`: evaluate bundles on a split the way the server answers; print the table.

    icot eval --bundle checkpoints/demo-cot --bundle checkpoints/demo --split test
    icot eval --bundle B1 --label A-T-T-A --bundle B2 --label "A-T-A ICoT" --results docs/results.md
    icot eval --bundle checkpoints/demo --voice en-gb-scotland --speed 190 --snr 20 --no-whisper
    icot eval --bundle checkpoints/demo --split dev --stress --limit 10 --results stress.md

The test dialogues come from the recipe's corpus source (default: demo) exactly as its corpus
voices them, or under one condition (`--voice`, `--speed`, `--snr`, `--noise`, `--gain`,
`--band`, `--echo`), or under every condition of the stress set (`--stress`: each bucket voiced
by a voice no split uses; accuracy per bucket). The results page is generated whole, with the
hand-written prose of `--prose` (default: `results.prose.md` beside `results.md`) included and
every turn's JSON beside it. Heavy imports stay inside `run`. Knows nothing of training stages.
"""

from __future__ import annotations

import argparse
import sys

SPLITS = ("train", "dev", "test")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", dest="bundles", action="append", required=True,
                        metavar="DIR", help="a bundle directory (repeat for a comparison)")
    parser.add_argument("--label", dest="labels", action="append", default=[], metavar="NAME",
                        help="the row name of the bundle at the same position (default: its "
                             "chain and directory); the paper's rows are A-T-T-A, "
                             "'A-T-A no-CoT', 'A-T-A ICoT', 'A-A ICoT'")
    parser.add_argument("--split", choices=SPLITS, default="test")
    parser.add_argument("--recipe", default="demo", help="where the split's dialogues come from")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="override a recipe value")
    parser.add_argument("--limit", type=int, metavar="N", help="the first N dialogues only")
    parser.add_argument("--voice", metavar="NAME",
                        help="voice every user turn with this espeak-ng voice instead of the "
                             "split's (en-gb-scotland, en-us+m7)")
    parser.add_argument("--speed", type=int, metavar="WPM",
                        help="speak every user turn at this many words per minute")
    parser.add_argument("--snr", type=float, metavar="DB",
                        help="add background noise at this SNR to every user turn")
    parser.add_argument("--noise", default="white", choices=("white", "pink", "brown", "hum"),
                        help="the kind of noise --snr adds (default white)")
    parser.add_argument("--gain", type=float, metavar="DB",
                        help="change every user turn's level by this much (clipped)")
    parser.add_argument("--band", type=int, metavar="HZ",
                        help="pass every user turn through a channel of this sample rate (8000)")
    parser.add_argument("--echo", type=float, metavar="SECONDS",
                        help="add a room echo of this reverberation time (RT60)")
    parser.add_argument("--stress", action="store_true",
                        help="evaluate under every condition of the stress set, --limit "
                             "dialogues each (tune on it; never on the test voices)")
    parser.add_argument("--prose", metavar="PATH",
                        help="hand-written prose the results page includes (default: "
                             "RESULTS.prose.md beside it, if it exists)")
    parser.add_argument("--no-whisper", action="store_true",
                        help="skip the speech metrics (Whisper tiny.en)")
    parser.add_argument("--results", metavar="PATH", help="write the results page here")
    parser.add_argument("--run", metavar="DIR", help="a training run directory to plot")
    parser.add_argument("--json", metavar="PATH", help="write every turn's result as JSON")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from model.bundle import BundleError, read_config
    from training.data.demo_source import Condition, stress_conditions
    from training.data.source import SourceError
    from training.data.sources import corpus_source
    from training.data.synth import SynthesisError
    from training.evaluation.eval import evaluate, machine_description
    from training.evaluation.results import comparison_table, write_results_page
    from training.recipe_files import RecipeError, load_recipe

    if len(args.labels) > len(args.bundles):
        print("icot eval: more --label than --bundle", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        print("icot eval: --limit must be ≥ 1", file=sys.stderr)
        return 2
    try:
        recipe = load_recipe(args.recipe, args.overrides)
        chains = [read_config(path).chain for path in args.bundles]
        condition = Condition(args.voice, args.speed, args.snr, args.noise, args.gain, args.band,
                              args.echo)
        source = corpus_source(recipe)
        if args.stress:
            if condition.describe():
                raise ValueError("--stress sets its own conditions: drop --voice, --speed, "
                                 "--snr, --gain, --band and --echo")
            dialogues, conditions = [], []
            for name, stress in stress_conditions().items():
                voiced = source.dialogues(args.split, args.limit, stress)
                dialogues += voiced
                conditions += [name] * len(voiced)
        else:
            dialogues = source.dialogues(args.split, args.limit, condition)
            conditions = [condition.describe() or None] * len(dialogues)
    except (RecipeError, BundleError, SourceError, ValueError, SynthesisError) as error:
        print(f"icot eval: {error}", file=sys.stderr)
        return 2
    labels = args.labels + [f"{chain.value} ({Path(path).name})"
                            for chain, path in zip(chains, args.bundles, strict=True)
                            ][len(args.labels):]
    transcribe = None
    if not args.no_whisper:
        from training.evaluation.intelligibility import WhisperJudge

        transcribe = WhisperJudge().transcribe
    def progress(done: int, total: int) -> None:
        print(f"\r{done}/{total} dialogues", end="", file=sys.stderr)

    reports = evaluate(list(zip(labels, args.bundles, strict=True)), dialogues,
                       transcribe=transcribe, progress=progress, conditions=conditions)
    print(file=sys.stderr)
    summaries = [report.summary() for report in reports]
    print(comparison_table(summaries))
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_dict() for r in reports], indent=1) + "\n")
    if args.results:
        turns = sum(len(d) for d in dialogues)
        setup = [f"recipe `{recipe.name}`, split `{args.split}`: {len(dialogues)} dialogues, "
                 f"{turns} turns", f"measured on {machine_description()}"]
        if condition.describe():
            setup.insert(1, f"user turns voiced with {condition.describe()} instead of the "
                            "split's own voices")
        if args.stress:
            setup.insert(1, "user turns voiced under each condition of the stress set "
                            "(docs/training.md, \"Stress set\"), by voices no split uses")
        page = write_results_page(Path(args.results), summaries, title="Results", setup=setup,
                                  run_dir=Path(args.run) if args.run else None,
                                  turns=[r.to_dict() for r in reports],
                                  prose=Path(args.prose) if args.prose else None)
        print(f"\nresults: {page}")
    return 0
