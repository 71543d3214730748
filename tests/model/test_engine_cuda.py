"""The engine on a CUDA GPU: graph-replayed decode steps give the tokens eager steps give.

The CPU tests (test_llama_forward.py) show that the padding rows and columns of a decode bucket
leave the real rows alone, which is what graph replay relies on; these tests replay the graphs
themselves: greedy tokens equal eager decoding and transformers' `generate` on the same GPU,
with requests batched into one bucket and a request joining while another decodes. They need a
CUDA device and are skipped without one (CI has none; docs/performance.md records the device run).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from model.engine import Engine, EngineConfig, Request

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

VOCAB = 300
SHAPES = [(1, 24), (9, 30), (40, 12)]  # (prompt tokens, new tokens): three decode-batch rows


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A 2-layer GQA Llama with peaked logits (large init range), so argmax is not a near-tie."""
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, initializer_range=0.3, bos_token_id=None,
                         eos_token_id=None, pad_token_id=0)
    directory = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def engine(model_dir: Path, graphs: bool) -> Engine:
    config = EngineConfig(max_slots=4, max_seq_len=128, prefill_chunk_tokens=16,
                          attention_block_tokens=32, cuda_graphs=graphs)
    return Engine.from_pretrained(model_dir, config, device="cuda")


def prompt(length: int, seed: int) -> tuple[int, ...]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randint(1, VOCAB, (length,), generator=generator).tolist())


def requests() -> list[Request]:
    return [Request(prompt(n, seed=n), max_new_tokens=m) for n, m in SHAPES]


def run_all(target: Engine, batch: list[Request]) -> list[list[int]]:
    handles = [target.submit(request) for request in batch]
    target.run_until_idle()
    return [handle.tokens for handle in handles]


def test_graphed_decoding_equals_eager_decoding_and_transformers(model_dir):
    graphed = engine(model_dir, graphs=True)
    assert graphed.runner.use_graphs
    tokens = run_all(graphed, requests())
    assert tokens == run_all(engine(model_dir, graphs=False), requests())
    reference = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to("cuda")
    for request, got in zip(requests(), tokens, strict=True):
        ids = torch.tensor([request.prompt_ids], device="cuda")
        out = reference.eval().generate(ids, do_sample=False, max_new_tokens=request.max_new_tokens,
                                        pad_token_id=0)
        assert got == out[0, ids.shape[1]:].tolist()


def test_a_late_joiner_leaves_a_graphed_request_unchanged(model_dir):
    first, late = requests()[1], requests()[2]
    target = engine(model_dir, graphs=True)
    handle = target.submit(first)
    for _ in range(6):
        target.step()
    late_handle = target.submit(late)  # decodes in the 2-row bucket next to `first`
    target.run_until_idle()
    alone = engine(model_dir, graphs=True)
    assert handle.tokens == run_all(alone, [first])[0]
    assert late_handle.tokens == run_all(alone, [late])[0]
