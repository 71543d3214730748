"""The generation engine on tiny random Llamas built in the test (CPU, float32, no download).

Golden: greedy engine output equals transformers' `generate` token for token. Properties: batching,
chunked prefill and late joining do not change a request's tokens; seeds reproduce; cancellation
frees the slot within one step; limits, stop ids, busy errors and segment rules hold.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, inject_adapter_in_model
from tiny_llama import VOCAB, make_engine, prompt, run, save_model, tiny_config
from transformers import GPT2Config, GPT2LMHeadModel, LlamaForCausalLM

from model.engine import (
    Engine,
    EngineBusy,
    EngineClosed,
    EngineConfig,
    Request,
)
from model.llama_forward import UnsupportedModel
from model.sampling import GREEDY, SamplingParams, SegmentRule

SAMPLED = SamplingParams(temperature=1.0, top_p=0.95, top_k=50)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_model(tmp_path_factory.mktemp("tiny-llama"), tiny_config())


@pytest.fixture(scope="module")
def reference(model_dir) -> LlamaForCausalLM:
    return LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()


def hf_greedy(model: LlamaForCausalLM, ids: tuple[int, ...], n: int, **kwargs) -> list[int]:
    out = model.generate(
        torch.tensor([ids]), do_sample=False, max_new_tokens=n, pad_token_id=0, **kwargs
    )
    return out[0, len(ids) :].tolist()


# ---- golden: the engine computes what transformers computes --------------------------------


@pytest.mark.parametrize("length", [1, 9, 40])
def test_greedy_matches_transformers_generate(model_dir, reference, length):
    ids = prompt(length, seed=length)
    (tokens,) = run(make_engine(model_dir), Request(ids, max_new_tokens=24))
    assert tokens == hf_greedy(reference, ids, 24)


def test_repetition_penalty_matches_transformers(model_dir, reference):
    ids = prompt(12, seed=3)
    sampling = SamplingParams(temperature=0.0, repetition_penalty=1.3)
    (tokens,) = run(make_engine(model_dir), Request(ids, max_new_tokens=24, sampling=sampling))
    assert tokens == hf_greedy(reference, ids, 24, repetition_penalty=1.3)


@pytest.mark.parametrize(
    "overrides",
    [
        # tied embeddings, linear rope scaling, explicit head_dim, attention biases, MHA
        dict(
            tie_word_embeddings=True,
            rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0},
            head_dim=32,
            attention_bias=True,
            num_key_value_heads=4,
        ),
        # llama3 rope scaling, one kv head (multi-query), gelu MLP with bias
        dict(
            rope_parameters={
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
                "rope_theta": 10000.0,
            },
            num_key_value_heads=1,
            hidden_act="gelu",
            mlp_bias=True,
        ),
        # yarn rope scaling (its attention_scaling multiplies cos and sin)
        dict(
            rope_parameters={
                "rope_type": "yarn",
                "factor": 4.0,
                "original_max_position_embeddings": 64,
                "rope_theta": 10000.0,
            },
        ),
    ],
    ids=["tied-linear-rope-bias", "llama3-rope-mqa", "yarn-rope"],
)
def test_llama_variants_match_transformers(tmp_path, overrides):
    directory = save_model(tmp_path, tiny_config(**overrides), seed=1)
    reference = LlamaForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    ids = prompt(30, seed=7)
    (tokens,) = run(make_engine(directory), Request(ids, max_new_tokens=20))
    assert tokens == hf_greedy(reference, ids, 20)


def test_unsupported_models_fail_clearly(tmp_path):
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50))
    with pytest.raises(UnsupportedModel, match="LlamaForCausalLM"):
        Engine(gpt2, EngineConfig(max_slots=1, max_seq_len=32))
    rope = {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 1e4}
    dynamic = tiny_config(rope_parameters=rope)
    with pytest.raises(UnsupportedModel, match="dynamic"):
        Engine(LlamaForCausalLM(dynamic), EngineConfig(max_seq_len=32))
    adapted = inject_adapter_in_model(LoraConfig(r=2, target_modules=["q_proj"]),
                                      LlamaForCausalLM(tiny_config()))
    with pytest.raises(UnsupportedModel, match="merge adapters"):
        Engine(adapted, EngineConfig(max_seq_len=32))


# ---- batching and scheduling do not change a request's tokens ------------------------------


def test_batched_request_equals_alone(model_dir):
    shapes = [(5, 30), (33, 12), (17, 25)]  # (prompt tokens, new tokens)
    requests = [Request(prompt(n, seed=n), max_new_tokens=m) for n, m in shapes]
    alone = [run(make_engine(model_dir), request)[0] for request in requests]
    assert run(make_engine(model_dir), *requests) == alone


def test_late_joiners_leave_running_requests_unchanged(model_dir):
    first = Request(prompt(8, seed=1), max_new_tokens=40)
    late = Request(prompt(45, seed=2), max_new_tokens=10)
    engine = make_engine(model_dir, prefill_chunk_tokens=8)
    handle = engine.submit(first)
    for _ in range(6):
        engine.step()
    late_handle = engine.submit(late)
    # While the 45-token prompt is prefilled 8 tokens per step, the running request still gets
    # one token every step: a long prefill does not stall it.
    before = len(handle.tokens)
    for step in range(1, 6):
        engine.step()
        assert len(handle.tokens) == before + step
    engine.run_until_idle()
    assert handle.tokens == run(make_engine(model_dir), first)[0]
    assert late_handle.tokens == run(make_engine(model_dir), late)[0]


def test_chunked_prefill_equals_unchunked(model_dir):
    request = Request(prompt(70, seed=4), max_new_tokens=16)
    chunked = run(make_engine(model_dir, prefill_chunk_tokens=5), request)
    whole = run(make_engine(model_dir, prefill_chunk_tokens=128), request)
    assert chunked == whole


def test_freed_slot_is_reused_correctly(model_dir):
    """A slot that served a long request serves a short one exactly as a fresh engine would."""
    engine = make_engine(model_dir, max_slots=1)
    run(engine, Request(prompt(60, seed=5), max_new_tokens=30))
    short = Request(prompt(4, seed=6), max_new_tokens=20)
    assert run(engine, short) == run(make_engine(model_dir, max_slots=1), short)


# ---- prefix reuse: a freed slot's cache serves the next prompt that starts alike ----------


def test_next_turn_prefills_only_what_the_cache_lacks(model_dir):
    """A follow-up prompt = the first prompt + its reply + new tokens (a conversation's next
    turn) starts from the cache and generates exactly what a fresh engine generates."""
    engine = make_engine(model_dir)
    first = Request(prompt(30, seed=11), max_new_tokens=12)
    (reply,) = run(engine, first)
    follow_up = Request((*first.prompt_ids, *reply, *prompt(9, seed=12)), max_new_tokens=15)
    handle = engine.submit(follow_up)
    engine.run_until_idle()
    # the last generated token was never fed back, so its keys and values are not cached
    assert handle.cached_tokens == 30 + len(reply) - 1
    assert handle.tokens == run(make_engine(model_dir), follow_up)[0]


def test_the_slot_sharing_the_longest_prefix_is_chosen(model_dir):
    engine = make_engine(model_dir)
    base = prompt(40, seed=13)
    run(engine, Request(prompt(40, seed=14), max_new_tokens=4),
        Request(base[:25], max_new_tokens=4), Request(base[:10], max_new_tokens=4))
    diverging = Request((*base[:20], *prompt(15, seed=15)), max_new_tokens=10)
    handle = engine.submit(diverging)
    engine.run_until_idle()
    assert handle.cached_tokens == 20  # the 25-token slot; the cache past the fork is rewritten
    assert handle.tokens == run(make_engine(model_dir), diverging)[0]


@pytest.mark.parametrize(("reuse", "cached"), [(True, 19), (False, 0)])
def test_a_repeated_prompt_prefills_at_least_its_last_token(model_dir, reuse, cached):
    """With reuse, all but the last prompt token come from the cache (its logits start
    generation); with reuse off, nothing does. The tokens are the same either way."""
    engine = make_engine(model_dir, reuse_prefixes=reuse)
    request = Request(prompt(20, seed=16), max_new_tokens=10)
    first = run(engine, request)
    handle = engine.submit(request)
    engine.run_until_idle()
    assert handle.cached_tokens == cached
    assert handle.tokens == first[0]


def test_a_cancelled_prefill_leaves_a_usable_cache(model_dir):
    """Cancelled after two 16-token prefill chunks: the 32 tokens written still serve a prompt
    that starts with them."""
    engine = make_engine(model_dir)
    long_prompt = prompt(60, seed=17)
    handle = engine.submit(Request(long_prompt, max_new_tokens=5))
    engine.step()
    engine.step()
    handle.cancel()
    engine.run_until_idle()
    retry = Request(long_prompt[:50], max_new_tokens=8)
    again = engine.submit(retry)
    engine.run_until_idle()
    assert again.cached_tokens == 32
    assert again.tokens == run(make_engine(model_dir), retry)[0]


# ---- sampling: seeds, limits, stop ids, segments -----------------------------------------


def test_seed_reproducibility(model_dir):
    ids = prompt(10, seed=8)

    def sampled(seed: int, *others: Request) -> list[int]:
        request = Request(ids, max_new_tokens=24, sampling=SAMPLED, seed=seed)
        return run(make_engine(model_dir), request, *others)[0]

    first = sampled(123)
    assert sampled(123) == first
    assert sampled(123, Request(prompt(20, seed=9), max_new_tokens=30, sampling=SAMPLED)) == first
    assert sampled(124) != first


def test_max_tokens_respected(model_dir):
    engine = make_engine(model_dir)
    handles = [engine.submit(Request(prompt(6, seed=n), max_new_tokens=n)) for n in (1, 2, 7)]
    engine.run_until_idle()
    assert [len(h.tokens) for h in handles] == [1, 2, 7]
    assert {h.finish_reason for h in handles} == {"max_tokens"}


def test_stop_id_ends_generation_and_is_emitted(model_dir):
    ids = prompt(12, seed=10)
    (free,) = run(make_engine(model_dir), Request(ids, max_new_tokens=20))
    stop = free[4]
    engine = make_engine(model_dir)
    handle = engine.submit(Request(ids, max_new_tokens=20, stop_ids=frozenset({stop})))
    engine.run_until_idle()
    assert handle.tokens == free[: free.index(stop) + 1]
    assert handle.finish_reason == "stop"


@pytest.mark.parametrize("ending", ["stop", "max_tokens"])
def test_the_last_token_becomes_visible_only_once_the_slot_is_free(model_dir, ending):
    """A consumer that stops at the last token and submits its next turn at once (as a
    conversation does) must find the slot free: every token is recorded with the free slot
    count at the moment it becomes readable."""
    ids = prompt(12, seed=10)
    (free,) = run(make_engine(model_dir), Request(ids, max_new_tokens=20))
    engine = make_engine(model_dir, max_slots=1)
    request = (Request(ids, max_new_tokens=20, stop_ids=frozenset({free[4]}))
               if ending == "stop" else Request(ids, max_new_tokens=5))
    handle = engine.submit(request)
    free_when_seen: list[int] = []

    class Watched(list):
        def append(self, token: int) -> None:
            free_when_seen.append(engine.free_slots)
            super().append(token)

    handle.tokens = Watched()
    engine.run_until_idle()
    assert handle.tokens == free[:5] and handle.finish_reason == ending
    assert free_when_seen == [0, 0, 0, 0, 1]


def test_context_length_limit_ends_generation(model_dir, reference):
    ids = prompt(60, seed=11)
    engine = make_engine(model_dir, max_seq_len=64)
    handle = engine.submit(Request(ids, max_new_tokens=100))
    engine.run_until_idle()
    # Positions 60..63 hold the last prompt token's successors; the 5th token needs no cache.
    assert handle.tokens == hf_greedy(reference, ids, 5)
    assert handle.finish_reason == "length"


def test_segment_allows_only_its_ids(model_dir):
    speech = frozenset(range(200, 240))
    rule = SegmentRule(start_id=5, end_id=6, allowed_ids=speech, sampling=SAMPLED)
    outcomes = []
    for seed in range(4):
        request = Request((*prompt(9, seed=seed), 5), 40, SAMPLED, segments=(rule,), seed=seed)
        (tokens,) = run(make_engine(model_dir), request)
        inside = tokens[: tokens.index(6)] if 6 in tokens else tokens
        assert set(inside) <= speech
        outcomes.append(tokens)
    assert len({tuple(t) for t in outcomes}) > 1  # the segment's own (random) sampling applies


def test_generated_start_id_enters_segment(model_dir):
    ids = prompt(12, seed=12)
    (free,) = run(make_engine(model_dir), Request(ids, max_new_tokens=20))
    start = free[2]
    allowed = frozenset(range(100, 110)) - {start}
    end = next(i for i in range(VOCAB) if i not in allowed and i != start)
    rule = SegmentRule(start_id=start, end_id=end, allowed_ids=allowed, sampling=GREEDY)
    (tokens,) = run(make_engine(model_dir), Request(ids, max_new_tokens=20, segments=(rule,)))
    cut = free.index(start) + 1
    assert tokens[:cut] == free[:cut]
    after = tokens[cut:]
    inside = after[: after.index(end)] if end in after else after
    assert inside and set(inside) <= allowed


def test_segment_state_machine():
    rule = SegmentRule(start_id=5, end_id=6, allowed_ids=frozenset({7}), sampling=GREEDY)
    request = Request((1,), 1, segments=(rule,))
    assert request.segment_after(None, 5) == 0
    assert request.segment_after(0, 7) == 0
    assert request.segment_after(0, 5) == 0
    assert request.segment_after(0, 6) is None
    assert request.segment_after(None, 6) is None


# ---- admission, busy, cancellation --------------------------------------------------------


def test_invalid_requests_are_rejected(model_dir):
    engine = make_engine(model_dir, max_seq_len=32)
    with pytest.raises(ValueError, match="token ids"):
        engine.submit(Request((VOCAB,), max_new_tokens=1))
    with pytest.raises(ValueError, match="max_seq_len"):
        engine.submit(Request(prompt(32, seed=0), max_new_tokens=1))
    with pytest.raises(ValueError):
        Request((), max_new_tokens=1)
    with pytest.raises(ValueError):
        EngineConfig(max_slots=0)


def test_busy_error_when_all_slots_taken(model_dir):
    engine = make_engine(model_dir, max_slots=2)
    handles = [engine.submit(Request(prompt(4, seed=n), max_new_tokens=3)) for n in range(2)]
    with pytest.raises(EngineBusy):
        engine.submit(Request(prompt(4, seed=2), max_new_tokens=3))
    engine.run_until_idle()
    assert all(h.done for h in handles)
    assert engine.free_slots == 2
    run(engine, Request(prompt(4, seed=2), max_new_tokens=3), Request((1,), max_new_tokens=1))


def test_cancelling_a_queued_request(model_dir):
    engine = make_engine(model_dir, max_slots=2)
    kept = engine.submit(Request(prompt(4, seed=1), max_new_tokens=3))
    dropped = engine.submit(Request(prompt(4, seed=2), max_new_tokens=3))
    dropped.cancel()
    engine.run_until_idle()
    assert (dropped.finish_reason, dropped.tokens) == ("cancelled", [])
    assert kept.finish_reason == "max_tokens"
    assert engine.free_slots == 2


async def test_async_stream_matches_sync(model_dir):
    requests = [Request(prompt(n, seed=n), max_new_tokens=15) for n in (3, 21)]
    expected = run(make_engine(model_dir), *requests)

    async def collect(engine: Engine, request: Request) -> list[int]:
        return [token async for token in engine.generate(request)]

    with make_engine(model_dir) as engine:
        got = await asyncio.gather(*(collect(engine, r) for r in requests))
    assert got == expected


async def test_tokens_generated_while_the_consumer_is_busy_all_arrive(model_dir):
    """While the consumer's loop is blocked, the engine thread queues one wake-up for all the
    tokens it produces meanwhile; every token still arrives, in order."""
    request = Request(prompt(5, seed=5), max_new_tokens=30)
    (expected,) = run(make_engine(model_dir), request)
    with make_engine(model_dir) as engine:
        handle = engine.submit(request)
        got = [await handle.__anext__()]  # binds this loop to the handle
        deadline = time.monotonic() + 10
        while len(handle.tokens) < 4 and time.monotonic() < deadline:
            time.sleep(0.001)  # the loop stays blocked while the engine thread runs on
        assert len(handle.tokens) >= 4
        assert handle._wake_pending  # three tokens since the last wake-up, one queued for all
        got += [token async for token in handle]
    assert got == expected


async def test_cancel_frees_slot_within_one_step(model_dir):
    with make_engine(model_dir, max_slots=1, max_seq_len=512) as engine:
        async with engine.submit(Request((1, 2, 3), max_new_tokens=500)) as handle:
            async for _ in handle:
                if len(handle.tokens) >= 3:
                    break
            seen_at_cancel = len(handle.tokens)
            handle.cancel()
            assert await asyncio.to_thread(handle.wait, 5.0)
        assert handle.finish_reason == "cancelled"
        assert len(handle.tokens) <= seen_at_cancel + 1  # at most the step already running
        assert engine.free_slots == 1
        assert len([t async for t in engine.generate(Request((4,), max_new_tokens=2))]) == 2


async def test_task_cancellation_cancels_request(model_dir):
    with make_engine(model_dir, max_slots=1, max_seq_len=512) as engine:
        started = asyncio.Event()

        async def consume() -> None:
            async for _ in engine.generate(Request((1, 2, 3), max_new_tokens=500)):
                started.set()

        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(200):  # the slot comes back once the engine runs its next step
            if engine.free_slots == 1:
                break
            await asyncio.sleep(0.01)
        assert engine.free_slots == 1
        with pytest.raises(EngineBusy):
            engine.submit(Request((1,), max_new_tokens=500))
            engine.submit(Request((1,), max_new_tokens=500))


async def test_async_iteration_needs_a_started_engine(model_dir):
    engine = make_engine(model_dir)
    with pytest.raises(EngineClosed):
        await anext(engine.generate(Request((1,), max_new_tokens=1)))
    engine.start()
    engine.close()
    with pytest.raises(EngineClosed):
        engine.submit(Request((1,), max_new_tokens=1))
