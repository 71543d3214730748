"""Bundles: a tiny random bundle loads and answers through the parser; a LoRA adapter is merged
into exactly base + B·A·scale; a bundle can borrow another's LM; every wrong bundle fails at load
with a message naming the file and the field."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from tiny_bundle import TINY_CONTEXT_TOKENS, build_tiny_bundle

from model.bundle import (
    BUNDLE_FILE,
    Bundle,
    BundleConfig,
    BundleError,
    CodecRef,
    GenerationConfig,
    read_config,
    write_bundle,
)
from model.chain import Chain
from model.parser import EndOfTurn
from training.word_tokenizer import build_word_tokenizer

N_UNITS = 64


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_bundle(tmp_path_factory.mktemp("bundles") / "tiny", chain="A-T-T-A",
                             n_units=N_UNITS, words=["what is two plus three"])


@pytest.fixture
def copy(tiny, tmp_path) -> Path:
    return Path(shutil.copytree(tiny, tmp_path / "copy"))


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


# ---- loading -----------------------------------------------------------------------------------


def test_tiny_bundle_loads_with_everything_in_place(tiny):
    bundle = Bundle.load(tiny)
    assert bundle.chain is Chain.ATTA
    assert bundle.codec.vocab_size == bundle.vocab.n_units == N_UNITS
    assert bundle.model.get_input_embeddings().num_embeddings >= len(bundle.tokenizer)
    assert bundle.model.config.num_key_value_heads < bundle.model.config.num_attention_heads
    assert bundle.context_tokens == TINY_CONTEXT_TOKENS
    assert bundle.prompt_budget == TINY_CONTEXT_TOKENS - bundle.config.generation.max_new_tokens
    assert not bundle.model.training
    assert bundle.vocab.encode_text("what is two plus three") == [
        bundle.tokenizer.convert_tokens_to_ids(w) for w in "what is two plus three".split()]


def test_tiny_bundle_is_reproducible_from_its_seed(tiny, tmp_path):
    again = build_tiny_bundle(tmp_path / "again", chain="A-T-T-A", n_units=N_UNITS,
                              words=["what is two plus three"])
    for name in ("llm/model.safetensors", "llm/tokenizer.json", "bundle.json"):
        assert (again / name).read_bytes() == (tiny / name).read_bytes(), name


def test_random_model_output_goes_through_the_parser(tiny):
    bundle = Bundle.load(tiny)
    units = bundle.codec.encode(0.1 * torch.randn(16_000).numpy())  # 1 s of noise → units
    prompt = bundle.template.prompt(bundle.chain, units, max_tokens=bundle.prompt_budget)
    parser = bundle.parser()
    with torch.no_grad():
        out = bundle.model.generate(torch.tensor([prompt.ids]), max_new_tokens=40, do_sample=False)
    events = [e for t in out[0, len(prompt.ids):].tolist() for e in parser.feed(t)]
    events += parser.close()
    assert isinstance(events[-1], EndOfTurn) and parser.done


def test_config_round_trips_through_json(tiny):
    config = read_config(tiny)
    assert BundleConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.to_dict()["format"] == "icot-bundle/1"
    leveled = dataclasses.replace(config, input_level_dbfs=[-23, -17.5])
    assert leveled.input_level_dbfs == (-23.0, -17.5)
    assert BundleConfig.from_dict(json.loads(json.dumps(leveled.to_dict()))) == leveled


def test_adapter_is_merged_into_the_weights_and_llm_can_live_elsewhere(tiny, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = Bundle.load(tiny).model
    base_q = base.model.layers[0].self_attn.q_proj.weight.detach().clone()
    base_k = base.model.layers[0].self_attn.k_proj.weight.detach().clone()
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                      init_lora_weights=False)  # random A and B: a non-zero delta
    torch.manual_seed(1)
    peft_model = get_peft_model(base, lora)
    q = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    delta = (q.lora_B["default"].weight @ q.lora_A["default"].weight) * (8 / 4)  # (out, in)
    assert delta.abs().max() > 1e-3

    shutil.copytree(tiny, tmp_path / "other")
    config = BundleConfig(chain=Chain.ATA, llm="../other/llm", adapter="adapter",
                          codec=CodecRef("speechtokenizer", "../other/codec"),
                          generation=read_config(tiny).generation)
    icot = write_bundle(tmp_path / "icot", config, adapter=peft_model)
    assert sorted(p.name for p in icot.iterdir()) == ["adapter", BUNDLE_FILE]

    merged = Bundle.load(icot)
    assert merged.chain is Chain.ATA
    layer = merged.model.model.layers[0].self_attn
    torch.testing.assert_close(layer.q_proj.weight, base_q + delta, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.k_proj.weight, base_k)  # not targeted: unchanged
    assert not any("lora" in name for name, _ in merged.model.named_parameters())


def test_write_bundle_refuses_incomplete_bundles(tmp_path):
    config = BundleConfig(chain=Chain.ATA, codec=CodecRef("speechtokenizer", "codec"))
    with pytest.raises(ValueError, match="no model"):
        write_bundle(tmp_path / "empty", config)
    assert not (tmp_path / "empty" / BUNDLE_FILE).exists()


def test_dtype_is_honoured(tiny):
    assert Bundle.load(tiny, dtype="bfloat16").model.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        Bundle.load(tiny, dtype="float7")


# ---- every wrong bundle names file and field ------------------------------------------------


def set_field(*path, value):
    def change(data):
        for key in path[:-1]:
            data = data[key]
        data[path[-1]] = value
    return lambda d: edit_json(d / BUNDLE_FILE, change)


def remove(relative):
    def mutate(d):
        target = d / relative
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return mutate


def write(relative, text):
    return lambda d: (d / relative).write_text(text)


def fewer_speech_tokens(d):
    build_word_tokenizer(["what is two plus three"], N_UNITS - 1).save_pretrained(d / "llm")


def smaller_embeddings(d):
    edit_json(d / "llm" / "config.json", lambda c: c.update(vocab_size=8))


WRONG_BUNDLES = {
    "no bundle.json": (remove(BUNDLE_FILE), ["bundle.json", "missing"]),
    "bad JSON": (write(BUNDLE_FILE, '{"format": "icot-bundle/1",'), ["bundle.json", "JSON"]),
    "not an object": (write(BUNDLE_FILE, "[1, 2]"), ["bundle.json", "JSON object"]),
    "unknown format": (set_field("format", value="icot-bundle/2"),
                       ["bundle.json", "field 'format'", "icot-bundle/2"]),
    "unknown chain": (set_field("chain", value="ATA"), ["bundle.json", "field 'chain'", "A-T-A"]),
    "chain not a string": (set_field("chain", value=["A-T-A"]), ["bundle.json", "field 'chain'"]),
    "codec kind not a string": (set_field("codec", "kind", value=["units"]),
                                ["bundle.json", "field 'codec.kind'"]),
    "unknown template": (set_field("template", value="chatml"), ["bundle.json", "'template'"]),
    "misspelt field": (set_field("adaptor", value=None), ["bundle.json", "field 'adaptor'"]),
    "missing codec": (lambda d: edit_json(d / BUNDLE_FILE, lambda c: c.pop("codec")),
                      ["bundle.json", "field 'codec'", "missing"]),
    "unknown codec kind": (set_field("codec", "kind", value="mp3"),
                           ["bundle.json", "field 'codec.kind'", "speechtokenizer"]),
    "llm not a string": (set_field("llm", value=3), ["bundle.json", "field 'llm'"]),
    "bad top_p": (set_field("generation", "text", "top_p", value=2.0),
                  ["bundle.json", "field 'generation.text'", "top_p"]),
    "top_p not a number": (set_field("generation", "speech", "top_p", value="high"),
                           ["bundle.json", "field 'generation.speech.top_p'"]),
    "unknown sampling field": (set_field("generation", "text", "min_p", value=0.1),
                               ["bundle.json", "field 'generation.text.min_p'", "unknown"]),
    "zero max_new_tokens": (set_field("generation", "max_new_tokens", value=0),
                            ["bundle.json", "field 'generation.max_new_tokens'"]),
    "bad seed": (set_field("generation", "seed", value=-1),
                 ["bundle.json", "field 'generation.seed'"]),
    "max_new_tokens fills the context": (
        set_field("generation", "max_new_tokens", value=TINY_CONTEXT_TOKENS),
        ["bundle.json", "field 'generation.max_new_tokens'", "config.json",
         "max_position_embeddings"]),
    "input level not a pair": (set_field("input_level_dbfs", value=[-20.0]),
                               ["bundle.json", "field 'input_level_dbfs'", "[low, high]"]),
    "input level reversed": (set_field("input_level_dbfs", value=[-17.0, -23.0]),
                             ["bundle.json", "field 'input_level_dbfs'", "low < high"]),
    "input level above full scale": (set_field("input_level_dbfs", value=[-20.0, 3.0]),
                                     ["bundle.json", "field 'input_level_dbfs'"]),
    "missing llm dir": (remove("llm"), ["bundle.json", "field 'llm'", "no directory"]),
    "llm without config": (remove("llm/config.json"), ["llm/config.json", "field 'llm'"]),
    "llm without weights": (remove("llm/model.safetensors"), ["llm", "safetensors", "'llm'"]),
    "missing codec dir": (remove("codec"), ["bundle.json", "field 'codec.path'"]),
    "broken codec": (write("codec/config.json", "{"), ["codec", "could not load",
                                                       "'codec.kind'/'codec.path'"]),
    "missing adapter dir": (set_field("adapter", value="adapter"),
                            ["bundle.json", "field 'adapter'", "no directory"]),
    "adapter without config": (lambda d: (d / "adapter").mkdir() or set_field(
        "adapter", value="adapter")(d), ["adapter/adapter_config.json", "field 'adapter'"]),
    "tokenizer lacks speech tokens": (fewer_speech_tokens,
                                      ["llm/tokenizer.json", f"<🗣️{N_UNITS - 1}>", "codec"]),
    "embeddings smaller than tokenizer": (smaller_embeddings,
                                          ["llm/config.json", "field 'vocab_size'", "tokenizer"]),
}


@pytest.mark.parametrize("case", list(WRONG_BUNDLES))
def test_wrong_bundle_fails_at_load_naming_file_and_field(copy, case):
    mutate, expected = WRONG_BUNDLES[case]
    mutate(copy)
    with pytest.raises(BundleError) as error:
        Bundle.load(copy)
    for part in expected:
        assert part in str(error.value), f"{case}: {part!r} not in {error.value}"


def test_config_validates_itself():
    with pytest.raises(ValueError, match="codec.kind"):
        CodecRef("wav", "codec")
    with pytest.raises(ValueError, match="max_new_tokens"):
        GenerationConfig(max_new_tokens=True)
    assert BundleConfig(chain="A-A", codec=CodecRef("units", "c")).chain is Chain.AA
