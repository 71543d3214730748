"""Bundle export: the stage-1 bundle, adapter bundles pointing at it, LoRA round trip through
Bundle.load, and the generation defaults written to bundle.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from model.bundle import DEFAULT_MAX_NEW_TOKENS, DEFAULT_SAMPLING, Bundle
from model.chain import Chain
from model.codecs.units import UnitCodec
from model.sampling import GREEDY
from training.config import LoraSettings, ModelConfig
from training.export import (
    ADAPTER_FILES,
    export_adapter_bundle,
    export_cot_bundle,
    generation_config,
)
from training.stages.cot import build_scratch_model
from training.stages.lora import add_lora
from training.word_tokenizer import build_word_tokenizer

N_UNITS = 32


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    """A stage-1 model directory (random tiny Llama + word tokenizer), as stage 1 leaves it."""
    directory = tmp_path_factory.mktemp("stage1") / "model"
    tokenizer = build_word_tokenizer(["hello", "there"], N_UNITS)
    config = ModelConfig(codec_kind="units", hidden_size=32,
                         num_layers=2, num_heads=2, intermediate_size=64, max_positions=256)
    model = build_scratch_model(config, tokenizer, seed=0)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def codec():
    noise = np.random.default_rng(0).standard_normal(16_000).astype(np.float32) * 0.1
    return UnitCodec.fit([noise], units=N_UNITS, seed=0, progress=False)


def trained_adapter(stage1_dir, directory):
    """A LoRA adapter whose B matrices are non-zero, as after training; saved by peft."""
    from transformers import AutoModelForCausalLM

    model = add_lora(AutoModelForCausalLM.from_pretrained(stage1_dir), LoraSettings(r=4))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    model.save_pretrained(directory)
    return model.eval()


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits


def test_scratch_models_decode_greedily_within_a_margin_over_the_longest_target():
    generation = generation_config(True, context_tokens=1024, longest_target_tokens=200)
    assert generation.text == GREEDY and generation.speech == GREEDY
    assert generation.max_new_tokens == 256  # 1.25 × 200 = 250 → next multiple of 16
    assert generation.seed == 0
    assert generation_config(True, 300, 200).max_new_tokens == 150  # at most half the context
    with pytest.raises(ValueError, match="longest"):
        generation_config(True, 1024)


def test_pretrained_bases_keep_the_authors_sampling():
    generation = generation_config(False, context_tokens=4096)
    assert generation.text == DEFAULT_SAMPLING == generation.speech
    assert generation.max_new_tokens == min(DEFAULT_MAX_NEW_TOKENS, 2048)
    assert generation_config(False, 1024).max_new_tokens == 512


def test_the_cot_bundle_loads_as_the_stage1_model(stage1, codec, tmp_path):
    from transformers import AutoModelForCausalLM

    generation = generation_config(True, 256, 64)
    directory = export_cot_bundle(tmp_path / "cot", stage1, codec, "units", generation)
    bundle = Bundle.load(directory)
    assert bundle.chain is Chain.ATTA and bundle.config.generation == generation
    ids = bundle.template.prompt(Chain.ATTA, [1, 2, 3]).ids
    expected = logits(AutoModelForCausalLM.from_pretrained(stage1), ids)
    assert torch.allclose(logits(bundle.model, ids), expected, atol=1e-5)


def test_an_adapter_bundle_points_at_the_cot_bundle_and_reproduces_the_trained_model(
        stage1, codec, tmp_path):
    generation = generation_config(True, 256, 64)
    cot = export_cot_bundle(tmp_path / "demo-cot", stage1, codec, "units", generation)
    trained = trained_adapter(stage1, tmp_path / "run" / "adapter")
    directory = export_adapter_bundle(tmp_path / "demo", Chain.ATA, cot,
                                      tmp_path / "run" / "adapter", generation)
    data = json.loads((directory / "bundle.json").read_text())
    assert (data["chain"], data["llm"], data["adapter"]) == ("A-T-A", "../demo-cot/llm", "adapter")
    assert data["codec"] == {"kind": "units", "path": "../demo-cot/codec"}
    assert sorted(p.name for p in (directory / "adapter").iterdir()) == sorted(ADAPTER_FILES)
    adapter_config = json.loads((directory / "adapter" / ADAPTER_FILES[0]).read_text())
    assert adapter_config["base_model_name_or_path"] == "../demo-cot/llm"

    bundle = Bundle.load(directory)
    ids = bundle.template.prompt(Chain.ATA, [4, 5, 6]).ids
    merged = logits(bundle.model, ids)
    assert torch.allclose(merged, logits(trained, ids), atol=1e-4)
    plain = logits(Bundle.load(cot).model, ids)
    assert not torch.allclose(merged, plain, atol=1e-3)  # the adapter does change the model


def test_moving_both_bundles_together_keeps_them_loadable(stage1, codec, tmp_path):
    generation = generation_config(True, 256, 64)
    cot = export_cot_bundle(tmp_path / "a" / "demo-cot", stage1, codec, "units",
                            generation)
    trained_adapter(stage1, tmp_path / "adapter")
    export_adapter_bundle(tmp_path / "a" / "demo", Chain.ATA, cot, tmp_path / "adapter",
                          generation)
    (tmp_path / "a").rename(tmp_path / "b")
    assert Bundle.load(tmp_path / "b" / "demo").chain is Chain.ATA
