"""The results page: the paper's comparison table from evaluation reports, and training plots.

`comparison_table` renders bundle summaries (eval.py, beside it) as markdown, rows in the
paper's order (A-T-T-A, A-T-A without the ASR CoT, A-T-A ICoT, A-A ICoT), with each chain's
TTFA change against the A-T-T-A row on the same utterances and 95 % intervals (bootstrap over
dialogues, intervals.py); `breakdown_table` gives accuracy per category or per condition.
`plot_losses` and `plot_accuracy_vs_k` read a run directory's log.jsonl / monitor.jsonl files.
`write_results_page` generates the whole page: the hand-written prose comes from a file it
includes and never writes (`prose_path`), the PNGs, summaries.json and every turn's JSON go to a
folder beside the page. Knows nothing of models or engines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from training.evaluation.intervals import ratio_interval
from training.stages.logs import read_log

PAPER_ORDER = ("A-T-T-A", "A-T-A no-CoT", "A-T-A ICoT", "A-A ICoT")
STAGE_LABELS = {"stage0": "stage 0 (text chat)", "stage1": "stage 1 (A-T-T-A)",
                "stage2": "stage 2 (ICoT → A-T-A)",
                "no_cot_base": "A-T-A without CoT (full weights)",
                "no_cot": "A-T-A without CoT", "aa_icot": "A-A with ICoT"}
ACCURACY_STAGES = ("stage2", "aa_icot")
TARGET_REPLY_EXACT = 0.90
TARGET_SPEECH_WER = 0.25
TARGET_TTFA_REDUCTION = 0.20
TARGET_MAX_ACCURACY_DROP = 0.03


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _interval(estimate: Mapping[str, float] | None, scale: float = 100.0,
              shift: float = 0.0) -> str:
    """` [88.2, 93.6]`: an interval's bounds, scaled (100: percent points); '' for none."""
    if not estimate:
        return ""
    return f" [{scale * (estimate['low'] + shift):.1f}, {scale * (estimate['high'] + shift):.1f}]"


def _accuracy(summary: Mapping[str, Any]) -> str:
    """The row's reply accuracy with its interval (text chains: exact reply text)."""
    if summary["reply_exact"] is None:
        return "–"
    return _pct(summary["reply_exact"]) + _interval(summary.get("accuracy_ci"))


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def ordered(summaries: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Summaries in the paper's order (known labels first), the rest after in their order."""
    rank = {label: i for i, label in enumerate(PAPER_ORDER)}
    return sorted(summaries, key=lambda s: rank.get(s["label"], len(PAPER_ORDER)))


def ttfa_change(summary: Mapping[str, Any], reference: Mapping[str, Any] | None) -> float | None:
    """Relative TTFA change of p50 against the reference row (−0.25: 25 % sooner)."""
    if reference is None or not summary.get("ttfa_p50_ms") or not reference.get("ttfa_p50_ms"):
        return None
    return summary["ttfa_p50_ms"] / reference["ttfa_p50_ms"] - 1.0


def ttfa_ratio(summary: Mapping[str, Any],
               reference: Mapping[str, Any] | None) -> dict[str, float] | None:
    """The row's median TTFA over the reference row's on the same dialogues, with its 95 %
    interval (paired bootstrap over dialogues); None without both rows' TTFA by dialogue."""
    if reference is None or not summary.get("ttfa_by_dialogue") \
            or not reference.get("ttfa_by_dialogue"):
        return None
    estimate = ratio_interval(summary["ttfa_by_dialogue"], reference["ttfa_by_dialogue"])
    return None if estimate is None else estimate.to_dict()


def comparison_table(summaries: Sequence[Mapping[str, Any]]) -> str:
    """A markdown table of the bundle summaries (see the module docstring)."""
    rows = ordered(summaries)
    reference = next((s for s in rows if s["chain"] == "A-T-T-A"), None)
    lines = [
        "| model | chain | reply exact (text) | reply exact (speech, Whisper) | reply speech WER "
        "| transcript exact | TTFA p50 | TTFA vs A-T-T-A | total p50 | turns |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        change = ttfa_change(s, reference) if s is not reference else None
        ratio = ttfa_ratio(s, reference) if s is not reference else None
        lines.append(
            f"| {s['label']} | {s['chain']} | {_accuracy(s)} | "
            f"{_pct(s['speech_exact'])} | {_pct(s['speech_wer'])} | "
            f"{_pct(s['transcript_exact'])} | {_ms(s['ttfa_p50_ms'])} | "
            f"{'–' if change is None else f'{100 * change:+.1f} %'}"
            f"{_interval(ratio, shift=-1.0)} | "
            f"{_ms(s['total_p50_ms'])} | {s['turns']} |"
        )
    return "\n".join(lines)


def breakdown_table(summaries: Sequence[Mapping[str, Any]], key: str, heading: str) -> str:
    """Accuracy with its interval and turns per value of `key` (`accuracy_by_category` or
    `accuracy_by_condition`), one column per row of the comparison; '' when no row has any."""
    rows = ordered(summaries)
    names = sorted({name for s in rows for name in s.get(key) or {}})
    if not names or names == ["-"]:
        return ""
    lines = [f"| {heading} | " + " | ".join(s["label"] for s in rows) + " |",
             "|---|" + "---|" * len(rows)]
    for name in names:
        cells = []
        for s in rows:
            cell = (s.get(key) or {}).get(name)
            cells.append("–" if cell is None else
                         f"{_pct(cell['value'])}{_interval(cell)}, {cell['turns']} turns")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def prose_path(page: Path) -> Path:
    """The hand-written prose a results page includes: `results.prose.md` beside `results.md`.
    Generating the page reads it and never writes it."""
    return page.with_name(f"{page.stem}.prose.md")


def target_checks(summaries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The issue's quality targets, each as a line saying met or missed with the figures."""
    by_label = {s["label"]: s for s in summaries}
    atta, icot = by_label.get("A-T-T-A"), by_label.get("A-T-A ICoT")
    if atta is None or icot is None:
        return ["(targets need both the A-T-T-A and the A-T-A ICoT rows)"]

    def mark(ok: bool) -> str:
        return "met" if ok else "**missed**"

    checks = []
    if icot["reply_exact"] is not None and atta["reply_exact"] is not None:
        drop = atta["reply_exact"] - icot["reply_exact"]
        checks.append(f"A-T-A ICoT reply accuracy ≥ {_pct(TARGET_REPLY_EXACT)}: "
                      f"{_pct(icot['reply_exact'])} — "
                      f"{mark(icot['reply_exact'] >= TARGET_REPLY_EXACT)}")
        where = f"{100 * drop:.1f} points below" if drop >= 0 else f"{-100 * drop:.1f} above"
        checks.append(f"no more than {100 * TARGET_MAX_ACCURACY_DROP:.0f} points below A-T-T-A "
                      f"({_pct(atta['reply_exact'])}): {where} — "
                      f"{mark(drop <= TARGET_MAX_ACCURACY_DROP + 1e-9)}")
    if icot["speech_wer"] is not None:
        checks.append(f"reply speech WER ≤ {_pct(TARGET_SPEECH_WER)}: {_pct(icot['speech_wer'])}"
                      f" — {mark(icot['speech_wer'] <= TARGET_SPEECH_WER)}")
    change = ttfa_change(icot, atta)
    if change is not None:
        checks.append(f"TTFA of A-T-A ≥ {100 * TARGET_TTFA_REDUCTION:.0f} % below A-T-T-A: "
                      f"{-100 * change:.1f} % below — {mark(-change >= TARGET_TTFA_REDUCTION)}")
    return checks


def plot_losses(run_dir: Path, out: Path) -> Path | None:
    """Training loss of every stage in `run_dir` against its steps (log scale); None if no logs."""
    logs = {name: read_log(run_dir / name / "log.jsonl") for name in STAGE_LABELS}
    logs = {name: entries for name, entries in logs.items() if entries}
    if not logs:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, entries in logs.items():
        ax.plot([e["step"] for e in entries], [e["loss"] for e in entries],
                label=STAGE_LABELS[name])
        resets = [e["step"] for e in entries if e.get("optimizer_reset")]
        if resets:
            ax.plot(resets, [e["loss"] for e in entries if e.get("optimizer_reset")], "k|",
                    markersize=12)
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step (within the stage)")
    ax.set_ylabel("training loss (| = optimizer reset)")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, out)


def plot_accuracy_vs_k(run_dir: Path, out: Path) -> Path | None:
    """Teacher-forced dev accuracy against k, removed tokens (monitor.jsonl); None if none."""
    monitors = {name: [e for e in read_log(run_dir / name / "monitor.jsonl") if "k" in e]
                for name in ACCURACY_STAGES}
    monitors = {name: entries for name, entries in monitors.items() if entries}
    if not monitors:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, entries in monitors.items():
        ks = [e["k"] for e in entries]
        what = "transcript" if name == "stage2" else "reply text"
        ax.plot(ks, [e["text_exact"] for e in entries], "o-",
                label=f"{STAGE_LABELS[name]}: text exact")
        ax.plot(ks, [e["speech_acc"] for e in entries], "s--",
                label=f"{STAGE_LABELS[name]}: speech token accuracy")
        ax.set_xlabel(f"k: {what} tokens removed")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("dev accuracy (teacher-forced)")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, out)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    _pyplot().close(fig)
    return out


def write_results_page(
    path: Path,
    summaries: Sequence[Mapping[str, Any]],
    *,
    title: str,
    setup: Sequence[str],
    run_dir: Path | None = None,
    turns: Sequence[Mapping[str, Any]] | None = None,
    prose: Path | None = None,
) -> Path:
    """Write the whole markdown page: title, the hand-written prose (`prose`, default
    `prose_path(path)`, included when it exists), setup lines, the table, the target checks,
    accuracy per category and per condition, the plots (PNGs in `{path.stem}/` beside the
    page) and per intent; summaries.json and every turn's result (`turns`, as turns.json) go
    there too, so the page's figures can be recomputed."""
    path = Path(path)
    figures = path.parent / path.stem
    figures.mkdir(parents=True, exist_ok=True)
    (figures / "summaries.json").write_text(json.dumps(list(summaries), indent=1) + "\n")
    if turns is not None:
        (figures / "turns.json").write_text(json.dumps(list(turns), indent=1) + "\n")
    prose = prose_path(path) if prose is None else Path(prose)
    lines = [f"# {title}", ""]
    if prose.is_file():
        lines += [prose.read_text(encoding="utf-8").strip(), ""]
    lines += [*[f"- {line}" for line in setup],
              "- intervals: 95 %, bootstrap over dialogues (2,000 resamples); the TTFA change's "
              "interval is the paired interval of the median TTFA ratio",
              f"- every turn's result: [{figures.name}/turns.json]({figures.name}/turns.json)"
              if turns is not None else "", "",
              comparison_table(summaries), "", "## Targets", "",
              *[f"- {line}" for line in target_checks(summaries)], ""]
    for key, heading in (("accuracy_by_category", "category"),
                         ("accuracy_by_condition", "condition")):
        table = breakdown_table(summaries, key, heading)
        if table:
            lines += [f"## Accuracy by {heading}", "", table, ""]
    if run_dir is not None:
        plots = [plot_losses(run_dir, figures / "loss.png"),
                 plot_accuracy_vs_k(run_dir, figures / "accuracy_vs_k.png")]
        shown = [p for p in plots if p is not None]
        if shown:
            lines += ["## Training", ""]
            lines += [f"![{p.stem}]({figures.name}/{p.name})" for p in shown]
            lines += [""]
    rows = ordered(summaries)
    intents = sorted({intent for s in rows for intent in s["accuracy_by_intent"]})
    lines += ["## Accuracy by intent", "",
              "| intent | " + " | ".join(s["label"] for s in rows) + " |",
              "|---|" + "---|" * len(rows)]
    for intent in intents:
        cells = [_pct(s["accuracy_by_intent"].get(intent)) for s in rows]
        lines.append(f"| {intent} | " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
