"""LoRA over a tiny random Llama: only the adapter trains, and the saved adapter reproduces it."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

from training.config import LLAMA_LORA_TARGETS, LoraSettings
from training.stages.lora import add_lora, load_adapter, save_adapter

LAYERS = 2


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=64)
    return LlamaForCausalLM(config).eval()


def fresh_base(state: dict) -> LlamaForCausalLM:
    model = tiny_llama()
    model.load_state_dict(state)
    return model


def test_saved_adapter_merged_on_the_base_reproduces_the_trained_logits(tmp_path):
    base = tiny_llama()
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    tokens = torch.randint(0, 96, (4, 24), generator=torch.Generator().manual_seed(1))  # (B, T)
    with torch.no_grad():
        base_logits = base(input_ids=tokens).logits  # (B, T, V)

    model = add_lora(base, LoraSettings(r=4, alpha=8.0))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    # A and B for each of the seven projections in every layer, nothing else.
    assert len(trainable) == 2 * len(LLAMA_LORA_TARGETS) * LAYERS
    assert all("lora_A" in n or "lora_B" in n for n in trainable)
    with torch.no_grad():  # B starts at zero: the wrapped model is still the base model
        assert torch.equal(model(input_ids=tokens).logits, base_logits)

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(5):
        loss = model(input_ids=tokens, labels=tokens).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        trained_logits = model(input_ids=tokens).logits
        with model.disable_adapter():  # the frozen teacher, from the same weights
            assert torch.allclose(model(input_ids=tokens).logits, base_logits, atol=1e-6)
    assert (trained_logits - base_logits).abs().max() > 1e-2

    directory = save_adapter(model, tmp_path / "adapter")
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {
        p.name for p in directory.iterdir()
    }
    saved = load_file(directory / "adapter_model.safetensors")
    assert saved and all("lora_" in name for name in saved)

    merged = load_adapter(fresh_base(base_state), directory)
    assert type(merged) is LlamaForCausalLM
    assert not any("lora" in name for name, _ in merged.named_parameters())
    with torch.no_grad():
        merged_logits = merged(input_ids=tokens).logits
    torch.testing.assert_close(merged_logits, trained_logits, atol=1e-5, rtol=1e-4)


def test_unmerged_load_can_resume_training(tmp_path):
    base = tiny_llama()
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    save_adapter(add_lora(base, LoraSettings(r=2, alpha=2.0, target_modules=("q_proj",))),
                 tmp_path / "a")
    resumed = load_adapter(fresh_base(base_state), tmp_path / "a", merge=False, trainable=True)
    trainable = [n for n, p in resumed.named_parameters() if p.requires_grad]
    assert len(trainable) == 2 * LAYERS and all("q_proj.lora_" in n for n in trainable)


def test_unknown_target_modules_are_an_error():
    with pytest.raises(ValueError, match="not found"):
        add_lora(tiny_llama(), LoraSettings(r=2, target_modules=("no_such_proj",)))
