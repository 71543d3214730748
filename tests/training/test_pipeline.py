"""`icot train` end to end on the tiny recipe: corpus, stage 0 (text chat) feeding stage 1, ICoT
with k growing and optimizer resets, both baselines (no-CoT from stage 0 on stage 1's schedule),
bundles loaded back, evaluation table; --resume; the same run as two gloo processes under
`accelerate launch`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bench.load import free_port
from model.bundle import Bundle, read_config
from model.chain import Chain
from training.cli import main as train_main
from training.data.shards import Corpus
from training.recipe_files import load_recipe
from training.stages.logs import read_log
from training.stages.schedule import OptimizerReset

REPO = Path(__file__).resolve().parents[2]
ACCELERATE = Path(sys.executable).with_name("accelerate")



@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny-run")


def overrides(work: Path, name: str) -> list[str]:
    """The tiny recipe with every path under `work` (the corpus is shared between runs: each
    run fits the same unit codec on it, seeded)."""
    values = {
        "data.corpus_dir": work / "corpus",
        "data.train_examples": 4, "data.eval_examples": 2,  # smaller still: ≲ 90 s when busy
        "stage2.steps_per_removal": 1, "stage2.extra_steps": 1,
        "export.cot_bundle": work / name / "bundles" / "cot",
        "export.icot_bundle": work / name / "bundles" / "icot",
        "export.baselines_dir": work / name / "bundles" / "baselines",
    }
    args = []
    for key, value in values.items():
        args += ["--set", f"{key}={value}"]
    return args


@pytest.fixture(scope="module")
def run(work) -> Path:
    code = train_main(["--recipe", "tiny", "--out", str(work / "single" / "run"), "--quiet",
                       "--eval-limit", "1", *overrides(work, "single")])
    assert code == 0
    return work / "single"


def test_the_demo_codec_is_fitted_on_the_corpus_audio_and_shipped_in_the_cot_bundle(run):
    codec_config = json.loads((run / "run" / "codec" / "config.json").read_text())
    shipped = json.loads((run / "bundles" / "cot" / "codec" / "config.json").read_text())
    assert codec_config == shipped and codec_config["units"] >= 2
    bundle = Bundle.load(run / "bundles" / "icot")
    assert bundle.codec.vocab_size == codec_config["units"]
    assert bundle.config.codec.kind == "units"
    # the training user turns' level range ships with every bundle of the run
    low, high = bundle.config.input_level_dbfs
    assert -40.0 < low < high < 0.0
    assert read_config(run / "bundles" / "cot").input_level_dbfs == (low, high)
    # its context decoder was fitted on the assistant's replies and ships with it
    assert bundle.codec.decoder is not None
    assert np.array_equal(np.load(run / "bundles" / "cot" / "codec" / "decoder.npy"),
                          bundle.codec.decoder)


def test_every_bundle_is_exported_and_loads(run):
    bundles = run / "bundles"
    expected = {"cot": Chain.ATTA, "icot": Chain.ATA, "baselines/ata-no-cot": Chain.ATA,
                "baselines/aa-icot": Chain.AA, "baselines/ata-no-cot-base": Chain.ATA}
    for name, chain in expected.items():
        bundle = Bundle.load(bundles / name)
        assert bundle.chain is chain
    icot = read_config(bundles / "icot")
    assert (icot.llm, icot.codec.path, icot.adapter) == ("../cot/llm", "../cot/codec", "adapter")
    assert read_config(bundles / "baselines" / "aa-icot").llm == "../../cot/llm"
    # the no-CoT baseline is an adapter over its own model, trained from stage 0
    assert read_config(bundles / "baselines" / "ata-no-cot").llm == "../ata-no-cot-base/llm"


def test_stage0_trains_text_chat_and_the_no_cot_base_follows_stage1_s_schedule(run):
    stage0 = read_log(run / "run" / "stage0" / "log.jsonl")
    assert len(stage0) == 2  # stage0.steps
    stage1 = read_log(run / "run" / "stage1" / "log.jsonl")
    base = read_log(run / "run" / "no_cot_base" / "log.jsonl")
    assert [e["lr"] for e in base] == [e["lr"] for e in stage1]


def test_stage1_starts_from_the_stage0_model(work):
    """With a vanishing stage-1 learning rate, stage 1's weights are stage 0's."""
    out = work / "from-stage0"
    code = train_main(["--recipe", "tiny", "--out", str(out / "run"), "--quiet", "--no-eval",
                       *overrides(work, "from-stage0"), "--set", "stage1.lr=1.0e-12",
                       "--set", "stage2.enabled=false", "--set", "baselines.no_cot_ata=false",
                       "--set", "baselines.aa_icot=false"])
    assert code == 0
    before = load_file(out / "run" / "stage0" / "final" / "model" / "model.safetensors")
    after = load_file(out / "run" / "stage1" / "final" / "model" / "model.safetensors")
    assert before.keys() == after.keys()
    for name, weight in before.items():
        assert torch.allclose(weight, after[name], atol=1e-6), name
    # not merely the same seeded initialization: stage 0 moved the weights away from it
    from transformers import AutoTokenizer

    from training.stages.cot import build_scratch_model

    recipe = load_recipe("tiny")
    tokenizer = AutoTokenizer.from_pretrained(out / "run" / "stage0" / "final" / "model")
    fresh = build_scratch_model(recipe.model, tokenizer, recipe.training.seed).state_dict()
    assert any(not torch.allclose(fresh[name], weight) for name, weight in before.items())


def test_stage2_removes_k_tokens_on_schedule_and_resets_the_optimizer_when_k_grows(run, work):
    recipe = load_recipe("tiny", [a for a in overrides(work, "single") if a != "--set"])
    schedule = recipe.stage2.schedule()
    log = read_log(run / "run" / "stage2" / "log.jsonl")
    monitor = read_log(run / "run" / "stage2" / "monitor.jsonl")
    max_len = monitor[-1]["k"]  # the longest training transcript, in tokens
    steps = schedule.completion_step(max_len) + recipe.stage2.extra_steps
    assert [e["step"] for e in log] == list(range(1, steps + 1))
    assert [e["k"] for e in log] == [schedule.k_at(s) for s in range(steps)]
    resets = OptimizerReset(schedule, max_len)
    assert [e["optimizer_reset"] for e in log] == [resets.due(s) for s in range(steps)]
    assert sum(e["optimizer_reset"] for e in log) == max_len - 1
    assert [e["k"] for e in monitor] == list(range(max_len + 1))  # accuracy at every k
    assert all(e["kl"] >= 0 for e in log)


def test_baselines_run_their_own_lengths(run):
    assert len(read_log(run / "run" / "no_cot" / "log.jsonl")) == 2  # baselines.no_cot_steps
    aa = read_log(run / "run" / "aa_icot" / "log.jsonl")
    assert aa[-1]["k"] >= read_log(run / "run" / "aa_icot" / "monitor.jsonl")[-1]["k"]


def test_the_results_page_has_the_comparison_table_and_plots(run):
    text = (run / "run" / "results.md").read_text()
    for label in ("| A-T-T-A |", "| A-T-A no-CoT |", "| A-T-A ICoT |", "| A-A ICoT |"):
        assert label in text
    for plot in ("loss.png", "accuracy_vs_k.png"):
        assert (run / "run" / "results" / plot).is_file()


def test_resume_skips_finished_stages_and_a_fresh_run_refuses_the_directory(run, work, capsys):
    log = run / "run" / "stage1" / "log.jsonl"
    before = log.read_text()
    args = ["--recipe", "tiny", "--out", str(run / "run"), "--quiet", "--no-eval",
            *overrides(work, "single")]
    assert train_main([*args, "--resume"]) == 0
    assert log.read_text() == before
    assert train_main(args) == 2
    assert "--resume" in capsys.readouterr().err


def test_two_gloo_processes_train_and_export_once(run, work):
    out = work / "ddp" / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(
        [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no",
         "--main_process_port", str(free_port()),  # not 29500: another run may hold it
         "-m", "training.cli",
         "--recipe", "tiny", "--out", str(out), "--quiet", "--no-eval",
         "--set", "baselines.no_cot_ata=false", "--set", "baselines.aa_icot=false",
         # the codec the corpus was encoded with (a refit with other BLAS threads may differ)
         "--set", f"model.codec_path={run / 'run' / 'codec'}", *overrides(work, "ddp")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("A-T-A ICoT:") == 1  # only the main process reports
    checkpoint = sorted((out / "stage2" / "checkpoints").iterdir())[-1]
    assert {p.name for p in checkpoint.glob("rank-*.pt")} == {"rank-0.pt", "rank-1.pt"}
    single = read_log(run / "run" / "stage1" / "log.jsonl")
    double = read_log(out / "stage1" / "log.jsonl")
    assert len(double) == len(single)
    # each optimizer step saw both processes' batches: twice the target tokens on average
    ratio = sum(e["target_tokens"] for e in double) / sum(e["target_tokens"] for e in single)
    assert 1.4 < ratio < 2.6
    assert Bundle.load(work / "ddp" / "bundles" / "icot").chain is Chain.ATA


def test_bf16_mixed_precision_autocasts_the_steps_and_keeps_float32_weights(run, work):
    out = work / "bf16" / "run"
    done = subprocess.run(  # its own process: accelerate fixes the precision once per process
        [sys.executable, "-m", "training.cli", "--recipe", "tiny", "--out", str(out), "--quiet",
         "--no-eval", "--set", "training.mixed_precision=bf16", "--set", "stage2.enabled=false",
         "--set", "baselines.no_cot_ata=false", "--set", "baselines.aa_icot=false",
         "--set", f"model.codec_path={run / 'run' / 'codec'}", *overrides(work, "bf16")],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    full = [entry["loss"] for entry in read_log(run / "run" / "stage1" / "log.jsonl")]
    mixed = [entry["loss"] for entry in read_log(out / "stage1" / "log.jsonl")]
    assert mixed != full  # bfloat16 matmuls round differently: the steps ran under autocast
    assert mixed == pytest.approx(full, rel=0.05)  # same seed, data and codec: the same training
    weights = load_file(next((work / "bf16" / "bundles" / "cot" / "llm").glob("*.safetensors")))
    assert {tensor.dtype for tensor in weights.values()} == {torch.float32}


def test_a_run_split_across_machines_trains_without_espeak_then_exports_on_resume(
        work, monkeypatch, capsys):
    out = work / "split" / "run"
    args = ["--recipe", "tiny", "--out", str(out), "--quiet", *overrides(work, "split"),
            "--set", f"data.corpus_dir={work / 'split' / 'corpus'}",
            "--set", "baselines.aa_icot=false"]
    assert train_main([*args, "--phase", "train"]) == 2  # nothing prepared yet
    assert "--phase prepare" in capsys.readouterr().err
    assert train_main([*args, "--phase", "prepare"]) == 0
    assert (out / "codec" / "config.json").is_file()
    assert Corpus.open(work / "split" / "corpus").count("train") > 0
    assert not (out / "stage1").exists()
    with monkeypatch.context() as patch:
        patch.setenv("PATH", str(work / "split"))  # no espeak-ng (nor anything else) on PATH
        # a recipe that describes another corpus than the prepared one is refused
        assert train_main([*args, "--phase", "train", "--set", "data.train_examples=5"]) == 2
        assert "another spec than this recipe's: train_dialogues 4 ≠ 5" in capsys.readouterr().err
        assert train_main([*args, "--phase", "train"]) == 0
    for stage in ("stage1", "stage2", "no_cot"):
        assert (out / stage / "final" / "DONE").is_file()
    assert not (work / "split" / "bundles").exists()
    stage1_log = (out / "stage1" / "log.jsonl").read_text()
    assert train_main([*args, "--resume", "--no-eval"]) == 0
    assert (out / "stage1" / "log.jsonl").read_text() == stage1_log  # nothing retrained
    assert Bundle.load(work / "split" / "bundles" / "icot").chain is Chain.ATA
    assert read_config(work / "split" / "bundles" / "cot").input_level_dbfs is not None


def write_soda(directory: Path, n_units: int) -> None:
    """A few SODA-TTS rows per split in the dataset's parquet schema (units within the codec)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def units(seed: int, count: int) -> str:
        return "".join(f"<🗣️{(seed * 7 + k * 3) % n_units}>" for k in range(count))

    for split, rows in (("train", 6), ("validation", 2), ("test", 2)):
        table = pa.table({
            "input_tokens": [units(i, 20 + i) for i in range(rows)],
            "output_tokens": [units(i + 50, 25) for i in range(rows)],
            "input_transcript": [f"Hi, how was day {i}?" for i in range(rows)],
            "output_transcript": [f"It was fine, thanks {i}." for i in range(rows)],
            "dialogue_turn": list(range(rows)),
        })
        (directory / "data").mkdir(parents=True, exist_ok=True)
        pq.write_table(table, directory / "data" / f"{split}-00000-of-00001.parquet")


def test_the_anygpt_recipe_dry_runs_on_a_tiny_model(tmp_path):
    from tiny_bundle import build_tiny_bundle

    base = build_tiny_bundle(tmp_path / "anygpt-chat", chain="A-T-T-A", n_units=64)
    write_soda(tmp_path / "soda", n_units=64)
    values = {
        "model.base_model": base / "llm", "model.codec_path": base / "codec",
        "data.soda_dir": tmp_path / "soda", "data.corpus_dir": tmp_path / "corpus",
        "training.max_steps": 2, "training.batch_size": 2,
        "export.cot_bundle": tmp_path / "b" / "cot", "export.icot_bundle": tmp_path / "b" / "icot",
        "export.baselines_dir": tmp_path / "b" / "baselines",
    }
    args = [item for key, value in values.items() for item in ("--set", f"{key}={value}")]
    assert train_main(["--recipe", "anygpt", "--out", str(tmp_path / "run"), "--quiet",
                       *args]) == 0
    recipe = load_recipe("anygpt")
    for stage in ("stage1", "stage2", "no_cot", "aa_icot"):
        log = read_log(tmp_path / "run" / stage / "log.jsonl")
        assert [e["step"] for e in log] == [2]  # capped by training.max_steps; the last is logged
    assert read_log(tmp_path / "run" / "stage2" / "log.jsonl")[0]["kl"] >= 0
    icot = Bundle.load(tmp_path / "b" / "icot")
    assert icot.chain is Chain.ATA
    assert icot.config.generation.text.temperature == 0.7  # the authors' sampling
    adapter = read_config(tmp_path / "b" / "icot").adapter
    config = (tmp_path / "b" / "icot" / adapter / "adapter_config.json").read_text()
    assert f'"r": {recipe.stage2.lora.r}' in config


def test_whisper_units_fit_into_the_corpus_and_the_bundle(work):
    """codec_kind whisper-units: users heard as Whisper-encoder units, replies spoken as the
    reply codec's units, both in the corpus and the exported bundle."""
    from model.codecs.heard_units import HeardUnitCodec

    out = work / "whisper-units"
    code = train_main(["--recipe", "tiny", "--out", str(out / "run"), "--quiet", "--no-eval",
                       *overrides(work, "whisper-units"),
                       "--set", f"data.corpus_dir={out / 'corpus'}",
                       "--set", "model.codec_kind=whisper-units", "--set", "unit_codec.units=16",
                       "--set", "unit_codec.user_units=16", "--set", "stage2.enabled=false",
                       "--set", "baselines.no_cot_ata=false", "--set", "baselines.aa_icot=false"])
    assert code == 0
    bundle = Bundle.load(out / "bundles" / "cot")
    assert isinstance(bundle.codec, HeardUnitCodec) and bundle.codec.vocab_size == 32
    for record in Corpus.open(out / "corpus").iter_split("train"):
        for turn in record["turns"]:
            assert min(turn["user_units"]) >= 16 and max(turn["reply_units"]) < 16
