"""The engine's sampler: parameter checks, transformers-compatible penalties, filters that hold for
any parameters (property tests), counter-based noise that follows the softmax and is batch-free.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

from model.sampling import (
    GREEDY,
    RowParams,
    SamplingParams,
    SegmentRule,
    SlotSampler,
    Stages,
    gumbel_noise,
    sample,
    seed_key,
)


def rows(n: int, params: SamplingParams, key: int = 7, counter: int = 0) -> RowParams:
    """The same parameters for n rows, counters counter .. counter + n - 1."""
    return RowParams(
        temperature=torch.full((n,), params.temperature),
        top_k=torch.full((n,), params.top_k),
        top_p=torch.full((n,), params.top_p),
        repetition_penalty=torch.full((n,), params.repetition_penalty),
        keys=torch.full((n,), key),
        counters=torch.arange(counter, counter + n),
    )


def test_params_validate_themselves():
    for bad in (
        dict(temperature=-0.1),
        dict(temperature=float("nan")),
        dict(top_k=-1),
        dict(top_p=0.0),
        dict(top_p=1.5),
        dict(repetition_penalty=0.0),
    ):
        with pytest.raises(ValueError):
            SamplingParams(**bad)
    with pytest.raises(ValueError, match="unknown"):
        SamplingParams.from_dict({"temperature": 0.7, "seed": 3})
    assert SamplingParams.from_dict({"temperature": 0.7, "top_p": 0.8}).top_p == 0.8
    with pytest.raises(ValueError):
        SegmentRule(start_id=3, end_id=3, allowed_ids=frozenset({1}), sampling=SamplingParams())
    with pytest.raises(ValueError):
        SegmentRule(start_id=3, end_id=4, allowed_ids=frozenset(), sampling=SamplingParams())
    with pytest.raises(ValueError):
        seed_key(-1)


def test_repetition_penalty_follows_transformers():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 40, generator=generator) * 3  # (N, V)
    history = torch.randint(0, 40, (6, 12), generator=generator)  # (N, T)
    seen = torch.zeros(6, 40, dtype=torch.bool).scatter_(1, history, True)
    expected = RepetitionPenaltyLogitsProcessor(1.4)(history, logits.clone()).argmax(-1)
    params = rows(6, SamplingParams(temperature=0.0, repetition_penalty=1.4))
    assert torch.equal(sample(logits, params, seen=seen, allowed=None, any_random=False), expected)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    vocab=st.integers(2, 64),
    temperature=st.floats(0.0, 3.0),
    top_k=st.integers(0, 70),
    top_p=st.floats(0.01, 1.0),
    penalty=st.floats(0.5, 2.0),
)
def test_filters_hold_for_any_parameters(seed, vocab, temperature, top_k, top_p, penalty):
    """Whatever the parameters: only allowed ids, only the top k, only the top-p nucleus."""
    generator = torch.Generator().manual_seed(seed)
    n = 8
    logits = torch.randn(n, vocab, generator=generator) * 4  # (N, V)
    seen = torch.rand(n, vocab, generator=generator) < 0.3
    allowed = torch.rand(n, vocab, generator=generator) < 0.5
    allowed[torch.arange(n), torch.randint(0, vocab, (n,), generator=generator)] = True
    params = SamplingParams(temperature, top_k, top_p, penalty)
    tokens = sample(logits, rows(n, params, key=seed), seen=seen, allowed=allowed, any_random=True)

    x = torch.where(seen, torch.where(logits > 0, logits / penalty, logits * penalty), logits)
    x = x.masked_fill(~allowed, float("-inf")).double()
    for row, token in enumerate(tokens.tolist()):
        assert allowed[row, token]
        order = x[row].argsort(descending=True).tolist()
        rank = order.index(token)
        if temperature == 0:
            assert rank == 0
            continue
        if top_k:
            assert rank < top_k
        kept = order[: top_k or vocab]
        probs = torch.softmax(x[row, kept] / temperature, dim=0)
        assert probs[:rank].sum() < top_p + 1e-4  # the token lies inside the nucleus


def test_draws_follow_the_softmax():
    logits = torch.tensor([0.0, 1.0, 2.0, -1.0])  # (V,)
    n = 8000
    for temperature in (1.0, 0.5):
        params = rows(n, SamplingParams(temperature=temperature))
        tokens = sample(logits.expand(n, -1), params, seen=None, allowed=None, any_random=True)
        frequencies = torch.bincount(tokens, minlength=4) / n
        expected = torch.softmax(logits / temperature, dim=0)
        assert torch.allclose(frequencies, expected, atol=0.025)


def test_top_k_and_top_p_truncate_the_distribution():
    logits = torch.tensor([3.0, 2.0, 1.0, 0.0, -1.0]).expand(2000, -1)  # (N, V)
    top2 = sample(logits, rows(2000, SamplingParams(top_k=2)), seen=None, allowed=None,
                  any_random=True)
    assert set(top2.tolist()) == {0, 1}
    # softmax ≈ [.64, .24, .09, .03, .01]: 0.7 needs the two most likely tokens
    nucleus = sample(logits, rows(2000, SamplingParams(top_p=0.7)), seen=None, allowed=None,
                     any_random=True)
    assert set(nucleus.tolist()) == {0, 1}


def test_noise_depends_only_on_key_counter_and_token():
    keys = torch.tensor([5, 9, 5])
    counters = torch.tensor([0, 3, 1])
    ids = torch.arange(30).expand(3, -1)  # (N, V)
    batch = gumbel_noise(keys, counters, ids)
    alone = gumbel_noise(keys[1:2], counters[1:2], ids[1:2].flip(-1)).flip(-1)
    assert torch.equal(batch[1:2], alone)
    assert not torch.equal(batch[0], batch[2])  # the counter changes the draw
    assert torch.isfinite(batch).all()


def test_slot_sampler_draws_fresh_noise_each_call():
    sampler = SlotSampler(max_slots=2, vocab_size=3, device=torch.device("cpu"))
    sampler.reset(1, [0], seed=42)
    sampler.set_params(1, SamplingParams(temperature=1.0), 0)
    logits = torch.tensor([[0.0, 1.0, 2.0]])
    draws = torch.cat([sampler.sample(logits, [1]) for _ in range(3000)])
    frequencies = torch.bincount(draws, minlength=3) / len(draws)
    assert torch.allclose(frequencies, torch.softmax(logits[0], 0), atol=0.03)


def test_slot_sampler_constrains_to_segment_ids():
    sampler = SlotSampler(max_slots=2, vocab_size=10, device=torch.device("cpu"))
    mask = sampler.mask_index(frozenset({2, 7}))
    assert sampler.mask_index(frozenset({7, 2})) == mask  # built once per id set
    for slot in (0, 1):
        sampler.reset(slot, [1, 2, 3], seed=slot)
    sampler.set_params(0, SamplingParams(temperature=2.0), mask)
    sampler.set_params(1, SamplingParams(temperature=0.0), 0)
    logits = torch.arange(10.0).expand(2, -1)  # (N, V): id 9 is the favourite
    for _ in range(50):
        first, second = sampler.sample(logits, [0, 1]).tolist()
        assert first in {2, 7}
        assert second == 9
    with pytest.raises(ValueError):
        sampler.mask_index(frozenset({10}))


def test_sample_rows_draws_what_sample_draws_and_leaves_idle_rows_alone():
    """The decode step's draw over slots [0, B) (the one a CUDA graph captures, every stage on)
    gives the active rows the tokens the per-slot sampler gives them; idle rows neither count a
    draw nor mark a token seen."""
    vocab, params = 50, SamplingParams(temperature=0.9, top_p=0.9, repetition_penalty=1.2)
    samplers = [SlotSampler(max_slots=3, vocab_size=vocab, device=torch.device("cpu"))
                for _ in range(2)]
    for sampler in samplers:
        mask = sampler.mask_index(frozenset(range(0, vocab, 2)))
        for slot in range(3):
            sampler.reset(slot, [1, 4, 9], seed=slot)
            sampler.set_params(slot, params if slot != 1 else GREEDY, mask if slot == 2 else 0)
    batched, reference = samplers
    idle_before = [t[1].clone() for t in batched.state()]
    active = torch.tensor([True, False, True])
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        logits = torch.randn(3, vocab, generator=generator)
        rows = batched.sample_rows(logits, active, Stages())
        want = reference.sample(logits[[0, 2]], [0, 2])
        assert rows[[0, 2]].tolist() == want.tolist()
        assert rows[2] % 2 == 0  # slot 2's segment mask holds
    for before, after in zip(idle_before, batched.state(), strict=True):
        assert torch.equal(after[1], before)  # the idle slot's counter and seen ids
    assert torch.equal(batched.state()[1], reference.state()[1])
