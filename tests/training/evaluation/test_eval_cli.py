"""`icot eval` as a user runs it: bundles in, the comparison table out, a results page and JSON on
request, and clear errors for bad arguments."""

from __future__ import annotations

import json

from icot import main as icot


def test_eval_prints_the_table_and_writes_the_page_and_json(memorized_atta_bundle,
                                                            memorized_ata_bundle, tmp_path,
                                                            capsys):
    page, turns = tmp_path / "results.md", tmp_path / "turns.json"
    code = icot(["eval", "--bundle", str(memorized_atta_bundle), "--label", "A-T-T-A",
                 "--bundle", str(memorized_ata_bundle), "--split", "test", "--recipe", "tiny",
                 "--limit", "1", "--no-whisper", "--results", str(page), "--json", str(turns)])
    assert code == 0
    out = capsys.readouterr().out
    assert "| A-T-T-A | A-T-T-A |" in out
    assert f"| A-T-A ({memorized_ata_bundle.name}) | A-T-A |" in out  # the default label
    assert "| A-T-T-A | A-T-T-A |" in page.read_text()
    reports = json.loads(turns.read_text())
    assert [r["summary"]["chain"] for r in reports] == ["A-T-T-A", "A-T-A"]
    assert reports[0]["turns"][0]["reference_transcript"]  # the test dialogue's first turn


def test_eval_refuses_more_labels_than_bundles(memorized_ata_bundle, capsys):
    code = icot(["eval", "--bundle", str(memorized_ata_bundle), "--label", "a", "--label", "b"])
    assert code == 2 and "more --label than --bundle" in capsys.readouterr().err


def test_eval_names_a_bad_bundle(tmp_path, capsys):
    code = icot(["eval", "--bundle", str(tmp_path / "nowhere"), "--no-whisper"])
    assert code == 2 and "no such bundle directory" in capsys.readouterr().err


def test_eval_refuses_a_soda_recipe(memorized_ata_bundle, capsys):
    code = icot(["eval", "--bundle", str(memorized_ata_bundle), "--recipe", "anygpt"])
    assert code == 2 and "SODA-TTS" in capsys.readouterr().err


def test_eval_under_a_condition_says_so_on_the_page(memorized_ata_bundle, tmp_path, capsys):
    page = tmp_path / "results.md"
    code = icot(["eval", "--bundle", str(memorized_ata_bundle), "--recipe", "tiny", "--limit",
                 "1", "--no-whisper", "--voice", "en-gb-scotland", "--speed", "190", "--snr",
                 "20", "--results", str(page)])
    assert code == 0
    assert ("user turns voiced with voice en-gb-scotland, 190 wpm, white noise at 20 dB SNR "
            "instead of the split's own voices") in page.read_text()


def test_eval_names_a_voice_espeak_lacks(memorized_ata_bundle, capsys):
    code = icot(["eval", "--bundle", str(memorized_ata_bundle), "--voice", "en-xx-nowhere"])
    assert code == 2 and "espeak-ng has no language 'en-xx-nowhere'" in capsys.readouterr().err


def test_the_page_is_generated_whole_with_the_prose_it_includes(memorized_atta_bundle,
                                                                memorized_ata_bundle, tmp_path):
    """The hand-written prose is read, never written; every turn's JSON lands beside the page;
    accuracies carry intervals and are broken down by category."""
    page = tmp_path / "results.md"
    prose = tmp_path / "results.prose.md"
    prose.write_text("These figures are the tiny recipe's, written by hand.\n")
    args = ["eval", "--bundle", str(memorized_atta_bundle), "--label", "A-T-T-A",
            "--bundle", str(memorized_ata_bundle), "--label", "A-T-A ICoT", "--recipe", "tiny",
            "--limit", "2", "--no-whisper", "--results", str(page)]
    assert icot(args) == 0
    text = page.read_text()
    assert "These figures are the tiny recipe's, written by hand." in text
    assert prose.read_text() == "These figures are the tiny recipe's, written by hand.\n"
    assert "## Accuracy by category" in text and "bootstrap over dialogues" in text
    turns = json.loads((tmp_path / "results" / "turns.json").read_text())
    assert {t["category"] for r in turns for t in r["turns"]} <= {
        "seen", "unseen sums", "text-only facts", "unseen orders", "memory"}
    summary = turns[0]["summary"]
    ci = summary["accuracy_ci"]
    assert ci["low"] <= ci["value"] <= ci["high"]
    assert f"{100 * ci['value']:.1f} % [{100 * ci['low']:.1f}, {100 * ci['high']:.1f}]" in text
    page.write_text("stale")
    assert icot(args) == 0  # a rerun regenerates the whole page and keeps the prose
    assert page.read_text().startswith(text.split("\n- ")[0])
    assert prose.read_text() == "These figures are the tiny recipe's, written by hand.\n"


def test_eval_stress_reports_each_bucket(memorized_ata_bundle, tmp_path):
    page = tmp_path / "stress.md"
    code = icot(["eval", "--bundle", str(memorized_ata_bundle), "--recipe", "tiny", "--split",
                 "dev", "--stress", "--limit", "1", "--no-whisper", "--results", str(page)])
    assert code == 0
    text = page.read_text()
    assert "## Accuracy by condition" in text
    for bucket in ("| voice en-gb-scotland |", "| 120 wpm |", "| hum noise 20 dB |",
                   "| level −20 dB |", "| 8 kHz band |", "| room echo |"):
        assert bucket in text


def test_eval_stress_refuses_a_condition_of_its_own(memorized_ata_bundle, capsys):
    code = icot(["eval", "--bundle", str(memorized_ata_bundle), "--recipe", "tiny", "--stress",
                 "--snr", "10", "--no-whisper"])
    assert code == 2 and "--stress sets its own conditions" in capsys.readouterr().err
