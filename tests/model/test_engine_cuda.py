"""The engine on a CUDA GPU: graph-replayed decode steps give the tokens eager steps give.

The CPU tests (test_llama_forward.py) show that the padding rows and columns of a decode bucket
leave the real rows alone, which is what graph replay relies on; these tests replay the graphs
themselves: greedy tokens equal eager decoding and transformers' `generate` on the same GPU,
with requests batched into one bucket and a request joining while another decodes, and seeded
sampled requests (temperature, top-p, repetition penalty, a segment's allowed ids: the draw runs
inside a graph) draw what eager steps draw. They need a
CUDA device and are skipped without one (CI has none; docs/performance.md records the device run).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_llama import make_engine, prompt, run, save_model, tiny_config
from transformers import LlamaForCausalLM

from model.engine import Engine, Request
from model.sampling import SamplingParams, SegmentRule

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SHAPES = [(1, 24), (9, 30), (40, 12)]  # (prompt tokens, new tokens): three decode-batch rows


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_model(tmp_path_factory.mktemp("tiny-llama"), tiny_config())


def engine(model_dir: Path, graphs: bool) -> Engine:
    return make_engine(model_dir, device="cuda", cuda_graphs=graphs)


def requests() -> list[Request]:
    return [Request(prompt(n, seed=n), max_new_tokens=m) for n, m in SHAPES]


def test_graphed_decoding_equals_eager_decoding_and_transformers(model_dir):
    graphed = engine(model_dir, graphs=True)
    assert graphed.runner.use_graphs
    tokens = run(graphed, *requests())
    assert tokens == run(engine(model_dir, graphs=False), *requests())
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
    assert handle.tokens == run(alone, first)[0]
    assert late_handle.tokens == run(alone, late)[0]


def test_graphed_sampling_draws_what_eager_sampling_draws(model_dir):
    speech = SegmentRule(start_id=5, end_id=6, allowed_ids=frozenset(range(100, 200)),
                         sampling=SamplingParams(temperature=0.7, top_p=0.8,
                                                 repetition_penalty=1.05))
    text = SamplingParams(temperature=1.0, top_k=40, top_p=0.95, repetition_penalty=1.1)

    def sampled() -> list[Request]:
        return [Request((*prompt(n, seed=n), 5) if n == 9 else prompt(n, seed=n),
                        max_new_tokens=m, sampling=text, segments=(speech,), seed=n)
                for n, m in SHAPES]

    graphed = run(engine(model_dir, graphs=True), *sampled())
    assert graphed == run(engine(model_dir, graphs=False), *sampled())
    in_speech = graphed[1][: graphed[1].index(6)] if 6 in graphed[1] else graphed[1]
    assert all(100 <= t < 200 for t in in_speech)  # the prompt ended with <sosp> (5)
