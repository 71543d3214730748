"""The engine's Llama forward and decode buckets: what CUDA-graph replay relies on, checked on CPU.

A graphed decode step runs a fixed batch bucket (rows beyond the decoding ones sit at the scratch
column) over a fixed length bucket (columns beyond each row's position are masked). These tests
show that padding rows and padding columns change neither the real rows' logits nor any cache.
"""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from model.decode_step import DecodeRunner, batch_buckets, length_buckets
from model.llama_forward import LlamaForward
from model.sampling import SlotSampler

MAX_SEQ_LEN = 96


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, initializer_range=0.3,
    )
    return LlamaForCausalLM(config).eval()


def prefilled(model: LlamaForCausalLM, lengths: list[int]) -> tuple[LlamaForward, list[list[int]]]:
    """A forward with slot i prefilled by a (seeded) random prompt of lengths[i] tokens."""
    forward = LlamaForward(model, max_slots=4, max_seq_len=MAX_SEQ_LEN)
    generator = torch.Generator().manual_seed(1)
    prompts = [torch.randint(0, 128, (n,), generator=generator).tolist() for n in lengths]
    for slot, ids in enumerate(prompts):
        forward.prefill(slot, torch.tensor(ids), 0)
    return forward, prompts


def test_prefill_and_decode_match_transformers_logits(model):
    forward, (ids,) = prefilled(model, [20])
    with torch.no_grad():
        expected = model(torch.tensor([[*ids, 5]])).logits[0, -1]
    logits = forward.decode(torch.tensor([5]), torch.tensor([20]), 21)
    assert torch.allclose(logits[0], expected, atol=1e-4)


def test_padding_rows_and_columns_leave_real_rows_unchanged(model):
    lengths = [7, 30, 15]
    exact, _ = prefilled(model, lengths)
    padded, _ = prefilled(model, lengths)
    tokens = torch.tensor([3, 9, 11, 0])
    positions = torch.tensor([*lengths, padded.cache.scratch_position])  # slot 3: padding
    want = exact.decode(tokens[:3], positions[:3], max(lengths) + 1)  # (3, V)
    snapshot = [k[3, :, :MAX_SEQ_LEN].clone() for k in padded.cache.keys]
    got = padded.decode(tokens, positions, MAX_SEQ_LEN)  # (4, V)
    assert torch.allclose(got[:3], want, atol=1e-5)
    assert torch.isfinite(got).all()
    for layer, before in enumerate(snapshot):  # the padding row wrote only its scratch column
        assert torch.equal(padded.cache.keys[layer][3, :, :MAX_SEQ_LEN], before)
    for layer in range(len(exact.cache.keys)):  # real rows wrote the same keys either way
        assert torch.allclose(padded.cache.keys[layer][:3], exact.cache.keys[layer][:3], atol=1e-5)


def test_chunked_prefill_fills_the_same_cache(model):
    whole = LlamaForward(model, max_slots=1, max_seq_len=MAX_SEQ_LEN)
    chunked = LlamaForward(model, max_slots=1, max_seq_len=MAX_SEQ_LEN)
    ids = torch.randint(0, 128, (50,))
    last = whole.prefill(0, ids, 0)
    for start in range(0, 50, 16):
        chunk_last = chunked.prefill(0, ids[start : start + 16], start)
    assert torch.allclose(chunk_last, last, atol=1e-5)
    for a, b in zip(whole.cache.values, chunked.cache.values, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_bucket_sizes():
    assert batch_buckets(64) == (1, 2, 4, 8, 16, 32, 64)
    assert batch_buckets(6) == (1, 2, 4, 6)
    assert batch_buckets(1) == (1,)
    assert length_buckets(1024, 256) == (256, 512, 768, 1024)
    assert length_buckets(300, 256) == (256, 300)


def test_eager_runner_uses_exact_sizes_and_graphs_only_on_cuda(model):
    forward = LlamaForward(model, max_slots=4, max_seq_len=MAX_SEQ_LEN)
    runner = DecodeRunner(forward, SlotSampler(4, 128, forward.device), batch_buckets(4),
                          length_buckets(MAX_SEQ_LEN, 32), True)
    assert not runner.use_graphs  # CPU: the same step runs eagerly
    assert runner.bucket(3, 33) == (3, 33)
    assert runner.capture_all() == 0


def test_fused_projections_are_views_and_leave_the_model_unchanged(model):
    ids = torch.randint(0, 128, (1, 12))
    with torch.no_grad():
        before = model(ids).logits
    q_weight = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    forward = LlamaForward(model, max_slots=1, max_seq_len=MAX_SEQ_LEN)
    fused = forward.fused[0]
    attn, mlp = model.model.layers[0].self_attn, model.model.layers[0].mlp
    for module in (attn.q_proj, attn.k_proj, attn.v_proj):  # no weight is held twice
        assert module.weight.untyped_storage().data_ptr() == \
            fused.qkv_weight.untyped_storage().data_ptr()
    assert mlp.up_proj.weight.untyped_storage().data_ptr() == \
        fused.gate_up_weight.untyped_storage().data_ptr()
    assert torch.equal(fused.qkv_weight[: q_weight.shape[0]], q_weight)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, before)
