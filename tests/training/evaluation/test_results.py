"""The results page: the comparison table in the paper's order, target checks, and plots read
from a run directory's logs."""

from __future__ import annotations

import json

from training.evaluation.results import (
    PAPER_ORDER,
    comparison_table,
    target_checks,
    ttfa_change,
    write_results_page,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def summary(label, chain, reply, wer, ttfa, transcript=None):
    return {"label": label, "chain": chain, "turns": 10, "reply_exact": reply,
            "speech_exact": 0.8, "speech_wer": wer, "transcript_exact": transcript,
            "ttfa_p50_ms": ttfa, "total_p50_ms": 2 * ttfa,
            "accuracy_by_intent": {"add": reply if reply is not None else 0.8}}


SUMMARIES = [
    summary("A-A ICoT", "A-A", None, 0.4, 60.0),
    summary("A-T-A ICoT", "A-T-A", 0.95, 0.2, 75.0),
    summary("A-T-T-A", "A-T-T-A", 0.97, 0.18, 100.0, transcript=0.9),
    summary("A-T-A no-CoT", "A-T-A", 0.5, 0.6, 76.0),
]


def test_rows_follow_the_papers_comparison_order():
    rows = comparison_table(SUMMARIES).splitlines()[2:]
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == list(PAPER_ORDER)


def test_ttfa_is_compared_with_the_explicit_chain():
    atta, icot = SUMMARIES[2], SUMMARIES[1]
    assert ttfa_change(icot, atta) == -0.25
    table = comparison_table(SUMMARIES)
    assert "| 75 ms | -25.0 % |" in table and "| 100 ms | – |" in table
    assert "| 90.0 % |" in table  # the A-T-T-A transcript accuracy


def test_targets_say_met_or_missed_with_the_figures():
    checks = "\n".join(target_checks(SUMMARIES))
    assert "95.0 % — met" in checks  # reply accuracy ≥ 90 %
    assert "(97.0 %): 2.0 points below — met" in checks
    assert "20.0 % — met" in checks  # speech WER ≤ 25 %
    assert "25.0 % below — met" in checks
    worse = "\n".join(target_checks([dict(SUMMARIES[1], reply_exact=0.93, ttfa_p50_ms=90.0),
                                      SUMMARIES[2]]))
    assert "93.0 % — met" in worse  # still ≥ 90 %, but …
    assert "4.0 points below — **missed**" in worse and "10.0 % below — **missed**" in worse


def test_the_page_has_the_table_and_the_plots_of_the_run(tmp_path):
    run = tmp_path / "run"
    for stage, entries in {
        "stage1": [{"step": s, "loss": 5.0 / s} for s in range(1, 6)],
        "stage2": [{"step": s, "loss": 1.0 / s, "k": s // 2 + 1, "optimizer_reset": s % 2 == 0}
                   for s in range(1, 6)],
    }.items():
        (run / stage).mkdir(parents=True)
        (run / stage / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    (run / "stage2" / "monitor.jsonl").write_text("".join(
        json.dumps({"step": 2 * k, "k": k, "text_exact": 1 - k / 10, "speech_acc": 0.9}) + "\n"
        for k in range(4)))
    page = write_results_page(tmp_path / "docs" / "results.md", SUMMARIES, title="Results",
                              setup=["recipe `tiny`"], run_dir=run)
    text = page.read_text()
    assert text.startswith("# Results\n\n- recipe `tiny`")
    assert comparison_table(SUMMARIES) in text
    for name in ("loss.png", "accuracy_vs_k.png"):
        assert f"(results/{name})" in text
        assert (tmp_path / "docs" / "results" / name).read_bytes().startswith(PNG_MAGIC)
    saved = json.loads((tmp_path / "docs" / "results" / "summaries.json").read_text())
    assert saved == SUMMARIES
    assert "| add | 97.0 % | 50.0 % | 95.0 % | 80.0 % |" in text


def test_a_page_without_a_run_has_no_plots(tmp_path):
    text = write_results_page(tmp_path / "r.md", SUMMARIES, title="R", setup=[]).read_text()
    assert "png" not in text
