"""Recipes: every shipped YAML loads; bad keys and values are errors naming the YAML key."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
import yaml

from training.config import LLAMA_LORA_TARGETS, Recipe
from training.recipe_files import RecipeError, load_recipe, recipe_from_dict, shipped_recipes
from training.stages.schedule import RemovalSchedule


@pytest.mark.parametrize("path", shipped_recipes(), ids=lambda p: p.stem)
def test_every_shipped_recipe_loads_and_round_trips(path):
    recipe = load_recipe(path)
    assert isinstance(recipe, Recipe)
    assert recipe.name == path.stem
    assert recipe_from_dict(recipe.to_dict()) == recipe
    assert recipe_from_dict(yaml.safe_load(yaml.safe_dump(recipe.to_dict()))) == recipe


def test_the_expected_recipes_ship():
    assert {"demo", "anygpt", "tiny"} <= {p.stem for p in shipped_recipes()}


def test_anygpt_recipe_follows_the_paper():
    recipe = load_recipe("anygpt")
    assert recipe.model.base_model and recipe.model.codec_kind == "speechtokenizer"
    assert recipe.data.source == "soda" and recipe.data.max_speech_tokens == 500
    s2 = recipe.stage2
    assert (s2.lora.r, s2.lora.alpha, s2.lora.target_modules) == (32, 32.0, LLAMA_LORA_TARGETS)
    assert s2.schedule() == RemovalSchedule(steps_per_removal=2500, lambda_=4.0)
    assert (s2.lr, s2.kl_weight, s2.reset_optimizer) == (4e-5, 50.0, True)
    assert (recipe.training.grad_clip, recipe.training.dtype) == (50.0, "bfloat16")


def test_demo_recipe_trains_from_scratch_and_exports_the_embedded_bundles():
    recipe = load_recipe("demo")
    assert recipe.model.base_model is None and recipe.stage1.method == "full"
    assert recipe.data.source == "demo" and recipe.model.codec_kind == "whisper-units"
    assert recipe.stage0.enabled and recipe.stage1.typed_share > 0
    assert recipe.baselines.no_cot_ata and recipe.baselines.aa_icot
    assert (recipe.export.cot_bundle, recipe.export.icot_bundle, recipe.export.baselines_dir) == (
        "checkpoints/demo-cot", "checkpoints/demo", "checkpoints/baselines",
    )


def test_stage0_needs_the_demo_domain_and_a_model_from_scratch():
    with pytest.raises(RecipeError, match="stage0.enabled"):
        load_recipe("anygpt", ["stage0.enabled=true"])
    assert not load_recipe("anygpt").stage0.enabled


def test_overrides_set_nested_keys_with_yaml_values():
    recipe = load_recipe("tiny", [
        "training.max_steps=3",
        "stage2.removal_lambda=.inf",
        "stage2.lora.target_modules=[q_proj, v_proj]",
        "export.baselines_dir=null",
    ])
    assert recipe.training.max_steps == 3
    assert math.isinf(recipe.stage2.removal_lambda)
    assert recipe.stage2.lora.target_modules == ("q_proj", "v_proj")
    assert recipe.export.baselines_dir is None
    assert recipe.stage2.schedule().sample_offset(random.Random(0)) == 0


def write(tmp_path, text: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


BASE = load_recipe("tiny").to_dict()


def recipe_with(tmp_path, section: str, key: str, value, *, drop: bool = False):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    if drop:
        del raw[section][key]
    else:
        raw[section][key] = value
    return write(tmp_path, yaml.safe_dump(raw))


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("stage2", "lamda", 4.0, r"stage2\.lamda: unknown key; known: steps_per_removal"),
        ("stage2", "steps_per_removal", 0, r"stage2\.steps_per_removal: must be ≥ 1"),
        ("stage2", "removal_lambda", -1.0, r"stage2\.removal_lambda: must be > 0"),
        ("stage2", "lora", {"r": 0}, r"stage2\.lora\.r: must be ≥ 1, got 0"),
        ("stage2", "lora", {"rank": 4}, r"stage2\.lora\.rank: unknown key"),
        ("training", "batch_size", "32", r"training\.batch_size: expected an integer, got '32'"),
        ("training", "batch_size", 2.5, r"training\.batch_size: expected an integer"),
        ("training", "lr", "fast", r"training\.lr: expected a number, got 'fast'"),
        ("training", "dtype", "fp8", r"training\.dtype: must be one of 'float32'"),
        ("training", "mixed_precision", "fp16", r"mixed_precision: must be one of 'bf16'"),
        ("stage1", "method", "lora", r"stage1\.method: a model built from scratch needs"),
        ("stage1", "enabled", "yes", r"stage1\.enabled: expected true or false"),
        ("data", "augment_prob", 1.5, r"data\.augment_prob: must lie in \[0, 1\]"),
        ("data", "source", "soda", r"data\.soda_dir: required when source is soda"),
        ("model", "num_heads", 3, r"model\.num_heads: must divide hidden_size \(32\), got 3"),
        ("stage2", "lora", {"target_modules": "q_proj"}, r"target_modules: expected a list"),
        ("unit_codec", "units", 1, r"unit_codec\.units: must be ≥ 2, got 1"),
        ("unit_codec", "encoder_context", -1, r"unit_codec\.encoder_context: must be ≥ 0"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path, section, key, value, message):
    path = recipe_with(tmp_path, section, key, value)
    with pytest.raises(RecipeError, match=message) as info:
        load_recipe(path)
    assert str(info.value).startswith(str(path) + ": ")


def test_missing_required_keys_and_sections(tmp_path):
    with pytest.raises(RecipeError, match=r"training\.lr: missing \(required\)"):
        load_recipe(recipe_with(tmp_path, "training", "lr", None, drop=True))
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    del raw["model"]
    with pytest.raises(RecipeError, match=r"model: missing \(required\)"):
        load_recipe(write(tmp_path, yaml.safe_dump(raw)))
    with pytest.raises(RecipeError, match=r"recipe: expected a mapping, got list"):
        load_recipe(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(RecipeError, match=r"training: expected a mapping, got int"):
        load_recipe("tiny", ["training=3"])


def test_soda_needs_the_speechtokenizer_codec(tmp_path):
    raw = yaml.safe_load(yaml.safe_dump(load_recipe("anygpt").to_dict()))
    raw["model"]["codec_kind"] = "units"
    with pytest.raises(RecipeError, match=r"model\.codec_kind: SODA-TTS units are SpeechTokenizer"):
        load_recipe(write(tmp_path, yaml.safe_dump(raw)))


def test_yaml_1_1_exponent_floats_are_numbers(tmp_path):
    text = write(tmp_path, yaml.safe_dump(BASE)).read_text().replace("lr: 0.001", "lr: 4e-5")
    assert "lr: 4e-5" in text
    assert load_recipe(write(tmp_path, text)).training.lr == 4e-5


def test_unknown_recipe_names_and_bad_overrides(tmp_path):
    with pytest.raises(RecipeError, match=r"no shipped recipe of that name \(shipped: .*demo"):
        load_recipe("no-such-recipe")
    with pytest.raises(RecipeError, match=r"training\.bogus: unknown key"):
        load_recipe("tiny", ["training.bogus=1"])
    with pytest.raises(RecipeError, match="expected section.key=value"):
        load_recipe("tiny", ["training.max_steps"])
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(write(tmp_path, "training: [unclosed\n"))


def test_the_demo_fits_the_unit_codec_documented_in_docs_codecs_and_fewer_units_on_short_audio():
    fit = load_recipe("demo").unit_codec
    assert (fit.units, fit.user_units, fit.fit_dialogues) == (1024, 512, 300)
    assert (fit.encoder_context, fit.encoder_cepstra, fit.decoder_context) == (3, 13, 2)
    assert load_recipe("tiny").unit_codec == fit  # the defaults are the demo's values
    assert fit.units_for(1024 * 4) == 1024
    assert fit.units_for(1024 * 4 - 1) == 512  # fewer than 4 frames a unit: halve
    assert fit.units_for(0) == 2


def test_recipes_are_frozen():
    recipe = load_recipe("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.training.lr = 1.0  # type: ignore[misc]

